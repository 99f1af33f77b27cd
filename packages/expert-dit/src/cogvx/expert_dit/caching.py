"""Step caching for sampling: do less transformer work per video at (nearly) the same output.

Consecutive denoising steps see similar inputs, so parts of the transformer's work can be reused
(docs/pipelines.md §Step caching). Three independent, composable kinds, each an explicit frozen
option object:

- residual reuse, keyed on how much the input changed since the last computed step; when the
  change is small the residual of the skipped blocks from that step is added instead of running
  them:

  * :class:`TeaCache` (TeaCache paper, Liu et al. 2024 §3; TeaCache4CogVideoX): the relative L1
    change of the timestep embedding (``signal="temb"``, as TeaCache4CogVideoX) or of the first
    block's modulated input (``signal="modulated"``), rescaled by a polynomial and accumulated;
    all blocks are skipped while the sum stays below ``threshold``;
  * :class:`FirstBlockCache` (diffusers ``hooks/first_block_cache.py``): the first block always
    runs; the others are skipped when its output residual changed less than ``threshold``
    (relative L1) from the last step that ran them;

- residual forecast, :class:`TaylorForecast` (TaylorSeer, Liu et al. 2025 §3, "From Reusing to
  Forecasting"): the blocks run on a fixed schedule (the first ``warmup`` steps, every
  ``interval``-th step after them and the last step) and, in between, their residual is
  extrapolated by the polynomial of degree ``order`` through the last ``order + 1`` computed
  residuals, instead of being reused unchanged;

- attention broadcast, :class:`PyramidBroadcast` (Pyramid Attention Broadcast, Zhao et al. 2024
  §3; diffusers ``hooks/pyramid_attention_broadcast.py``): inside a timestep range, each block's
  attention output is recomputed every ``every`` steps and reused in between;
- cheaper guidance, :class:`GuidancePlan`: CFG truncation (no unconditional branch after a fraction
  of the steps), interval guidance (Kynkäänniemi et al. 2024: CFG only inside a timestep interval)
  and unconditional-branch reuse (its offset from the conditional prediction kept from the last
  step that computed it, as FasterCache's CFG cache does in a simpler, unfiltered form).

State is explicit: :func:`cached_forward` takes a :class:`CacheState` and returns a new one, with a
:class:`StepDecision` per step that says what was computed; nothing is stored on the model. The
plain reference path is :meth:`ExpertDiT.forward`: with every option off (or at its exact setting:
threshold 0, ``every=1``) :func:`cached_forward` runs the same operations and gives bitwise the same
output (tests). Each CFG branch (``"uncond"``, ``"cond"``) keeps its own state, so a step may compute
one branch and reuse the other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor

from .attention import AttentionBackend, attention, current_attention_backend
from .attention import parse_attention_backend as _parse_attention_backend
from .geometry import unpatchify
from .positions import token_grid
from .transformer import ExpertBlock, ExpertDiT, gated_update

__all__ = [
    "TEACACHE_COEFFICIENTS",
    "BranchState",
    "CacheReport",
    "CacheState",
    "FirstBlockCache",
    "GuidancePlan",
    "PyramidBroadcast",
    "StepCaching",
    "StepDecision",
    "TaylorForecast",
    "TeaCache",
    "cached_forward",
    "forecast_residual",
    "relative_l1",
]

#: TeaCache4CogVideoX's published rescaling polynomials (highest power first, ``numpy.poly1d``
#: order) for the change of the timestep embedding: CogVideoX-2B (sin-cos positions) and 5B /
#: 1.5-5B (RoPE). They were fitted on the released models; a different model (e.g. the shipped
#: shapes model) should use its own threshold, chosen by measurement (benchmarks/cache_bench.py).
TEACACHE_COEFFICIENTS: Mapping[str, tuple[float, ...]] = {
    "cogvideox-2b": (-3.10658903e01, 2.54732368e01, -5.92380459e00, 1.75769064e00, -3.61568434e-03),
    "cogvideox-5b": (-1.53880483e03, 8.43202495e02, -1.34363087e02, 7.97131516e00, -5.23162339e-02),
}


def _check_threshold(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r}: expected a finite number >= 0 (0 = never skip)")
    if value < 0:
        raise ValueError(f"{name}={value!r}: expected a finite number >= 0 (0 = never skip)")
    return float(value)


def _check_range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        or value[0] > value[1]
    ):
        raise ValueError(f"{name}={value!r}: expected (low, high) finite numbers with low <= high")
    return (float(value[0]), float(value[1]))


# ===================================================================================== options
@dataclass(frozen=True)
class TeaCache:
    """Skip all blocks while the accumulated rescaled input change stays below ``threshold``.

    Per step: ``d = mean|s - s_prev| / mean|s_prev|`` of the signal ``s``, ``acc += poly(d)``; the
    blocks are skipped (the cached residual ``x_out - x_in`` of the last computed step is added)
    when ``acc < threshold``, otherwise they run and ``acc`` restarts at 0. The first and the last
    step always run (TeaCache4CogVideoX). ``coefficients`` (highest power first) default to the
    published ones of the model family (:data:`TEACACHE_COEFFICIENTS`: RoPE -> 5B, else 2B);
    ``()`` means no rescaling (``poly(d) = d``). ``threshold=0`` never skips. ``order > 0``
    forecasts the skipped residual instead of reusing it (as :class:`TaylorForecast` does).
    """

    threshold: float
    coefficients: tuple[float, ...] | None = None
    signal: Literal["temb", "modulated"] = "temb"
    order: int = 0

    def __post_init__(self) -> None:
        _check_threshold("cache.threshold", self.threshold)
        _check_count("cache.order", self.order, 0)
        if self.signal not in ("temb", "modulated"):
            raise ValueError(f"cache.signal={self.signal!r}: choose from temb, modulated")
        if self.coefficients is not None:
            coeffs = tuple(self.coefficients)
            if not all(isinstance(c, (int, float)) and math.isfinite(c) for c in coeffs):
                raise ValueError(
                    f"cache.coefficients={self.coefficients!r}: expected finite numbers "
                    "(highest power first), () for none"
                )
            object.__setattr__(self, "coefficients", tuple(float(c) for c in coeffs))

    def rescale(self, change: float, *, rope: bool) -> float:
        """``poly(change)`` with this cache's (or the family's published) coefficients."""
        coeffs = self.coefficients
        if coeffs is None:
            coeffs = TEACACHE_COEFFICIENTS["cogvideox-5b" if rope else "cogvideox-2b"]
        if not coeffs:
            return change
        out = 0.0
        for c in coeffs:  # Horner, highest power first
            out = out * change + c
        return out


@dataclass(frozen=True)
class FirstBlockCache:
    """Run the first block; skip the rest when its output residual changed by less than
    ``threshold`` (relative L1, against the last step that ran them), adding their cached residual
    to the first block's output (diffusers ``FirstBlockCacheConfig`` semantics).
    ``threshold=0`` never skips. ``order > 0``: on a skipped step the residual is the polynomial
    of that degree through the last ``order + 1`` computed residuals (TaylorSeer's forecast, see
    :class:`TaylorForecast`) instead of the last one; the skip decision is unchanged."""

    threshold: float
    order: int = 0

    def __post_init__(self) -> None:
        _check_threshold("cache.threshold", self.threshold)
        _check_count("cache.order", self.order, 0)


def _check_count(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r}: expected an integer >= {low}")
    return value


@dataclass(frozen=True)
class TaylorForecast:
    """Run the blocks on a fixed schedule and forecast their residual in between (TaylorSeer,
    Liu et al. 2025 §3).

    The blocks run on the first ``warmup`` steps, on steps ``warmup + k * interval`` and on the
    last step. On the other steps the residual ``x_out - x_in`` of the whole block stack is the
    polynomial of degree ``order`` (in the step index) through the last ``order + 1`` computed
    residuals, evaluated at this step (Lagrange form). When the computed steps are equally spaced
    this is TaylorSeer's finite-difference Taylor expansion; here it also stays exact for the
    unequal spacing of the warm-up steps and of a branch computed only on some steps.
    TaylorSeer forecasts each module's output; this forecasts the sum over the blocks, one
    tensor per branch and order. ``order=0`` reuses the last residual (a fixed-interval cache);
    ``interval=1`` computes every step (exact). The defaults are the best measured on the
    shipped shapes model at 25 steps (docs/pipelines.md §Step caching): the early, high-noise
    steps change the residual too much to extrapolate, so the first 8 always run.
    """

    interval: int = 3
    order: int = 1
    warmup: int = 8

    def __post_init__(self) -> None:
        _check_count("cache.interval", self.interval, 1)
        _check_count("cache.order", self.order, 0)
        _check_count("cache.warmup", self.warmup, 1)

    def computes(self, step: int, num_steps: int) -> bool:
        """Whether step ``step`` of ``num_steps`` runs the blocks."""
        if step < self.warmup or step == num_steps - 1:
            return True
        return (step - self.warmup) % self.interval == 0


def forecast_residual(history: Sequence[tuple[int, Tensor]], step: int, order: int) -> Tensor:
    """The polynomial of degree ``min(order, len(history) - 1)`` through the last computed
    ``(step, residual)`` pairs, evaluated at ``step`` (Lagrange form; degree 0 is the last
    residual). Steps in ``history`` are distinct."""
    points = list(history)[-(order + 1) :]
    if not points:
        raise ValueError("forecast_residual: history is empty (no computed step yet)")
    if len(points) == 1:
        return points[0][1]
    out: Tensor | None = None
    for j, (s_j, r_j) in enumerate(points):
        weight = 1.0
        for k, (s_k, _) in enumerate(points):
            if k != j:
                weight *= (step - s_k) / (s_j - s_k)
        out = r_j * weight if out is None else out + r_j * weight
    assert out is not None
    return out


@dataclass(frozen=True)
class PyramidBroadcast:
    """Reuse each block's attention output between recomputations: for timesteps strictly inside
    ``timestep_range`` attention runs on steps ``i`` with ``i % every == 0`` (and whenever nothing is
    cached), and the cached output is broadcast to the steps in between (diffusers
    ``PyramidAttentionBroadcastConfig``: ``spatial_attention_block_skip_range``,
    ``spatial_attention_timestep_skip_range=(100, 800)``). ``every=1`` always recomputes."""

    every: int = 2
    timestep_range: tuple[float, float] = (100.0, 800.0)

    def __post_init__(self) -> None:
        _check_count("cache.attention_every", self.every, 1)
        object.__setattr__(
            self, "timestep_range", _check_range("cache.attention_range", self.timestep_range)
        )

    def reuses(self, step: int, timestep: float) -> bool:
        """Whether step ``step`` at ``timestep`` may reuse a cached attention output."""
        low, high = self.timestep_range
        return low < timestep < high and step % self.every != 0


@dataclass(frozen=True)
class GuidancePlan:
    """Which steps compute the unconditional branch (CFG with ``[uncond; cond]``).

    - ``stop_fraction``: CFG truncation; no guidance on steps ``i >= ceil(stop_fraction * N)``
      (the conditional prediction alone). None: never stop; 1.0 equals None.
    - ``interval``: interval guidance; guidance only at timesteps ``low <= t <= high``.
    - ``uncond_every``: on guided steps, compute the unconditional branch only on every k-th
      guided step and otherwise estimate it as ``cond + (uncond - cond)`` of the last guided step
      that computed it. 1: always compute.

    The default plan is the reference's (guidance on every step).
    """

    stop_fraction: float | None = None
    interval: tuple[float, float] | None = None
    uncond_every: int = 1

    def __post_init__(self) -> None:
        f = self.stop_fraction
        if f is not None and (
            isinstance(f, bool)
            or not isinstance(f, (int, float))
            or not math.isfinite(f)
            or not 0 <= f <= 1
        ):
            raise ValueError(
                f"guidance.stop_fraction={f!r}: expected a number in [0, 1] or None (never stop)"
            )
        if self.interval is not None:
            object.__setattr__(self, "interval", _check_range("guidance.interval", self.interval))
        _check_count("guidance.uncond_every", self.uncond_every, 1)

    @property
    def is_reference(self) -> bool:
        """True when every step is guided and computes both branches (the plain path)."""
        return (
            (self.stop_fraction is None or self.stop_fraction >= 1)
            and self.interval is None
            and self.uncond_every == 1
        )

    def guided(self, step: int, num_steps: int, timestep: float) -> bool:
        """Whether step ``step`` of ``num_steps`` (at ``timestep``) applies guidance."""
        if self.stop_fraction is not None and step >= math.ceil(self.stop_fraction * num_steps):
            return False
        if self.interval is not None:
            low, high = self.interval
            return low <= timestep <= high
        return True


@dataclass(frozen=True)
class StepCaching:
    """The transformer-side caches of a sampling run: a residual cache (or None) and an attention
    broadcast (or None). ``StepCaching()`` caches nothing."""

    residual: TeaCache | FirstBlockCache | TaylorForecast | None = None
    attention: PyramidBroadcast | None = None

    def __post_init__(self) -> None:
        if self.residual is not None and not isinstance(
            self.residual, (TeaCache, FirstBlockCache, TaylorForecast)
        ):
            raise TypeError(
                f"residual={self.residual!r}: expected a TeaCache, a FirstBlockCache, a "
                "TaylorForecast or None"
            )
        if self.attention is not None and not isinstance(self.attention, PyramidBroadcast):
            raise TypeError(f"attention={self.attention!r}: expected a PyramidBroadcast or None")

    @property
    def active(self) -> bool:
        return self.residual is not None or self.attention is not None


# ===================================================================================== state
@dataclass(frozen=True)
class BranchState:
    """What one CFG branch keeps between steps (tensors ``[b, ...]`` for its rows)."""

    signal: Tensor | None = None  # TeaCache signal / FBC first-block residual of the last compute
    accumulated: float = 0.0  # TeaCache: rescaled change summed since the last compute
    attention: tuple[Tensor | None, ...] = ()  # per block: last attention output [b, S, D]
    # (step, output minus input of the skippable blocks) of the last order + 1 computed steps
    history: tuple[tuple[int, Tensor], ...] = ()

    @property
    def residual(self) -> Tensor | None:
        """The skippable blocks' residual of the last computed step (None before any)."""
        return self.history[-1][1] if self.history else None


@dataclass(frozen=True)
class StepDecision:
    """What one denoising step computed.

    ``branches``: the CFG branches the transformer saw; ``skipped``: those whose blocks were
    replaced by the cached residual; ``blocks_computed`` / ``blocks_total``: block evaluations
    run, out of those of the uncached step (layers x branches of the reference step);
    ``attention_reused``: block attention outputs taken from the cache; ``guidance``: ``"cfg"``
    (both branches computed), ``"uncond-reused"`` (the unconditional offset reused), ``"off"``
    (no guidance this step) or ``"none"`` (guidance off for the whole call); ``change``: the
    measured relative change of the cache's signal (None when not measured).
    """

    step: int
    timestep: float
    branches: tuple[str, ...]
    skipped: tuple[str, ...]
    blocks_computed: int
    blocks_total: int
    attention_reused: int = 0
    guidance: str = "none"
    change: float | None = None


@dataclass(frozen=True)
class CacheState:
    """The explicit state of a cached sampling run: one :class:`BranchState` per CFG branch, the
    last unconditional offset (``uncond - cond`` prediction, for :class:`GuidancePlan` reuse) and
    the decisions so far."""

    branches: Mapping[str, BranchState] = field(default_factory=dict)
    uncond_offset: Tensor | None = None
    decisions: tuple[StepDecision, ...] = ()

    def branch(self, name: str) -> BranchState:
        return self.branches.get(name, BranchState())

    def with_branches(self, updates: Mapping[str, BranchState]) -> CacheState:
        return replace(self, branches={**self.branches, **updates})

    def record(self, decision: StepDecision) -> CacheState:
        return replace(self, decisions=(*self.decisions, decision))

    def report(self) -> CacheReport:
        return CacheReport(self.decisions)


@dataclass(frozen=True)
class CacheReport:
    """Per-step decisions of one call, with totals (shown in the pipeline's stage report)."""

    decisions: tuple[StepDecision, ...]

    @property
    def steps(self) -> int:
        return len(self.decisions)

    @property
    def blocks_computed(self) -> int:
        return sum(d.blocks_computed for d in self.decisions)

    @property
    def blocks_total(self) -> int:
        return sum(d.blocks_total for d in self.decisions)

    @property
    def attention_reused(self) -> int:
        """Block attention outputs taken from the cache (:class:`PyramidBroadcast`)."""
        return sum(d.attention_reused for d in self.decisions)

    @property
    def branch_passes(self) -> tuple[int, int]:
        """(transformer branch passes computed, skipped by the residual cache)."""
        run = sum(len(d.branches) - len(d.skipped) for d in self.decisions)
        return run, sum(len(d.skipped) for d in self.decisions)

    @property
    def steps_skipped(self) -> int:
        """Steps on which every evaluated branch reused its residual (no block ran but the
        first-block cache's first block)."""
        return sum(1 for d in self.decisions if d.branches and len(d.skipped) == len(d.branches))

    def guidance_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.decisions:
            counts[d.guidance] = counts.get(d.guidance, 0) + 1
        return counts

    def format(self) -> str:
        """Two lines for the terminal."""
        run, skipped = self.branch_passes
        total = self.blocks_total
        share = 100.0 * self.blocks_computed / total if total else 100.0
        guidance = ", ".join(f"{k} {v}" for k, v in sorted(self.guidance_counts().items()))
        reused = self.attention_reused
        return (
            f"step cache: {self.steps} steps, {self.steps_skipped} fully skipped; branch passes "
            f"computed {run}, skipped {skipped}\n"
            f"            blocks computed {self.blocks_computed}/{total} ({share:.0f}%), "
            f"attention reused {reused}; guidance: {guidance}"
        )


# ===================================================================================== forward
def relative_l1(current: Tensor, previous: Tensor) -> float:
    """``mean|current - previous| / mean|previous|`` in float32 (inf when ``previous`` is 0)."""
    cur, prev = current.float(), previous.float()
    denom = prev.abs().mean()
    num = (cur - prev).abs().mean()
    if float(denom) == 0.0:
        return 0.0 if float(num) == 0.0 else math.inf
    return float(num / denom)


def _rows(x: Tensor, index: int, size: int) -> Tensor:
    return x[index * size : (index + 1) * size]


def _cat(parts: Sequence[Tensor]) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(list(parts), dim=0)


def _block(
    block: ExpertBlock,
    x: Tensor,
    temb: Tensor,
    text_len: int,
    rope: tuple[Tensor, Tensor] | None,
    backend: AttentionBackend,
    cached: Sequence[Tensor | None] | None,
) -> tuple[Tensor, Tensor | None]:
    """One block; ``cached`` (one entry per branch segment of ``x``, or None to compute) replaces
    the attention output. Returns the output and the attention output it used (or None when the
    plain block ran). The computing branch is :meth:`ExpertBlock.forward`'s body, op for op."""
    if cached is None:
        return block(x, temb, text_len, rope, None, backend), None
    mod_attn, mod_ff = block.modulations(temb)
    if all(c is not None for c in cached):
        y = _cat(cached)  # type: ignore[arg-type]
    else:
        h = block.norm1(x, mod_attn, text_len)

        def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            return attention(q, k, v, backend=backend)

        y = block.attn1(h, text_len, rope, attend=attend)
    x = gated_update(x, y, mod_attn, text_len)
    h = block.norm2(x, mod_ff, text_len)
    return gated_update(x, block.ff(h), mod_ff, text_len), y


def cached_forward(
    model: ExpertDiT,
    latents: Tensor,
    text_embeds: Tensor,
    timestep: Tensor | float,
    *,
    caching: StepCaching,
    state: CacheState,
    step: int,
    num_steps: int,
    branches: Sequence[str] = ("cond",),
    ofs: Tensor | float | None = None,
    attention_backend: AttentionBackend | str | None = None,
    blocks_total: int | None = None,
    guidance: str = "none",
) -> tuple[Tensor, CacheState]:
    """:meth:`ExpertDiT.forward` with step caching: ``-> (prediction, new state)``.

    The batch is ``len(branches)`` equal segments in order (``("uncond", "cond")`` for a CFG batch,
    ``("cond",)`` without); each branch has its own :class:`BranchState` in ``state``. ``step`` of
    ``num_steps`` is the sampling step (the first and last always compute). The new state's last
    decision describes this call (``blocks_total`` defaults to layers x branches; ``guidance`` is
    recorded as given). Dense attention only (no ``attn_mask``).
    """
    if not branches or len(set(branches)) != len(branches):
        raise ValueError(f"branches={tuple(branches)!r}: expected distinct branch names")
    if not isinstance(state, CacheState):
        raise TypeError(f"state={state!r}: expected a CacheState (CacheState() to start)")
    if not 0 <= step < num_steps:
        raise ValueError(f"step={step}: expected 0 <= step < num_steps={num_steps}")
    config = model.config
    latents, pad = model._check_latents(latents, False)
    batch, frames, _, height, width = latents.shape
    if batch % len(branches):
        raise ValueError(
            f"latents batch {batch} does not split into {len(branches)} branches {tuple(branches)}"
        )
    size = batch // len(branches)
    text_embeds = model._check_text(text_embeds, batch)
    temb = model.embed_time(timestep, ofs, batch=batch)  # [B, E]
    t_value = float(torch.as_tensor(timestep).float().reshape(-1)[0])
    grid = token_grid(config, frames, height, width)
    model.check_native_size(frames, height, width, text_embeds.shape[1])
    backend = (
        current_attention_backend()
        if attention_backend is None
        else _parse_attention_backend(attention_backend)
    )
    grid_type = model.rope_grid_type(None)
    rope = None if grid_type is None else model.rope(grid, grid_type, latents.device)

    x = model.patch_embed(text_embeds, latents)  # [B, L + N, D]
    text_len = text_embeds.shape[1]
    x = model._add_absolute_positions(x, text_len, grid)
    x = model.embedding_dropout(x)

    blocks = model.blocks()
    names = tuple(branches)
    olds = {name: state.branch(name) for name in names}
    news: dict[str, BranchState] = {}
    boundary = step == 0 or step == num_steps - 1
    residual_cache = caching.residual
    start = 0  # index of the first block the residual cache may skip
    change: float | None = None
    skip: dict[str, bool] = dict.fromkeys(names, False)
    signals: dict[str, Tensor] = {}

    if isinstance(residual_cache, TeaCache):
        if residual_cache.signal == "temb":
            sig = temb
        else:
            mod0, _ = blocks[0].modulations(temb)
            sig = blocks[0].norm1(x, mod0, text_len)
        for i, name in enumerate(names):
            signals[name] = _rows(sig, i, size)
            old = olds[name]
            if old.signal is None or old.residual is None or boundary:
                continue
            d = relative_l1(signals[name], old.signal)
            change = d
            acc = old.accumulated + residual_cache.rescale(d, rope=rope is not None)
            news[name] = replace(old, accumulated=acc, signal=signals[name])
            skip[name] = residual_cache.threshold > 0 and acc < residual_cache.threshold
    elif isinstance(residual_cache, FirstBlockCache):
        x_in = x
        x = blocks[0](x, temb, text_len, rope, None, backend)
        start = 1
        first = x - x_in  # the first block's residual [B, S, D]
        for i, name in enumerate(names):
            signals[name] = _rows(first, i, size)
            old = olds[name]
            if old.signal is None or old.residual is None or boundary:
                continue
            d = relative_l1(signals[name], old.signal)
            change = d
            skip[name] = residual_cache.threshold > 0 and d < residual_cache.threshold
    elif isinstance(residual_cache, TaylorForecast) and not residual_cache.computes(
        step, num_steps
    ):
        for name in names:
            skip[name] = bool(olds[name].history)

    computing = [i for i, name in enumerate(names) if not skip[name]]
    outputs: list[Tensor | None] = [None] * len(names)
    for i, name in enumerate(names):
        if skip[name]:
            assert residual_cache is not None
            forecast = forecast_residual(olds[name].history, step, residual_cache.order)
            outputs[i] = _rows(x, i, size) + forecast
    reused = 0
    blocks_run = len(names) * start
    if computing:
        if len(computing) == len(names):
            xc, tc = x, temb
        else:
            xc = _cat([_rows(x, i, size) for i in computing])
            tc = _cat([_rows(temb, i, size) for i in computing])
        x_start = xc
        pab = caching.attention
        attn_new: dict[str, list[Tensor | None]] = {
            names[i]: list(olds[names[i]].attention) or [None] * len(blocks) for i in computing
        }
        for j in range(start, len(blocks)):
            cached = None
            if pab is not None:
                may = pab.reuses(step, t_value)
                cached = [attn_new[names[i]][j] if may else None for i in computing]
                if all(c is not None for c in cached):  # else _block recomputes them all
                    reused += len(cached)
            xc, y = _block(blocks[j], xc, tc, text_len, rope, backend, cached)
            if pab is not None and y is not None:
                for k, i in enumerate(computing):
                    attn_new[names[i]][j] = _rows(y, k, size)
            blocks_run += len(computing)
        for k, i in enumerate(computing):
            name = names[i]
            outputs[i] = _rows(xc, k, size) if len(computing) > 1 else xc
            base = news.get(name, olds[name])
            history = base.history
            if residual_cache is not None:
                residual = _rows(xc - x_start, k, size) if len(computing) > 1 else xc - x_start
                history = (*history, (step, residual))[-(residual_cache.order + 1) :]
            news[name] = replace(
                base,
                accumulated=0.0,
                signal=signals.get(name),
                attention=tuple(attn_new[name]) if pab is not None else (),
                history=history,
            )
        if len(computing) == len(names):
            x = xc
    if len(computing) != len(names):
        x = _cat([o for o in outputs if o is not None])

    video = model.norm_final(x[:, text_len:])  # [B, N, D]
    video = model.norm_out(video, temb)
    video = model.proj_out(video)  # [B, N, C_out * pt * p * p]
    out = unpatchify(video, grid, config.patch_size, config.patch_t)  # [B, F, C_out, H, W]
    out = out[:, pad:] if pad else out
    decision = StepDecision(
        step=step,
        timestep=t_value,
        branches=names,
        skipped=tuple(n for n in names if skip[n]),
        blocks_computed=blocks_run,
        blocks_total=len(blocks) * len(names) if blocks_total is None else blocks_total,
        attention_reused=reused,
        guidance=guidance,
        change=change,
    )
    return out, state.with_branches(news).record(decision)
