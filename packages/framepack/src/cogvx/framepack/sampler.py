"""A ``torch.utils.data`` batch sampler over an epoch plan, resumable mid-epoch.

Use it as ``DataLoader(dataset, batch_sampler=sampler, collate_fn=PackCollator(geometry))``: each
batch is the list of dataset indices of one pack (one training step on this rank).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist
from torch.utils.data import Sampler

from cogvx.framepack.plan import EpochPlan, Mode, Pack, Remainder, Skip, plan_epoch
from cogvx.framepack.shapes import ModelGeometry, ResolutionStage, SampleShape
from cogvx.videoio import ManifestRecord, read_manifest, scan_manifest

__all__ = ["FramePackSampler", "ManifestShapes", "shapes_from_manifest"]


def _check_groups(
    groups: Sequence[Sequence[int]], shapes: Sequence[SampleShape]
) -> tuple[tuple[int, ...], ...]:
    """``groups`` as tuples, or a ValueError naming the first group that breaks the rules."""
    out = tuple(tuple(int(i) for i in g) for g in groups)
    if not out:
        raise ValueError("groups=[]: expected at least one group (or None for no grouping)")
    k = len(out[0])
    seen: set[int] = set()
    for j, g in enumerate(out):
        if len(g) != k or k == 0:
            raise ValueError(
                f"groups[{j}]={list(g)}: every group needs the same size >= 1 (groups[0] has {k})"
            )
        for i in g:
            if not 0 <= i < len(shapes):
                raise ValueError(f"groups[{j}]={list(g)}: index {i} is outside [0, {len(shapes)})")
            if i in seen:
                raise ValueError(f"groups[{j}]={list(g)}: sample {i} is in more than one group")
            seen.add(i)
        if any(shapes[i] != shapes[g[0]] for i in g):
            raise ValueError(
                f"groups[{j}]={list(g)}: members have different shapes "
                f"({sorted({str(shapes[i]) for i in g})}); a group is planned as one shape"
            )
    return out


@dataclass(frozen=True)
class ManifestShapes:
    """Records of a manifest, their shapes (same order), and lines left out (non-strict read)."""

    records: tuple[ManifestRecord, ...]
    shapes: tuple[SampleShape, ...]
    invalid: tuple[Skip, ...]


def shapes_from_manifest(path: str | os.PathLike[str], *, strict: bool = True) -> ManifestShapes:
    """Read a data manifest (``cogvx.videoio.read_manifest``) into sample shapes.

    ``strict=True``: any invalid line raises ``ManifestError`` naming the line (the videoio
    contract). ``strict=False``: invalid lines are left out and listed in ``invalid`` with
    ``index`` = the 1-based line number and reason ``"invalid_record"``, so a few bad lines in a
    large manifest do not stop training but are still reported. An empty manifest raises.
    """
    if strict:
        records = read_manifest(path)
        invalid: list[Skip] = []
    else:
        records, bad = scan_manifest(path)
        invalid = [Skip(lineno, "invalid_record", reason) for lineno, reason in bad]
    if not records:
        raise ValueError(
            f"manifest {str(path)!r} has no valid records"
            + (f" ({len(invalid)} invalid lines)" if invalid else " (it is empty)")
        )
    shapes = tuple(SampleShape(r.frames, r.height, r.width, r.fps) for r in records)
    return ManifestShapes(tuple(records), shapes, tuple(invalid))


class FramePackSampler(Sampler[list[int]]):
    """Yields this rank's packs (lists of dataset indices) for the current epoch.

    Every rank builds the same :class:`EpochPlan` from ``(seed, epoch)`` and takes packs
    ``rank, rank + world_size, ...``, so all ranks run the same number of steps. Call
    :meth:`set_epoch` before each epoch. :meth:`state_dict` / :meth:`load_state_dict` resume in
    the middle of an epoch: the resumed sampler yields exactly the packs not yet consumed.

    ``rank`` / ``world_size`` default to ``torch.distributed`` when it is initialised, else 0 / 1.

    ``groups``: samples that must train in the same step (paired or contrastive objectives, e.g.
    two clips that differ in one factor). Each group is a list of dataset indices; all groups
    have the same size ``k`` and the members of a group the same shape. The epoch is then
    planned over the groups (the first member's shape against ``token_budget // k``), so a pack
    holds whole groups, and each group's members are yielded next to each other in the group's
    order. Samples in no group are not used; :meth:`plan` describes the groups.
    """

    def __init__(
        self,
        shapes: Sequence[SampleShape],
        *,
        stage: ResolutionStage,
        geometry: ModelGeometry,
        token_budget: int,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        mode: Mode = "packed",
        remainder: Remainder = "split",
        window: int | None = None,
        groups: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self.groups = None if groups is None else _check_groups(groups, shapes)
        if self.groups is not None:
            k = len(self.groups[0])
            if token_budget < k:
                raise ValueError(
                    f"token_budget={token_budget} is below the group size {k}: no group fits"
                )
            shapes = [shapes[g[0]] for g in self.groups]
            token_budget //= k
        if world_size is None:
            world_size = (
                dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
            )
        if rank is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.shapes = tuple(shapes)
        self.stage = stage
        self.geometry = geometry
        self.token_budget = token_budget
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.mode: Mode = mode
        self.remainder: Remainder = remainder
        self.window = window
        self.epoch = 0
        self._start = 0  # packs of this epoch already consumed on this rank
        self._yielded = 0
        self._plan: EpochPlan | None = None
        self.records: tuple[ManifestRecord, ...] | None = None  # set by from_manifest
        self.manifest_invalid: tuple[Skip, ...] = ()
        self.plan()  # validate the arguments now, not at the first batch

    @classmethod
    def from_manifest(
        cls, path: str | os.PathLike[str], *, strict: bool = True, **kwargs: Any
    ) -> FramePackSampler:
        """A sampler over a manifest's records (dataset index = record index); see
        :func:`shapes_from_manifest` for ``strict``. Lines left out are in ``manifest_invalid``."""
        ms = shapes_from_manifest(path, strict=strict)
        sampler = cls(ms.shapes, **kwargs)
        sampler.records = ms.records
        sampler.manifest_invalid = ms.invalid
        return sampler

    def plan(self) -> EpochPlan:
        """The plan of the current epoch (computed once per epoch)."""
        if self._plan is None or self._plan.epoch != self.epoch:
            self._plan = plan_epoch(
                self.shapes,
                stage=self.stage,
                geometry=self.geometry,
                token_budget=self.token_budget,
                seed=self.seed,
                epoch=self.epoch,
                world_size=self.world_size,
                mode=self.mode,
                remainder=self.remainder,
                window=self.window,
            )
        return self._plan

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to plan; a new epoch starts from its first pack."""
        if epoch != self.epoch:
            self._start = 0
        self.epoch = epoch

    def __len__(self) -> int:
        return self.plan().steps - self._start

    def __iter__(self) -> Iterator[list[int]]:
        # Not a generator function: the resume point is taken (and the counter reset) when the
        # iteration starts, not at the first ``next``.
        packs = self.plan().for_rank(self.rank)
        start, self._start = self._start, 0  # a resume applies to one pass only
        self._yielded = start
        return self._iterate(packs[start:])

    def _iterate(self, packs: Sequence[Pack]) -> Iterator[list[int]]:
        for pack in packs:
            self._yielded += 1
            if self.groups is None:
                yield list(pack.indices)
            else:  # planned over groups: pack index g stands for the samples of group g
                yield [i for g in pack.indices for i in self.groups[g]]

    def _fingerprint(self, plan: EpochPlan) -> str:
        """The plan's fingerprint; with groups it also covers which samples form each group."""
        if self.groups is None:
            return plan.fingerprint()
        h = hashlib.sha256(plan.fingerprint().encode())
        h.update(";".join(",".join(map(str, g)) for g in self.groups).encode())
        return h.hexdigest()[:16]

    def state_dict(self, consumed_steps: int | None = None) -> dict[str, Any]:
        """Where this rank is in the epoch.

        ``consumed_steps``: steps the training loop has finished this epoch. Pass it when the
        DataLoader prefetches (workers, ``prefetch_factor``): the sampler itself only knows how
        many packs it has handed out, which can run ahead of training.
        """
        step = self._yielded if consumed_steps is None else consumed_steps
        plan = self.plan()
        if not 0 <= step <= plan.steps:
            raise ValueError(f"consumed_steps must be in [0, {plan.steps}], got {step}")
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "step": step,
            "rank": self.rank,
            "world_size": self.world_size,
            "fingerprint": self._fingerprint(plan),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue an epoch from a :meth:`state_dict`; the next iteration yields the rest.

        Raises ValueError when the state was saved with another seed, world size or data (the
        plan's fingerprint differs), since the remaining packs would then not be the same.
        """
        missing = {"seed", "epoch", "step", "world_size", "fingerprint"} - set(state)
        if missing:
            raise ValueError(f"sampler state is missing {sorted(missing)}")
        if state["seed"] != self.seed or state["world_size"] != self.world_size:
            raise ValueError(
                f"sampler state was saved with seed={state['seed']}, "
                f"world_size={state['world_size']}; this sampler has seed={self.seed}, "
                f"world_size={self.world_size}"
            )
        self.epoch = int(state["epoch"])
        self._start = 0
        plan = self.plan()
        fingerprint = self._fingerprint(plan)
        if fingerprint != state["fingerprint"]:
            raise ValueError(
                "sampler state does not match this data/configuration: plan fingerprint "
                f"{fingerprint} != saved {state['fingerprint']} (manifest, stage, "
                "geometry, budget or mode changed)"
            )
        step = int(state["step"])
        if not 0 <= step <= plan.steps:
            raise ValueError(f"sampler state step must be in [0, {plan.steps}], got {step}")
        self._start = step
        self._yielded = step
