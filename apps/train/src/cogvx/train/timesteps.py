"""Training timesteps: explicit uniform sampling across data-parallel ranks (docs/training.md).

CogVideoX paper §3 ("Explicit Uniform Sampling"): the timestep range is split into one interval
per data-parallel rank and each rank draws uniformly inside its own interval, so every step of
the whole job covers the range evenly and the loss has lower variance than with independent
uniform draws on every rank. Here ``[0, T)`` is split into ``world_size`` contiguous integer
intervals ``[floor(r T / W), floor((r + 1) T / W))``: disjoint, together exactly ``[0, T)``.

With the option off (or one rank) every rank draws from the whole ``[0, T)`` (the diffusers
fine-tuning scripts' ``randint(0, T)``).

Optionally the timesteps follow a logit-normal density instead of the uniform one (Esser et al.
2024, "Scaling Rectified Flow Transformers", §3.1): ``t = floor(T * sigmoid(m + s * n))`` with
``n ~ N(0, 1)``, which puts fewer draws near ``t = 0`` and ``t = T`` and more in the middle. The
ranks then split the *quantiles* of that density (each draws ``n = ndtri(u)`` with ``u`` uniform in
its ``[r / W, (r + 1) / W)``), so explicit uniform sampling still covers it evenly.

SAT's ``DiscreteSampling`` only switches the split on above 8 ranks and splits into a configured
number of rank groups; we split per rank whenever the option is on (docs/differences.md).
"""

from __future__ import annotations

import math

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
        logit_normal: ``(m, s)`` of a logit-normal density over ``t / T`` (``s > 0``); None =
            uniform (the CogVideoX recipe).
    """

    def __init__(
        self,
        num_timesteps: int = 1000,
        *,
        explicit_uniform: bool = True,
        logit_normal: tuple[float, float] | None = None,
    ) -> None:
        if not isinstance(num_timesteps, int) or num_timesteps < 1:
            raise ValueError(f"num_timesteps={num_timesteps!r}: expected a positive int")
        if logit_normal is not None:
            ok = (
                len(logit_normal) == 2
                and all(isinstance(v, int | float) and math.isfinite(v) for v in logit_normal)
                and logit_normal[1] > 0
            )
            if not ok:
                raise ValueError(
                    f"logit_normal={logit_normal!r}: expected (mean, std) with a finite mean and "
                    "std > 0, or None"
                )
            logit_normal = (float(logit_normal[0]), float(logit_normal[1]))
        self.num_timesteps = num_timesteps
        self.explicit_uniform = bool(explicit_uniform)
        self.logit_normal = logit_normal

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
        """``n`` int64 timesteps: uniform on this rank's interval, or logit-normal with this rank's
        share of the quantiles."""
        lo, hi = self.interval(rank, world_size)  # validates rank and world_size
        if self.logit_normal is None:
            t = torch.randint(lo, hi, (n,), generator=generator, dtype=torch.int64)
        else:
            # This rank's share [lo / T, hi / T) of the density's quantiles.
            q0, q1 = lo / self.num_timesteps, hi / self.num_timesteps
            u = q0 + (q1 - q0) * torch.rand(n, generator=generator, dtype=torch.float64)
            u = u.clamp(1e-12, 1 - 1e-12)  # ndtri(0) = -inf
            mean, std = self.logit_normal
            frac = torch.sigmoid(mean + std * torch.special.ndtri(u))  # (0, 1)
            t = (frac * self.num_timesteps).long().clamp_(0, self.num_timesteps - 1)
        return t if device is None else t.to(device)
