"""The batch sampler: DataLoader use, rank split, mid-epoch resume, manifests."""

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, Dataset

from cogvx.framepack import (
    FramePackSampler,
    ModelGeometry,
    PackCollator,
    ResolutionStage,
    SampleShape,
    shapes_from_manifest,
)
from cogvx.videoio import ManifestError, ManifestWriter

G = ModelGeometry(text_tokens=8)
STAGE = ResolutionStage(128, max_frames=17)
SIZES = [(1, 128, 128), (5, 64, 128), (9, 128, 64), (17, 64, 64), (1, 64, 192)]


def _shapes(kinds):
    return [SampleShape(*SIZES[k]) for k in kinds]


def _sampler(shapes, **kw):
    kw.setdefault("token_budget", 600)
    return FramePackSampler(shapes, stage=STAGE, geometry=G, **kw)


@given(
    kinds=st.lists(st.integers(0, len(SIZES) - 1), min_size=1, max_size=50),
    world_size=st.integers(1, 4),
    seed=st.integers(0, 99),
    epoch=st.integers(0, 3),
    cut=st.integers(0, 100),
)
def test_resumed_sampler_yields_exactly_the_rest(kinds, world_size, seed, epoch, cut):
    shapes = _shapes(kinds)
    for rank in range(world_size):
        s = _sampler(shapes, seed=seed, rank=rank, world_size=world_size)
        s.set_epoch(epoch)
        full = list(s)
        assert len(full) == len(s) == s.plan().steps
        k = cut % (len(full) + 1)
        it = iter(s)
        head = [next(it) for _ in range(k)]
        state = s.state_dict()
        assert state["step"] == k
        resumed = _sampler(shapes, seed=seed, rank=rank, world_size=world_size)
        resumed.load_state_dict(state)
        assert len(resumed) == len(full) - k
        assert head + list(resumed) == full
        # After the resumed pass, the next pass of the same epoch is whole again.
        assert list(resumed) == full


def test_ranks_split_an_epoch_evenly():
    shapes = _shapes([0, 1, 2, 3, 4] * 7)
    samplers = [_sampler(shapes, rank=r, world_size=3) for r in range(3)]
    batches = [list(s) for s in samplers]
    assert len({len(b) for b in batches}) == 1
    flat = [i for b in batches for pack in b for i in pack]
    assert sorted(flat) == list(range(len(shapes)))


def test_state_mismatch_is_an_error():
    s = _sampler(_shapes([0, 1, 2, 3]), seed=1)
    state = s.state_dict()
    with pytest.raises(ValueError, match="seed=1"):
        _sampler(_shapes([0, 1, 2, 3]), seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="fingerprint"):
        _sampler(_shapes([0, 1, 2, 4]), seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        s.load_state_dict({"seed": 1})
    with pytest.raises(ValueError, match="consumed_steps"):
        s.state_dict(consumed_steps=10**6)
    with pytest.raises(ValueError, match="rank"):
        _sampler(_shapes([0]), rank=2, world_size=2)


class _Latents(Dataset):
    """Random latents of each training shape; index 3 plays a corrupt file."""

    def __init__(self, shapes, corrupt=()):
        self.shapes, self.corrupt = shapes, set(corrupt)

    def __len__(self):
        return len(self.shapes)

    def __getitem__(self, i):
        from cogvx.framepack import SkippedSample, assign_train_shape

        if i in self.corrupt:
            return SkippedSample(i, "corrupt file")
        ts = assign_train_shape(self.shapes[i], STAGE, G)
        g = torch.Generator().manual_seed(i)
        lat = torch.randn(ts.latent_frames, 4, ts.height // 8, ts.width // 8, generator=g)
        return {
            "latents": lat,
            "text_embeds": torch.randn(G.text_tokens, 6, generator=g),
            "index": i,
        }


def test_dataloader_with_packs_and_corrupt_samples():
    shapes = _shapes([0, 1, 2, 3, 4] * 3)
    sampler = _sampler(shapes)
    loader = DataLoader(
        _Latents(shapes, corrupt={3}), batch_sampler=sampler, collate_fn=PackCollator(G)
    )
    seen, skipped = [], []
    for batch in loader:
        assert batch.seq_len <= 600
        seen += list(batch.indices)
        skipped += [s.index for s in batch.skipped]
    assert skipped == [3]
    assert sorted(seen + skipped) == list(range(len(shapes)))


def _write_manifest(path, rows):
    with ManifestWriter(path) as w:
        for r in rows:
            w.write(r)


def test_from_manifest(tmp_path):
    rows = [
        {
            "path": f"c{i}.mp4",
            "caption": "x",
            "type": "video",
            "frames": 40 + i,
            "height": 480,
            "width": 854,
            "fps": 8.0,
        }
        for i in range(6)
    ] + [
        {"path": "i.png", "caption": "y", "type": "image", "frames": 1, "height": 512, "width": 512}
    ]
    m = tmp_path / "m.jsonl"
    _write_manifest(m, rows)
    s = FramePackSampler.from_manifest(m, stage=STAGE, geometry=G, token_budget=2000)
    assert len(s.records) == 7 and s.manifest_invalid == ()
    assert sorted(i for b in s for i in b) == list(range(7))


def test_manifest_bad_input(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        FramePackSampler.from_manifest(empty, stage=STAGE, geometry=G, token_budget=2000)
    with pytest.raises(FileNotFoundError):
        shapes_from_manifest(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    good = {
        "path": "a.mp4",
        "caption": "",
        "type": "video",
        "frames": 9,
        "height": 64,
        "width": 64,
        "fps": 8,
    }
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "frames": 0}) + "\n{not json\n")
    with pytest.raises(ManifestError, match=r"bad\.jsonl:2: "):
        shapes_from_manifest(bad)
    ms = shapes_from_manifest(bad, strict=False)
    assert len(ms.records) == 1
    assert [(s.index, s.reason) for s in ms.invalid] == [
        (2, "invalid_record"),
        (3, "invalid_record"),
    ]


def test_groups_train_together_in_order_and_within_the_budget():
    # 12 samples in 6 pairs of one shape each; pairs (2g, 2g + 1) are declared out of order.
    shapes = _shapes([1, 1, 3, 3] * 3)
    groups = [[2 * g + 1, 2 * g] for g in range(6)]
    sampler = _sampler(shapes, groups=groups, token_budget=600, seed=3)
    packs = list(sampler)
    seen = [i for p in packs for i in p]
    assert sorted(seen) == list(range(12))  # every sample once
    for p in packs:
        assert len(p) % 2 == 0
        for a, b in zip(p[0::2], p[1::2]):
            assert a == b + 1 and b % 2 == 0  # each group whole, next to itself, in its order
    # Planned over the groups against half the budget: two members fill at most the budget.
    assert all(0 < 2 * pack.tokens <= 600 for pack in sampler.plan().for_rank(0))
    plain = _sampler([shapes[g[0]] for g in groups], token_budget=300, seed=3)
    assert [len(p) for p in packs] == [2 * len(p) for p in plain]


@pytest.mark.parametrize(
    "groups, match",
    [
        ([], "at least one group"),
        ([[0, 1], [2]], "same size"),
        ([[0, 1], [1, 2]], "more than one group"),
        ([[0, 12]], "outside"),
        ([[0, 2]], "different shapes"),
    ],
)
def test_bad_groups_are_named(groups, match):
    shapes = _shapes([1, 1, 3, 3] * 3)
    with pytest.raises(ValueError, match=match):
        _sampler(shapes, groups=groups)


def test_a_grouped_resume_refuses_other_groups():
    shapes = _shapes([1] * 8)
    a = _sampler(shapes, groups=[[0, 1], [2, 3], [4, 5], [6, 7]], seed=2)
    it = iter(a)
    next(it)
    state = a.state_dict()
    same = _sampler(shapes, groups=[[0, 1], [2, 3], [4, 5], [6, 7]], seed=2)
    same.load_state_dict(state)
    assert list(same) == list(it)  # the rest of the epoch, pairs intact
    other = _sampler(shapes, groups=[[1, 0], [2, 3], [4, 5], [6, 7]], seed=2)
    with pytest.raises(ValueError, match="fingerprint"):
        other.load_state_dict(state)
