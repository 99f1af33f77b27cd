"""Epoch plans: coverage, budget, determinism, rank balance, reports (property tests)."""

from collections import Counter

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cogvx.framepack import (
    ModelGeometry,
    ResolutionStage,
    SampleShape,
    UnfitSample,
    assign_train_shape,
    plan_epoch,
)

STAGE = ResolutionStage(256, max_frames=49)

sample_shapes = st.builds(
    SampleShape,
    frames=st.one_of(st.integers(1, 120), st.just(1), st.integers(-1, 0)),
    height=st.one_of(st.integers(16, 1200), st.integers(0, 20)),
    width=st.integers(16, 1200),
)
plan_args = st.fixed_dictionaries(
    {
        "shapes": st.lists(sample_shapes, min_size=1, max_size=60),
        "token_budget": st.integers(300, 12000),
        "world_size": st.integers(1, 5),
        "mode": st.sampled_from(["packed", "bucketed"]),
        "remainder": st.sampled_from(["split", "drop", "duplicate"]),
        "window": st.one_of(st.none(), st.integers(1, 20)),
        "seed": st.integers(0, 2**40),
        "epoch": st.integers(0, 5),
        "pt": st.sampled_from([None, 2]),
    }
)


def _plan(args):
    a = dict(args)
    geometry = ModelGeometry(patch_size_t=a.pop("pt"), text_tokens=64)
    return plan_epoch(a.pop("shapes"), stage=STAGE, geometry=geometry, **a), geometry


def _tokens(shape, geometry):
    try:
        return assign_train_shape(shape, STAGE, geometry).tokens
    except UnfitSample:
        return None


@given(plan_args)
def test_plan_properties(args):
    try:
        plan, geometry = _plan(args)
    except ValueError as e:
        # Only allowed when nothing fits at all, or when dropping leaves nothing.
        g = ModelGeometry(patch_size_t=args["pt"], text_tokens=64)
        fits = [t for s in args["shapes"] if (t := _tokens(s, g)) and t <= args["token_budget"]]
        assert not fits or (args["remainder"] == "drop" and "nothing is left" in str(e))
        return
    n = len(args["shapes"])
    report = plan.report
    counts = Counter(i for p in plan.packs for i in p.indices)
    skipped = {s.index for s in report.skipped}
    dropped = {s.index for s in report.balance_dropped}

    # Every sample is planned, skipped with a reason, or dropped for balance with a reason.
    assert set(counts) | skipped | dropped == set(range(n))
    assert not (set(counts) & skipped) and not (skipped & dropped) and not (set(counts) & dropped)
    assert all(s.reason for s in (*report.skipped, *report.balance_dropped))
    assert report.num_planned == len(counts)
    # Exactly once, except duplicates that the report lists.
    assert Counter(report.duplicated) == Counter({i: c - 1 for i, c in counts.items() if c > 1})
    if args["remainder"] != "duplicate":
        assert sum(len(p.indices) for p in plan.packs if p.duplicate) == len(report.duplicated)
    # Skip reasons are right: over_budget exactly for the shaped samples above the budget.
    for s in report.skipped:
        t = _tokens(args["shapes"][s.index], geometry)
        assert (s.reason == "over_budget") == (t is not None)
        if t is not None:
            assert t > args["token_budget"]

    # No pack exceeds the budget; pack token counts are right.
    for p in plan.packs:
        tokens = [_tokens(args["shapes"][i], geometry) for i in p.indices]
        assert p.tokens == sum(tokens) <= args["token_budget"]
        if args["mode"] == "bucketed":
            keys = {assign_train_shape(args["shapes"][i], STAGE, geometry).key for i in p.indices}
            assert len(keys) == 1
    assert report.real_tokens == sum(p.tokens for p in plan.packs)
    assert 0 < report.fill <= 1

    # Ranks: equal step counts, disjoint packs, together the whole plan.
    ws = args["world_size"]
    per_rank = [plan.for_rank(r) for r in range(ws)]
    assert {len(r) for r in per_rank} == {plan.steps} and plan.steps >= 1
    assert Counter(p for r in per_rank for p in r) == Counter(plan.packs)
    if not report.duplicated:
        seen = [i for r in per_rank for p in r for i in p.indices]
        assert len(seen) == len(set(seen))

    # Deterministic for (seed, epoch).
    again, _ = _plan(args)
    assert again.packs == plan.packs and again.fingerprint() == plan.fingerprint()


@given(st.lists(st.integers(0, 3), min_size=20, max_size=40), st.integers(0, 1000))
def test_epochs_shuffle_differently(kinds, seed):
    sizes = [(1, 256, 256), (9, 128, 256), (17, 256, 128), (5, 128, 128)]
    shapes = [SampleShape(*sizes[k]) for k in kinds]
    assume(len(set(kinds)) > 1)
    g = ModelGeometry(text_tokens=16)
    plans = [
        plan_epoch(shapes, stage=STAGE, geometry=g, token_budget=2000, seed=seed, epoch=e).packs
        for e in range(4)
    ]
    assert len({tuple(p) for p in plans}) > 1


def test_packing_beats_bucketing_on_mixed_shapes():
    shapes = [
        SampleShape(f, h, w)
        for f in (1, 9, 17, 33, 49)
        for h, w in ((256, 384), (384, 256), (288, 288))
    ] * 10
    g = ModelGeometry()
    packed = plan_epoch(shapes, stage=STAGE, geometry=g, token_budget=8000, mode="packed")
    bucketed = plan_epoch(shapes, stage=STAGE, geometry=g, token_budget=8000, mode="bucketed")
    assert packed.report.num_planned == bucketed.report.num_planned == len(shapes)
    assert packed.report.fill > bucketed.report.fill
    assert packed.report.num_packs < bucketed.report.num_packs


def test_remainder_policies_are_reported():
    g = ModelGeometry(text_tokens=16)
    shapes = [SampleShape(1, 256, 256)] * 5  # 272 tokens each
    split = plan_epoch(shapes, stage=STAGE, geometry=g, token_budget=272 * 5, world_size=2)
    assert split.report.split_packs == 1 and len(split.packs) == 2 and split.report.num_planned == 5
    drop = plan_epoch(
        [SampleShape(1, 256, 256)] * 3,
        stage=STAGE,
        geometry=g,
        token_budget=272,
        world_size=2,
        remainder="drop",
    )
    assert len(drop.packs) == 2 and len(drop.report.balance_dropped) == 1
    assert drop.report.reasons() == Counter({"rank_balance": 1})
    dup = plan_epoch(
        [SampleShape(1, 256, 256)] * 3,
        stage=STAGE,
        geometry=g,
        token_budget=272,
        world_size=2,
        remainder="duplicate",
    )
    assert len(dup.packs) == 4 and len(dup.report.duplicated) == 1 and dup.packs[-1].duplicate
    # Single-sample packs cannot be split: "split" falls back to a reported duplicate.
    fallback = plan_epoch(
        [SampleShape(1, 256, 256)] * 3, stage=STAGE, geometry=g, token_budget=272, world_size=2
    )
    assert len(fallback.packs) == 4 and len(fallback.report.duplicated) == 1
    assert "duplicated: 1" in fallback.report.summary()


def test_bad_input_errors():
    g = ModelGeometry()
    with pytest.raises(ValueError, match="empty"):
        plan_epoch([], stage=STAGE, geometry=g, token_budget=10000)
    with pytest.raises(ValueError, match="token_budget"):
        plan_epoch([SampleShape(1, 256, 256)], stage=STAGE, geometry=g, token_budget=100)
    with pytest.raises(ValueError, match="no sample of 2 fits"):
        plan_epoch([SampleShape(49, 256, 256)] * 2, stage=STAGE, geometry=g, token_budget=300)
    with pytest.raises(ValueError, match="mode"):
        plan_epoch([SampleShape(1, 256, 256)], stage=STAGE, geometry=g, token_budget=1000, mode="x")
    with pytest.raises(ValueError, match="world_size"):
        plan_epoch(
            [SampleShape(1, 256, 256)], stage=STAGE, geometry=g, token_budget=1000, world_size=0
        )
    plan = plan_epoch([SampleShape(1, 256, 256)], stage=STAGE, geometry=g, token_budget=1000)
    with pytest.raises(ValueError, match="rank"):
        plan.for_rank(1)


def test_skips_are_counted_not_silent():
    g = ModelGeometry()
    shapes = [
        SampleShape(49, 256, 256),  # fits
        SampleShape(0, 256, 256),  # zero-length
        SampleShape(49, 2, 256),  # corrupt size
        SampleShape(49, 256, 384),  # over the budget
    ]
    plan = plan_epoch(shapes, stage=STAGE, geometry=g, token_budget=226 + 13 * 16 * 16)
    assert plan.report.num_planned == 1
    assert plan.report.reasons() == Counter({"zero_frames": 1, "too_small": 1, "over_budget": 1})
    assert "skipped: over_budget=1, too_small=1, zero_frames=1" in plan.report.summary()
