"""Epoch plans: which samples go together into one training step, on which data-parallel rank.

Two modes over the same token budget (tokens per packed sequence = text + video tokens of its
samples):

* ``"packed"`` -- Multi-Resolution Frame Pack (paper sec. 3, after Patch'n'Pack): samples of
  different durations and resolutions share one sequence; attention is restricted to each sample's
  own tokens. Packs are made by best-fit decreasing (as good as first-fit decreasing, O(n log n)).
* ``"bucketed"`` -- the usual alternative: one training shape per batch, as many samples of that
  shape as the budget holds. Kept for comparison (``benchmarks/framepack_bench.py``).

A plan is a pure function of (shapes, stage, geometry, budget, seed, epoch, world size): every rank
computes the same plan and takes its own packs, so nothing is communicated. Steps are balanced:
every rank gets the same number of packs; when the pack count does not divide by the world size
the ``remainder`` policy says what happens, and the report says what it did.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cogvx.framepack.shapes import (
    ModelGeometry,
    ResolutionStage,
    SampleShape,
    TrainShape,
    UnfitSample,
    assign_train_shape,
)

__all__ = ["EpochPlan", "Pack", "PlanReport", "Skip", "plan_epoch"]

Mode = Literal["packed", "bucketed"]
Remainder = Literal["split", "drop", "duplicate"]


@dataclass(frozen=True)
class Skip:
    """A sample left out of an epoch, with a short reason key and a readable detail."""

    index: int
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Pack:
    """The samples of one packed sequence (one rank's step) and their total token count."""

    indices: tuple[int, ...]
    tokens: int
    duplicate: bool = False


@dataclass(frozen=True)
class PlanReport:
    """What the planner did with every sample: planned, skipped (with reasons), clipped, balanced.

    ``skipped`` covers samples that could not be shaped or do not fit the budget;
    ``balance_dropped`` samples dropped to equalise steps across ranks (``remainder="drop"``);
    ``duplicated`` samples seen twice because a pack was repeated (``remainder="duplicate"``);
    ``split_packs`` packs split in two to equalise steps (``remainder="split"``, no sample lost).
    """

    num_samples: int
    num_planned: int
    skipped: tuple[Skip, ...]
    balance_dropped: tuple[Skip, ...]
    duplicated: tuple[int, ...]
    split_packs: int
    clipped: int
    num_packs: int
    budget: int
    real_tokens: int
    video_tokens: int

    @property
    def padding_tokens(self) -> int:
        """Budget slots left empty over all packs (what a fixed-length sequence would pad)."""
        return self.num_packs * self.budget - self.real_tokens

    @property
    def fill(self) -> float:
        """Fraction of the packs' token budget holding real tokens."""
        return self.real_tokens / max(1, self.num_packs * self.budget)

    def reasons(self) -> Counter[str]:
        """Counts of skip reasons, balance drops included."""
        return Counter(s.reason for s in (*self.skipped, *self.balance_dropped))

    def summary(self) -> str:
        """One line for logs."""
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.reasons().items())) or "none"
        return (
            f"{self.num_planned}/{self.num_samples} samples in {self.num_packs} packs "
            f"(fill {self.fill:.1%}); skipped: {reasons}; clipped to max_frames: {self.clipped}; "
            f"duplicated: {len(self.duplicated)}; packs split for balance: {self.split_packs}"
        )


@dataclass(frozen=True)
class EpochPlan:
    """All packs of one epoch in step order, ``world_size`` packs per step."""

    packs: tuple[Pack, ...]
    shapes: tuple[TrainShape | None, ...] = field(repr=False)
    world_size: int
    seed: int
    epoch: int
    report: PlanReport

    @property
    def steps(self) -> int:
        """Steps per rank; every rank has exactly this many packs."""
        return len(self.packs) // self.world_size

    def for_rank(self, rank: int) -> tuple[Pack, ...]:
        """The packs of ``rank``, in step order (pack ``s * world_size + rank`` at step ``s``)."""
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank must be in [0, {self.world_size}), got {rank}")
        return self.packs[rank :: self.world_size]

    def fingerprint(self) -> str:
        """A short hash of the packs: equal plans have equal fingerprints (used on resume)."""
        h = hashlib.sha256()
        h.update(f"{self.world_size}|{self.seed}|{self.epoch}|".encode())
        for p in self.packs:
            h.update((",".join(map(str, p.indices)) + ";").encode())
        return h.hexdigest()[:16]


def _rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, epoch]))


def _best_fit_decreasing(items: Sequence[tuple[int, int]], budget: int) -> list[list[int]]:
    """Pack ``(index, tokens)`` items (already in tie-break order) into bins of ``budget``.

    Items are placed largest first into the fullest bin that still has room (best fit), found by
    bisection in a sorted list of (room, bin id), so the whole epoch packs in O(n log n).
    """
    order = sorted(range(len(items)), key=lambda k: -items[k][1])  # stable: ties keep the shuffle
    bins: list[list[int]] = []
    rooms: list[tuple[int, int]] = []  # sorted (room left, bin id)
    for k in order:
        index, tokens = items[k]
        pos = bisect.bisect_left(rooms, (tokens, -1))
        if pos < len(rooms):
            room, b = rooms.pop(pos)
            bins[b].append(index)
            bisect.insort(rooms, (room - tokens, b))
        else:
            bins.append([index])
            bisect.insort(rooms, (budget - tokens, len(bins) - 1))
    return bins


def _bucket_batches(
    items: Sequence[tuple[int, int]], keys: dict[int, tuple[int, int, int]], budget: int
) -> list[list[int]]:
    """One shape per batch: group by training shape, cut each group into budget-sized batches."""
    groups: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for index, tokens in items:
        groups.setdefault(keys[index], []).append((index, tokens))
    batches: list[list[int]] = []
    for key in sorted(groups):
        members = groups[key]
        per_batch = budget // members[0][1]
        for start in range(0, len(members), per_batch):
            batches.append([i for i, _ in members[start : start + per_batch]])
    return batches


def plan_epoch(
    shapes: Sequence[SampleShape],
    *,
    stage: ResolutionStage,
    geometry: ModelGeometry,
    token_budget: int,
    seed: int = 0,
    epoch: int = 0,
    world_size: int = 1,
    mode: Mode = "packed",
    remainder: Remainder = "split",
    window: int | None = None,
) -> EpochPlan:
    """Plan one epoch of ``shapes`` into packs of at most ``token_budget`` tokens.

    Samples are shuffled with ``(seed, epoch)``; in ``"packed"`` mode they are packed by best-fit
    decreasing over the whole epoch, or over consecutive windows of ``window`` shuffled samples
    (more randomness in which samples share a pack, slightly more padding). Packs are then
    shuffled and dealt to ranks round-robin. Samples that cannot be shaped or exceed the budget
    are skipped and listed in ``plan.report`` with their reason; nothing is dropped silently.

    Raises ValueError for an empty ``shapes``, a bad argument, or a plan with no packs at all
    (e.g. a budget smaller than every sample).
    """
    if len(shapes) == 0:
        raise ValueError("shapes is empty: there are no samples to plan (empty manifest?)")
    if mode not in ("packed", "bucketed"):
        raise ValueError(f"mode must be 'packed' or 'bucketed', got {mode!r}")
    if remainder not in ("split", "drop", "duplicate"):
        raise ValueError(f"remainder must be 'split', 'drop' or 'duplicate', got {remainder!r}")
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if window is not None and (not isinstance(window, int) or window < 1):
        raise ValueError(f"window must be None or a positive int, got {window!r}")
    min_tokens = geometry.text_tokens + 1
    if not isinstance(token_budget, int) or token_budget < min_tokens:
        raise ValueError(
            f"token_budget must be an int >= {min_tokens} (text tokens + one video token), "
            f"got {token_budget!r}"
        )

    train: list[TrainShape | None] = []
    skipped: list[Skip] = []
    items: list[tuple[int, int]] = []
    for index, shape in enumerate(shapes):
        try:
            ts = assign_train_shape(shape, stage, geometry)
        except UnfitSample as e:
            train.append(None)
            skipped.append(Skip(index, e.reason, e.detail))
            continue
        train.append(ts)
        if ts.tokens > token_budget:
            skipped.append(
                Skip(index, "over_budget", f"{ts.tokens} tokens > token_budget {token_budget}")
            )
            continue
        items.append((index, ts.tokens))

    if not items:
        reasons = Counter(s.reason for s in skipped)
        raise ValueError(
            f"no sample of {len(shapes)} fits: skipped {dict(reasons)}; the smallest shaped "
            f"sample has {min((t.tokens for t in train if t), default=0)} tokens, "
            f"token_budget={token_budget}"
        )

    rng = _rng(seed, epoch)
    items = [items[k] for k in rng.permutation(len(items))]
    if mode == "packed":
        w = window or len(items)
        groups = [
            g
            for start in range(0, len(items), w)
            for g in _best_fit_decreasing(items[start : start + w], token_budget)
        ]
    else:
        keys = {i: train[i].key for i, _ in items}  # type: ignore[union-attr]
        groups = _bucket_batches(items, keys, token_budget)
    groups = [groups[k] for k in rng.permutation(len(groups))]

    tokens_of = {i: t for i, t in items}
    balance_dropped: list[Skip] = []
    duplicated: list[int] = []
    split_packs = 0
    extra = (-len(groups)) % world_size
    if extra and remainder == "split":
        # Split the packs with most samples in two (alternate members) until the count divides;
        # no sample is lost. Packs of one sample cannot be split: fall back to duplicates below.
        while extra:
            big = max(range(len(groups)), key=lambda k: (len(groups[k]), -k))
            if len(groups[big]) < 2:
                break
            g = groups[big]
            groups[big : big + 1] = [g[0::2], g[1::2]]
            split_packs += 1
            extra -= 1
    packs = [Pack(tuple(g), sum(tokens_of[i] for i in g)) for g in groups]
    if extra and remainder == "drop":
        for p in packs[len(packs) - (len(packs) % world_size) :]:
            balance_dropped.extend(
                Skip(i, "rank_balance", "last packs dropped so every rank has equal steps")
                for i in p.indices
            )
        packs = packs[: len(packs) - (len(packs) % world_size)]
        if not packs:
            raise ValueError(
                f"only {len(groups)} packs for world_size={world_size}: with remainder='drop' "
                "nothing is left; use remainder='split' or 'duplicate', or a smaller budget"
            )
    elif extra:  # duplicate (or split that ran out of splittable packs)
        for k in range(extra):
            p = packs[k % len(packs)]
            packs.append(Pack(p.indices, p.tokens, duplicate=True))
            duplicated.extend(p.indices)

    planned = {i for p in packs for i in p.indices}
    report = PlanReport(
        num_samples=len(shapes),
        num_planned=len(planned),
        skipped=tuple(skipped),
        balance_dropped=tuple(balance_dropped),
        duplicated=tuple(duplicated),
        split_packs=split_packs,
        clipped=sum(1 for i in planned if train[i].clipped),  # type: ignore[union-attr]
        num_packs=len(packs),
        budget=token_budget,
        real_tokens=sum(p.tokens for p in packs),
        video_tokens=sum(
            train[i].video_tokens  # type: ignore[union-attr]
            for p in packs
            for i in p.indices
        ),
    )
    return EpochPlan(
        packs=tuple(packs),
        shapes=tuple(train),
        world_size=world_size,
        seed=seed,
        epoch=epoch,
        report=report,
    )
