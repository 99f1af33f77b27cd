"""Collation into packed sequences and back (round trip of every tensor)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cogvx.framepack import (
    ModelGeometry,
    PackCollator,
    SkippedSample,
    collate_packed,
    patchify,
    unpack,
    unpack_video,
    unpatchify,
)

sample = st.tuples(
    st.integers(1, 5),  # latent frames
    st.integers(1, 3).map(lambda k: 2 * k),  # latent height
    st.integers(1, 3).map(lambda k: 2 * k),  # latent width
    st.integers(0, 7),  # text length
)


@given(
    samples=st.lists(sample, min_size=1, max_size=5),
    pt=st.sampled_from([None, 2, 3]),
    channels=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_pack_unpack_round_trip(samples, pt, channels, seed):
    g = torch.Generator().manual_seed(seed)
    geometry = ModelGeometry(patch_size_t=pt)
    items = [
        {
            "latents": torch.randn(t, channels, h, w, generator=g),
            "text_embeds": torch.randn(n, 5, generator=g),
            "index": i,
        }
        for i, (t, h, w, n) in enumerate(samples)
    ]
    batch = PackCollator(geometry)(items)
    p, ptt = 2, pt or 1
    video = [-(-t // ptt) * (h // p) * (w // p) for t, h, w, _ in samples]
    lengths = [n + v for (_, _, _, n), v in zip(samples, video)]
    assert batch.cu_seqlens.tolist() == [sum(lengths[:k]) for k in range(len(lengths) + 1)]
    assert batch.cu_seqlens.dtype == torch.int32
    assert batch.seq_len == sum(lengths) and batch.max_seqlen == max(lengths)
    assert batch.latent_tokens.shape == (sum(video), channels * ptt * p * p)
    assert batch.indices == tuple(range(len(samples)))
    # Positions: text then video rows of each sample, covering the sequence once.
    pos = torch.cat([batch.text_positions, batch.video_positions]).sort().values
    assert torch.equal(pos, torch.arange(batch.seq_len))
    for i in range(len(samples)):
        rows = torch.arange(batch.cu_seqlens[i], batch.cu_seqlens[i + 1])
        assert torch.all(batch.sample_ids[rows] == i)
    mask = batch.attention_mask()
    assert mask.shape == (batch.seq_len, batch.seq_len)
    assert int(mask.sum()) == sum(n * n for n in lengths)

    out = unpack(batch)
    assert len(out) == len(items)
    for item, back in zip(items, out):
        assert torch.equal(item["latents"], back["latents"])
        assert torch.equal(item["text_embeds"], back["text_embeds"])


def test_patchify_matches_conv_weight_layout():
    # A 2x2 Conv2d with stride 2 per frame equals a Linear over patchify's (c, ph, pw) features.
    torch.manual_seed(0)
    lat = torch.randn(3, 4, 6, 8)
    conv = torch.nn.Conv2d(4, 5, kernel_size=2, stride=2)
    ref = conv(lat).flatten(2).transpose(1, 2).reshape(-1, 5)  # [(t h w), D]
    tok, grid, pad = patchify(lat, 2)
    assert grid == (3, 3, 4) and pad == 0
    ours = tok @ conv.weight.reshape(5, -1).T + conv.bias
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_temporal_pad_prepends_first_frame():
    lat = torch.arange(3.0).reshape(3, 1, 1, 1).expand(3, 1, 2, 2).contiguous()
    tok, grid, pad = patchify(lat, 2, 2)
    assert pad == 1 and grid == (2, 1, 1)
    assert tok[0].tolist() == [0.0] * 4 + [0.0] * 4  # frames 0 (copy) and 0
    assert torch.equal(unpatchify(tok, grid, 1, 2, 2, pad), lat)


def test_collate_bad_input():
    g = ModelGeometry()
    with pytest.raises(ValueError, match="every sample of this pack was skipped"):
        collate_packed([SkippedSample(0, "corrupt")], g)
    with pytest.raises(ValueError, match="no 'text_embeds'"):
        collate_packed([{"latents": torch.zeros(1, 4, 2, 2)}], g)
    with pytest.raises(ValueError, match="multiples of patch_size"):
        collate_packed([{"latents": torch.zeros(1, 4, 3, 2), "text_embeds": torch.zeros(1, 2)}], g)
    with pytest.raises(ValueError, match="latents channels"):
        collate_packed(
            [
                {"latents": torch.zeros(1, 4, 2, 2), "text_embeds": torch.zeros(1, 2)},
                {"latents": torch.zeros(1, 3, 2, 2), "text_embeds": torch.zeros(1, 2)},
            ],
            g,
        )
    batch = collate_packed(
        [{"latents": torch.zeros(1, 4, 2, 2), "text_embeds": torch.zeros(1, 2)}], g
    )
    with pytest.raises(ValueError, match="rows"):
        unpack_video(torch.zeros(2, 16), batch, 4)
    moved = batch.to(dtype=torch.float64)
    assert moved.latent_tokens.dtype == torch.float64 and moved.sample_ids.dtype == torch.long
