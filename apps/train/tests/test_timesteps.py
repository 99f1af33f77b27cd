"""Explicit uniform sampling: per-rank intervals are disjoint and cover [0, T); draws stay inside."""

from __future__ import annotations

import pytest
import torch

from cogvx.train.timesteps import TimestepSampler, rank_interval


@pytest.mark.parametrize(("world", "total"), [(1, 1000), (2, 1000), (3, 1000), (7, 1000), (8, 10)])
def test_intervals_are_disjoint_and_cover_the_range(world, total):
    intervals = [rank_interval(total, r, world) for r in range(world)]
    covered = [t for lo, hi in intervals for t in range(lo, hi)]
    assert sorted(covered) == list(range(total))  # covering, and no timestep twice
    assert all(hi > lo for lo, hi in intervals)


def test_each_rank_draws_uniformly_inside_its_interval():
    sampler = TimestepSampler(1000, explicit_uniform=True)
    for rank in range(4):
        lo, hi = sampler.interval(rank, 4)
        t = sampler.sample(
            4000, rank=rank, world_size=4, generator=torch.Generator().manual_seed(rank)
        )
        assert int(t.min()) >= lo and int(t.max()) < hi
        assert t.dtype == torch.int64
        # uniform: every quarter of the interval gets about a quarter of the draws
        counts = torch.histc(t.float(), bins=4, min=lo, max=hi - 1)
        assert (counts > 800).all(), counts


def test_option_off_draws_from_the_whole_range_on_every_rank():
    sampler = TimestepSampler(1000, explicit_uniform=False)
    assert sampler.interval(1, 4) == (0, 1000)
    t = sampler.sample(2000, rank=3, world_size=4, generator=torch.Generator().manual_seed(0))
    assert int(t.min()) < 100 and int(t.max()) > 900


@pytest.mark.parametrize(
    ("args", "match"),
    [((1000, 2, 2), "rank=2"), ((1000, 0, 0), "world_size=0"), ((4, 0, 5), "at most")],
)
def test_bad_rank_or_world_size_is_named(args, match):
    with pytest.raises(ValueError, match=match):
        rank_interval(*args)


def test_logit_normal_matches_its_density_and_ranks_split_its_quantiles():
    # t / T = sigmoid(m + s n): with (0, 1), P(t < 100) = Phi(logit(0.1)) = 1.40% (uniform: 10%)
    # and P(300 <= t < 700) = 60.3% (uniform: 40%); ranks 0 and 1 of 2 split at the median.
    sampler = TimestepSampler(1000, logit_normal=(0.0, 1.0))
    g = torch.Generator().manual_seed(0)
    lower = sampler.sample(20000, rank=0, world_size=2, generator=g)
    upper = sampler.sample(20000, rank=1, world_size=2, generator=g)
    assert int(lower.max()) <= 500 <= int(upper.min())
    t = torch.cat([lower, upper]).double()
    assert abs(float((t < 100).double().mean()) - 0.0140) < 0.004
    assert abs(float(((t >= 300) & (t < 700)).double().mean()) - 0.603) < 0.01
    assert int(t.min()) >= 0 and int(t.max()) <= 999
    # a shifted mean moves the mass towards high noise
    shifted = TimestepSampler(1000, logit_normal=(1.0, 1.0), explicit_uniform=False)
    assert float(shifted.sample(4000, generator=g).double().mean()) > 650
    for bad in [(0.0, 0.0), (float("nan"), 1.0), (0.0,)]:
        with pytest.raises(ValueError, match="logit_normal="):
            TimestepSampler(1000, logit_normal=bad)
    with pytest.raises(ValueError, match="rank=2"):
        sampler.sample(4, rank=2, world_size=2)
