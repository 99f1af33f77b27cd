"""Exactness against diffusers' AutoencoderKLCogVideoX (same config, same random weights).

Measure: max|ours - ref| / max|ref| (docs/architecture.md §Exactness); fp32 target 1e-5.
"""

from __future__ import annotations

import pytest
import torch

from cogvx.vae3d import CausalVAE3D, Tiling, VAEConfig

TOL = 1e-5


@pytest.fixture(scope="module")
def x(make_video):
    return make_video(2, 17, 32, 48)


@torch.no_grad()
def test_encode_default_chunks(tiny_pair, x, rel_err, make_video, randomize, make_reference):
    ours, ref = tiny_pair
    pr = ref.encode(x).latent_dist
    po = ours.encode(x)  # reference default: 8 frames per chunk, first chunk takes the rest
    assert po.mode().shape == (2, 4, 5, 4, 6)
    assert rel_err(po.mean, pr.mean) < TOL
    assert rel_err(po.logvar, pr.logvar) < TOL


@torch.no_grad()
def test_decode_default_chunks(tiny_pair, x, rel_err, make_video, randomize, make_reference):
    ours, ref = tiny_pair
    z = torch.randn(2, 4, 5, 4, 6, generator=torch.Generator().manual_seed(1))
    assert rel_err(ours.decode(z), ref.decode(z).sample) < TOL


@pytest.mark.parametrize(("enc_chunk", "dec_chunk"), [(None, None), (4, 4), (12, 2)])
@torch.no_grad()
def test_other_chunk_sizes(
    tiny_pair, enc_chunk, dec_chunk, rel_err, make_video, randomize, make_reference
):
    ours, ref = tiny_pair
    x = make_video(1, 25, 16, 24, seed=3)
    ref.num_sample_frames_batch_size = enc_chunk or 10**6
    ref.num_latent_frames_batch_size = dec_chunk or 10**6
    try:
        pr = ref.encode(x).latent_dist
        z = pr.mode()
        dr = ref.decode(z).sample
    finally:
        ref.num_sample_frames_batch_size, ref.num_latent_frames_batch_size = 8, 2
    po = ours.encode(x, frames_per_chunk=enc_chunk)
    assert rel_err(po.mean, pr.mean) < TOL
    assert rel_err(ours.decode(z, latent_frames_per_chunk=dec_chunk), dr) < TOL


@torch.no_grad()
def test_tiled_matches_reference_where_it_is_consistent(
    tiny_pair, rel_err, make_video, randomize, make_reference
):
    """48x40 pixel tiles (6x5 latents, overlap 1/6, 1/5) are self-consistent in the reference."""
    ours, ref = tiny_pair
    x = make_video(1, 9, 96, 112, seed=4)
    ref.enable_tiling(tile_sample_min_height=48, tile_sample_min_width=40)
    try:
        pr = ref.encode(x).latent_dist
        z = pr.mode()
        dr = ref.decode(z).sample
    finally:
        ref.disable_tiling()
    tiles = Tiling(48, 40)
    assert rel_err(ours.encode(x, tiling=tiles).mean, pr.mean) < TOL
    assert rel_err(ours.decode(z, tiling=tiles), dr) < TOL


@torch.no_grad()
def test_batch_slicing(tiny_pair, x, rel_err, make_video, randomize, make_reference):
    ours, ref = tiny_pair
    ref.enable_slicing()
    try:
        pr = ref.encode(x).latent_dist
    finally:
        ref.disable_slicing()
    assert rel_err(ours.encode(x, batch_chunk=1).mean, pr.mean) < TOL
    assert rel_err(ours.decode(pr.mode(), batch_chunk=1), ours.decode(pr.mode())) < TOL


def test_autograd_path_matches_reference(tiny_pair, rel_err, make_video, randomize, make_reference):
    """With autograd recording, the plain (out-of-place) path runs; same numbers, and grads flow."""
    ours, ref = tiny_pair
    x = make_video(1, 9, 16, 16, seed=5)
    with torch.no_grad():
        pr = ref.encode(x).latent_dist
        dr = ref.decode(pr.mode()).sample
    po = ours.encode(x)
    out = ours.decode(po.mode())
    assert rel_err(po.mean.detach(), pr.mean) < TOL
    assert rel_err(out.detach(), dr) < TOL
    out.square().mean().backward()
    grads = [p.grad for p in ours.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    ours.zero_grad(set_to_none=True)


def test_posterior_matches_reference(tiny_pair, rel_err, make_video, randomize, make_reference):
    ours, ref = tiny_pair
    x = make_video(1, 5, 16, 16, seed=6)
    with torch.no_grad():
        pr = ref.encode(x).latent_dist
        po = ours.encode(x)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert rel_err(po.sample(generator=g1), pr.sample(generator=g2)) < TOL
    # The reference sums KL over dims 1..3; ours over all non-batch dims (dims= reproduces it).
    assert rel_err(po.kl(dims=(1, 2, 3)), pr.kl()) < TOL
    assert po.kl().shape == (1,)
    assert rel_err(po.nll(po.mode(), dims=(1, 2, 3)), pr.nll(pr.mode())) < TOL


def test_latent_channels_from_config(rel_err, make_video, randomize, make_reference):
    cfg = VAEConfig.tiny(latent_channels=6)
    ours = CausalVAE3D(cfg).eval()
    randomize(ours, seed=3)
    ref = make_reference(cfg)
    ref.load_state_dict(ours.state_dict())
    x = make_video(1, 9, 16, 16, seed=8)
    with torch.no_grad():
        pr = ref.encode(x).latent_dist
        assert pr.mode().shape[1] == 6
        assert rel_err(ours.encode(x).mean, pr.mean) < TOL
        assert rel_err(ours.decode(pr.mode()), ref.decode(pr.mode()).sample) < TOL


def test_state_dict_keys_and_shapes_official_config_meta(
    rel_err, make_video, randomize, make_reference
):
    """Full-size official config on the meta device: the same 436 keys and shapes as diffusers."""
    diffusers = pytest.importorskip("diffusers")
    for cfg in (VAEConfig.cogvideox_2b(), VAEConfig.cogvideox_5b(), VAEConfig.cogvideox_1_5()):
        with torch.device("meta"):
            ours = CausalVAE3D(cfg)
            kwargs = {k: v for k, v in cfg.to_dict().items() if not k.startswith("_")}
            ref = diffusers.AutoencoderKLCogVideoX(**kwargs)
        a = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        b = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
        assert a == b
        assert len(a) == 436
        assert sum(p.numel() for p in ours.parameters()) == 215_583_907


@pytest.mark.slow
@torch.no_grad()
def test_official_width_parity(rel_err, make_video, randomize, make_reference):
    """Official widths (2B VAE) on a small clip: encode and decode match."""
    cfg = VAEConfig.cogvideox_2b()
    ours = CausalVAE3D(cfg).eval()
    randomize(ours, seed=11)
    ref = make_reference(cfg)
    ref.load_state_dict(ours.state_dict())
    x = make_video(1, 9, 32, 32, seed=12)
    pr = ref.encode(x).latent_dist
    assert rel_err(ours.encode(x).mean, pr.mean) < TOL
    assert rel_err(ours.decode(pr.mode()), ref.decode(pr.mode()).sample) < TOL
