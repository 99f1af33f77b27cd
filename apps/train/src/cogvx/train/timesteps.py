"""Training timesteps: explicit uniform sampling across data-parallel ranks (docs/training.md).

CogVideoX paper §3 ("Explicit Uniform Sampling"): the timestep range is split into one interval
per data-parallel rank and each rank draws uniformly inside its own interval, so every step of
the whole job covers the range evenly and the loss has lower variance than with independent
uniform draws on every rank. Here ``[0, T)`` is split into ``world_size`` contiguous integer
intervals ``[floor(r T / W), floor((r + 1) T / W))``: disjoint, together exactly ``[0, T)``.

With the option off (or one rank) every rank draws from the whole ``[0, T)`` (the diffusers
fine-tuning scripts' ``randint(0, T)``).

SAT's ``DiscreteSampling`` only switches the split on above 8 ranks and splits into a configured
number of rank groups; we split per rank whenever the option is on (docs/differences.md).
"""

from __future__ import annotations

import torch

__all__ = ["TimestepSampler", "rank_interval"]


def rank_interval(num_timesteps: int, rank: int, world_size: int) -> tuple[int, int]:
    """The half-open integer interval ``[lo, hi)`` of ``rank`` among ``world_size`` ranks."""
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size={world_size!r}: expected a positive int")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank={rank!r}: expected an int in [0, {world_size})")
    if world_size > num_timesteps:
        raise ValueError(
            f"world_size={world_size}: explicit uniform sampling needs at most "
            f"num_timesteps={num_timesteps} ranks (one non-empty interval each)"
        )
    return rank * num_timesteps // world_size, (rank + 1) * num_timesteps // world_size


class TimestepSampler:
    """Draws integer training timesteps for one rank.

    Args:
        num_timesteps: ``T`` (``num_train_timesteps`` of the schedule, 1000 for CogVideoX).
        explicit_uniform: split ``[0, T)`` into one interval per rank (paper §3); off = plain
            uniform on ``[0, T)`` on every rank.
    """

    def __init__(self, num_timesteps: int = 1000, *, explicit_uniform: bool = True) -> None:
        if not isinstance(num_timesteps, int) or num_timesteps < 1:
            raise ValueError(f"num_timesteps={num_timesteps!r}: expected a positive int")
        self.num_timesteps = num_timesteps
        self.explicit_uniform = bool(explicit_uniform)

    def interval(self, rank: int = 0, world_size: int = 1) -> tuple[int, int]:
        """The interval this rank draws from (the whole range when the option is off)."""
        if not self.explicit_uniform:
            rank_interval(self.num_timesteps, rank, world_size)  # validate the arguments
            return 0, self.num_timesteps
        return rank_interval(self.num_timesteps, rank, world_size)

    def sample(
        self,
        n: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """``n`` int64 timesteps, uniform on this rank's interval."""
        lo, hi = self.interval(rank, world_size)
        t = torch.randint(lo, hi, (n,), generator=generator, dtype=torch.int64)
        return t if device is None else t.to(device)
