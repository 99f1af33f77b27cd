"""Multi-device generation of one video: guidance-parallel, sequence-parallel, parallel VAE decode.

A job of ``W = cfg * sp`` processes (``torchrun``, or ``cogvx generate --nproc-per-node W``) runs
the one sampling loop of :class:`cogvx.infer.pipelines.base.VideoPipeline` on every rank, with:

* **guidance-parallel** (``cfg=2``, xDiT's CFG parallel): the unconditional half of the
  ``[uncond ; cond]`` transformer batch on one rank, the conditional half on the other; the two
  predictions are all-gathered every step, so both ranks apply the guidance and the sampler step
  to the same tensors and stay in step without further exchange;
* **sequence-parallel** (``sp=N``, :mod:`cogvx.expert_dit.parallel`): the video tokens of each
  forward split over ``N`` ranks, attention by all-to-all (``sp_mode="ulysses"``) or by a ring of
  key/value blocks (``"ring"``);
* **parallel VAE decode** (``vae=M``, :mod:`cogvx.vae3d.parallel`): row bands of every frame
  decoded on ``M`` ranks with halo rows and all-reduced GroupNorm statistics.

Ranks are laid out ``rank = c * sp + s`` (guidance branch ``c``, sequence shard ``s``); decode
groups are runs of ``vae`` consecutive ranks. Every rank starts from the same seed and returns the
same frames (fp32: equal to the single-process pipeline within 1e-5; tests/test_parallel.py).
The options are runtime state: :func:`use_parallel` around pipeline calls, ``parallel.*`` keys on
the command line; never a model config. docs/pipelines.md §Multi-device inference.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from cogvx.expert_dit.config import DiTConfig
from cogvx.expert_dit.parallel import (
    SequenceParallel,
    SequenceParallelMode,
    sequence_parallel_forward,
)
from cogvx.vae3d.parallel import BandGroup, parallel_decode

__all__ = [
    "CommMeter",
    "ParallelConfig",
    "ParallelContext",
    "current_parallel",
    "init_distributed",
    "launch_local",
    "use_parallel",
]


@dataclass
class CommMeter:
    """Bytes each collective sends from this rank (``record(op, nbytes)``), summed per operation.

    The convention is what a direct algorithm sends: an all-gather sends this rank's part to each
    of the ``P - 1`` others, an all-to-all the ``(P - 1) / P`` of its buffer meant for others, a
    point-to-point exchange its buffer once, an all-reduce its buffer to each of the ``P - 1``
    others.
    """

    bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def record(self, op: str, nbytes: int) -> None:
        self.bytes[op] += nbytes
        self.calls[op] += 1

    @property
    def total(self) -> int:
        return sum(self.bytes.values())

    def reset(self) -> None:
        self.bytes.clear()
        self.calls.clear()


@dataclass(frozen=True)
class ParallelConfig:
    """The degrees of one job: ``cfg`` (1 or 2) x ``sp`` ranks run the transformer; ``vae`` ranks
    decode each video together (a divisor of ``cfg * sp``)."""

    cfg: int = 1
    sp: int = 1
    sp_mode: str = "ulysses"
    vae: int = 1

    def __post_init__(self) -> None:
        for name in ("cfg", "sp", "vae"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"parallel.{name}={value!r}: expected an integer >= 1")
        if self.cfg not in (1, 2):
            raise ValueError(
                f"parallel.cfg={self.cfg}: 1 or 2 (the unconditional and the conditional branch)"
            )
        valid = [m.value for m in SequenceParallelMode]
        if self.sp_mode not in valid:
            raise ValueError(f"parallel.sp_mode={self.sp_mode!r}: choose from {', '.join(valid)}")
        world = self.cfg * self.sp
        if world % self.vae:
            divisors = [d for d in range(1, world + 1) if world % d == 0]
            raise ValueError(
                f"parallel.vae={self.vae}: must divide the number of processes cfg x sp = {world} "
                f"(valid: {divisors})"
            )

    @property
    def world_size(self) -> int:
        return self.cfg * self.sp

    def check_model(self, transformer: DiTConfig) -> None:
        """Degrees the transformer allows: Ulysses needs ``sp | num_attention_heads``."""
        heads = transformer.num_attention_heads
        if self.sp_mode == "ulysses" and heads % self.sp:
            valid = [d for d in range(1, heads + 1) if heads % d == 0]
            raise ValueError(
                f"parallel.sp={self.sp}: must divide the transformer's num_attention_heads="
                f"{heads} with parallel.sp_mode=ulysses (valid: {valid}); parallel.sp_mode=ring "
                "splits any number of heads"
            )

    def check_shape(
        self, transformer: DiTConfig, latent_shape: Sequence[int], *, do_cfg: bool
    ) -> None:
        """Degrees a request allows: ``latent_shape = (B, F', C, h, w)`` (transformer layout)."""
        if self.cfg == 2 and not do_cfg:
            raise ValueError(
                "parallel.cfg=2: needs classifier-free guidance (guidance_scale > 1); "
                "use parallel.cfg=1 without guidance"
            )
        _, frames, _, h, w = latent_shape
        p = transformer.patch_size
        grid = (frames // (transformer.patch_size_t or 1), h // p, w // p)
        tokens = grid[0] * grid[1] * grid[2]
        if tokens % self.sp:
            valid = [d for d in range(1, min(tokens, 64) + 1) if tokens % d == 0]
            raise ValueError(
                f"parallel.sp={self.sp}: must divide the video tokens per sample N={tokens} "
                f"(latent frames x rows x columns after patching: {grid}); valid up to 64: {valid}"
            )
        if h % self.vae:
            valid = [d for d in range(1, h + 1) if h % d == 0]
            raise ValueError(
                f"parallel.vae={self.vae}: must divide the latent height h={h} (the VAE decodes "
                f"h / vae latent rows per rank); valid: {valid}"
            )


_current: ContextVar[ParallelContext | None] = ContextVar("cogvx_parallel", default=None)


def current_parallel() -> ParallelContext | None:
    """The :class:`ParallelContext` of the innermost :func:`use_parallel` block (None outside)."""
    return _current.get()


class ParallelContext:
    """The process groups of one job and the two operations the pipeline delegates to them."""

    def __init__(self, config: ParallelConfig, *, meter: CommMeter | None = None) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "parallel inference needs torch.distributed initialised: launch with torchrun "
                "(or cogvx generate --nproc-per-node N) and call "
                "cogvx.infer.parallel.init_distributed() first"
            )
        world, rank = dist.get_world_size(), dist.get_rank()
        if world != config.world_size:
            raise ValueError(
                f"parallel.cfg x parallel.sp = {config.cfg} x {config.sp} = {config.world_size}: "
                f"must equal the number of processes (WORLD_SIZE={world})"
            )
        self.config, self.meter, self.rank = config, meter, rank
        cfg, sp = config.cfg, config.sp
        self.cfg_rank, sp_rank = divmod(rank, sp)
        # new_group is collective: every rank creates every group, in the same order.
        self.cfg_group = None
        self.sp: SequenceParallel | None = None
        self.band: BandGroup | None = None
        if cfg > 1:
            for s in range(sp):
                group = dist.new_group([c * sp + s for c in range(cfg)])
                if s == sp_rank:
                    self.cfg_group = group
        if sp > 1:
            for c in range(cfg):
                group = dist.new_group([c * sp + s for s in range(sp)])
                if c == self.cfg_rank:
                    self.sp = SequenceParallel(group, SequenceParallelMode(config.sp_mode), meter)
        if config.vae > 1:
            for v in range(world // config.vae):
                group = dist.new_group(list(range(v * config.vae, (v + 1) * config.vae)))
                if rank // config.vae == v:
                    self.band = BandGroup(group, meter)

    def check_request(
        self, transformer: DiTConfig, request: Any, *, cached: bool = False, tiled: bool = False
    ) -> None:
        """Refuse, before any work, a pipeline request these degrees cannot run (the request's
        ``latent_shape`` and ``do_cfg``; step caching; VAE tiling with a parallel decode)."""
        if cached:
            raise ValueError(
                "cache=/guidance_plan=: step caching does not run with parallel inference "
                "(use_parallel / parallel.*); pass neither"
            )
        if tiled and self.config.vae > 1:
            raise ValueError(
                f"parallel.vae={self.config.vae}: the parallel decode is exact to the untiled "
                "decode and splits frames itself; turn VAE tiling off (vae.tiling=false)"
            )
        self.config.check_model(transformer)
        self.config.check_shape(transformer, request.latent_shape, do_cfg=request.do_cfg)

    def predict(
        self,
        transformer: torch.nn.Module,
        model_input: torch.Tensor,
        embeds: torch.Tensor,
        timestep: torch.Tensor,
        *,
        ofs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The transformer prediction of the whole (CFG-doubled) batch, on every rank."""
        with _collective_errors("the transformer step"):
            if self.cfg_group is None:
                return self._forward(transformer, model_input, embeds, timestep, ofs)
            half = model_input.shape[0] // 2
            mine = slice(0, half) if self.cfg_rank == 0 else slice(half, None)
            v = self._forward(transformer, model_input[mine], embeds[mine], timestep[mine], ofs)
            v = v.contiguous()
            parts = [torch.empty_like(v) for _ in range(2)]
            dist.all_gather(parts, v, group=self.cfg_group)
            if self.meter is not None:
                self.meter.record("cfg_all_gather", v.numel() * v.element_size())
            return torch.cat(parts, dim=0)  # [uncond ; cond]

    def _forward(
        self,
        transformer: torch.nn.Module,
        x: torch.Tensor,
        embeds: torch.Tensor,
        timestep: torch.Tensor,
        ofs: torch.Tensor | None,
    ) -> torch.Tensor:
        if self.sp is None:
            return transformer(x, embeds, timestep, ofs=ofs)
        return sequence_parallel_forward(transformer, x, embeds, timestep, sp=self.sp, ofs=ofs)  # type: ignore[arg-type]

    def decode(self, vae: torch.nn.Module, z: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``vae.decode(z, **kwargs)``, in row bands over the decode group when ``vae > 1``."""
        if self.band is None:
            return vae.decode(z, **kwargs)
        with _collective_errors("the VAE decode"):
            return parallel_decode(vae, z, band=self.band, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def _collective_errors(stage: str) -> Iterator[None]:
    """A failed collective (a rank died, or one did not answer within the group timeout) becomes
    one readable error naming this rank and the stage."""
    try:
        yield
    except RuntimeError as e:
        # NCCL raises DistError subclasses; gloo a plain RuntimeError from its transport
        # ("[.../gloo/transport/tcp/pair.cc] Connection closed by peer", "Timed out ...").
        if not isinstance(e, dist.DistError) and "gloo" not in str(e):
            raise
        rank = dist.get_rank() if dist.is_initialized() else "?"
        raise RuntimeError(
            f"rank {rank}: a collective with the other ranks failed during {stage} (another rank "
            f"died or did not answer within the timeout): {' '.join(str(e).split())[:300]}"
        ) from e


@contextlib.contextmanager
def use_parallel(
    config: ParallelConfig | None = None, *, meter: CommMeter | None = None, **degrees: Any
) -> Iterator[ParallelContext]:
    """Run pipeline calls inside the block on the job's ranks: ``with use_parallel(cfg=2, sp=2):
    frames = pipe(prompt, generator=torch.Generator().manual_seed(0)).frames`` on every rank (same
    arguments and seed everywhere). Needs :func:`init_distributed` (or any initialised default
    group) first. ``degrees`` are :class:`ParallelConfig` fields."""
    if config is None:
        config = ParallelConfig(**degrees)
    elif degrees:
        raise TypeError("pass either a ParallelConfig or degrees (cfg=, sp=, ...), not both")
    context = ParallelContext(config, meter=meter)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def init_distributed(*, timeout_s: float = 300.0, backend: str | None = None) -> tuple[int, int]:
    """Initialise the default process group from the ``torchrun`` environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); ``timeout_s`` bounds every collective, so a
    dead rank ends the others with an error. NCCL when CUDA is available (each rank on
    ``cuda:LOCAL_RANK``), else gloo. Returns ``(rank, world_size)``; a no-op when initialised."""
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    missing = [
        k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f"environment variable(s) {missing} not set: launch with torchrun --nproc-per-node N "
            "or cogvx generate --nproc-per-node N"
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()


# ---- the single-command launcher ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def launch_local(nproc: int, command: Sequence[str], *, poll_s: float = 0.1) -> int:
    """Run ``command`` (an argv) as ``nproc`` local ranks with torchrun's environment variables
    (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``).

    As torchrun does, the first rank to fail ends the others; returns 0 when all succeed, else
    the failing rank's exit code (1 for a rank killed by a signal, 130 on Ctrl-C), after printing
    which rank failed and how.
    """
    port = _free_port()
    procs = []
    for rank in range(nproc):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(nproc),
            "LOCAL_WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        procs.append(subprocess.Popen(list(command), env=env))
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                rank, code = failed[0]
                _stop(procs)
                print(
                    f"{os.path.basename(command[0])}: rank {rank} of {nproc} failed "
                    f"({_describe_exit(code)}); ended the other ranks",
                    file=sys.stderr,
                )
                return code if code > 0 else 1
            if all(c == 0 for c in codes):
                return 0
            time.sleep(poll_s)
    except KeyboardInterrupt:
        _stop(procs)
        return 130


def _stop(procs: list[subprocess.Popen], grace_s: float = 5.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(deadline - time.monotonic(), 0.0))
        if p.poll() is None:
            p.kill()
            p.wait()
