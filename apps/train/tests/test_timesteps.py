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
