"""Fast kernels (`cogvx.vae3d.kernels`, `RuntimeOptions.fast_kernels`) against the reference ones.

Kernels are checked against F.conv3d in float64; the whole model with fast kernels against the
same model with the reference kernels, outputs and gradients, on awkward sizes (odd frame counts,
odd heights and widths, channel counts that are not multiples of 8, batch 2).
Measure: max|a - b| / max|b|.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cogvx.vae3d import CausalVAE3D, RuntimeOptions, VAEConfig
from cogvx.vae3d.kernels import causal_conv3d_winograd, channels_last, upsample2x_conv

TOL = 1e-5  # fp32 outputs (reached: 1e-7 .. 4e-7 for single kernels, see the asserts)
GRAD_TOL = 1e-4  # fp32 parameter gradients of the whole model (sums over many positions)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


@pytest.mark.parametrize(
    ("b", "c_in", "c_out", "t", "h", "w"),
    [(2, 5, 7, 1, 5, 6), (1, 5, 7, 2, 4, 3), (2, 6, 4, 5, 7, 9), (1, 3, 9, 8, 11, 5)],
)
def test_winograd_causal_conv_matches_conv3d(b, c_in, c_out, t, h, w):
    g = torch.Generator().manual_seed(t * 100 + h)
    x = torch.randn(b, c_in, t, h, w, generator=g)
    front = torch.randn(b, c_in, 2, h, w, generator=g)
    weight = torch.randn(c_out, c_in, 3, 3, 3, generator=g)
    bias = torch.randn(c_out, generator=g)
    want = F.conv3d(
        torch.cat([front, x], 2).double(), weight.double(), bias.double(), padding=(0, 1, 1)
    )
    with torch.no_grad():
        got = causal_conv3d_winograd(channels_last(x), channels_last(front), weight, bias)
    assert got.is_contiguous(memory_format=torch.channels_last_3d)
    assert _rel(got, want) < TOL
    # Autograd (out-of-place) form: same output, and gradients equal those of F.conv3d.
    leaves = [v.clone().requires_grad_() for v in (x, front, weight, bias)]
    got = causal_conv3d_winograd(*leaves)
    x_, front_, weight_, bias_ = leaves
    ref = F.conv3d(torch.cat([front_, x_], 2), weight_, bias_, padding=(0, 1, 1))
    assert _rel(got.detach(), want) < TOL
    gy = torch.randn(ref.shape, generator=g)
    for a, r in zip(torch.autograd.grad(got, leaves, gy), torch.autograd.grad(ref, leaves, gy)):
        assert _rel(a, r) < TOL


def test_winograd_causal_conv_rejects_other_kernels():
    x = torch.zeros(1, 2, 3, 4, 4)
    with pytest.raises(ValueError, match="temporal kernel of 3"):
        causal_conv3d_winograd(x, x[:, :, :2], torch.zeros(2, 2, 1, 3, 3), None)


@pytest.mark.parametrize("keep", [0, 1, 5])
def test_upsample2x_conv_matches_upsample_then_conv(keep):
    g = torch.Generator().manual_seed(keep)
    x = torch.randn(2, 5, 5, 3, 7, generator=g)
    weight = torch.randn(6, 5, 3, 3, generator=g)
    bias = torch.randn(6, generator=g)
    space = x.repeat_interleave(2, 3).repeat_interleave(2, 4)  # nearest 2x in H, W
    up = torch.cat([space[:, :, :keep], space[:, :, keep:].repeat_interleave(2, 2)], dim=2)
    want = F.conv3d(up.double(), weight[:, :, None].double(), bias.double(), padding=(0, 1, 1))
    with torch.no_grad():
        got = upsample2x_conv(channels_last(x), weight, bias, keep=keep)
    assert got.shape == want.shape == (2, 6, keep + 2 * (5 - keep), 6, 14)
    assert _rel(got, want) < TOL


@pytest.fixture(scope="module")
def awkward_vae(randomize):
    cfg = VAEConfig.tiny().replace(block_out_channels=(12, 12, 24, 24), norm_num_groups=3)
    vae = CausalVAE3D(cfg).eval()
    randomize(vae, seed=21)
    return vae


def test_fast_kernels_are_a_runtime_switch_not_in_the_config(awkward_vae):
    assert RuntimeOptions().fast_kernels is False  # off by default (see BENCHMARKS.md)
    with awkward_vae.runtime(fast_kernels=True):
        assert awkward_vae.runtime_options.fast_kernels is True
    assert awkward_vae.runtime_options.fast_kernels is False
    assert not any("fast" in k for k in awkward_vae.config.to_dict())


@torch.no_grad()
def test_fast_and_reference_kernels_agree_inference(awkward_vae, make_video):
    vae = awkward_vae
    x = make_video(2, 13, 24, 40, seed=22)
    with vae.runtime(fast_kernels=False):
        p_ref = vae.encode(x, frames_per_chunk=4)
        d_ref = vae.decode(p_ref.mode(), latent_frames_per_chunk=3)
    with vae.runtime(fast_kernels=True):
        p = vae.encode(x, frames_per_chunk=4)
        d = vae.decode(p_ref.mode(), latent_frames_per_chunk=3)
    assert _rel(p.mean, p_ref.mean) < TOL and _rel(p.logvar, p_ref.logvar) < TOL
    assert _rel(d, d_ref) < TOL
    # Whole clip in one chunk and an odd chunk size take the other branches (odd last frame).
    z = p_ref.mode()
    for chunk in (None, 1):
        want = vae.decode(z, latent_frames_per_chunk=chunk)
        with vae.runtime(fast_kernels=True):
            assert _rel(vae.decode(z, latent_frames_per_chunk=chunk), want) < TOL


@torch.no_grad()
def test_fast_and_reference_caches_are_interchangeable(awkward_vae):
    """A chunk decoded with the fast kernels leaves a cache the reference kernels continue from."""
    vae = awkward_vae
    z = torch.randn(1, 4, 5, 3, 5, generator=torch.Generator().manual_seed(23))
    with vae.runtime(fast_kernels=True):
        first, cache = vae.decode_step(z[:, :, :3])
    with vae.runtime(fast_kernels=False):
        first_ref, cache_ref = vae.decode_step(z[:, :, :3])
        nxt = vae.decode_step(z[:, :, 3:], cache)[0]
        nxt_ref = vae.decode_step(z[:, :, 3:], cache_ref)[0]
    assert set(cache) == set(cache_ref)
    assert all(cache[k].shape == cache_ref[k].shape for k in cache)
    assert _rel(first, first_ref) < TOL
    assert _rel(nxt, nxt_ref) < TOL


def test_fast_and_reference_kernels_agree_with_autograd(awkward_vae, make_video):
    """Under autograd the fast causal conv is differentiable: same loss and parameter grads."""
    vae = awkward_vae
    x = make_video(1, 9, 16, 24, seed=24)

    def run(fast: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        vae.zero_grad(set_to_none=True)
        with vae.runtime(fast_kernels=fast):
            out = vae.decode(vae.encode(x, frames_per_chunk=4).mode(), latent_frames_per_chunk=2)
        out.square().mean().backward()
        grads = [p.grad.clone() for p in vae.parameters()]
        vae.zero_grad(set_to_none=True)
        return out.detach(), grads

    out_fast, g_fast = run(True)
    out_ref, g_ref = run(False)
    assert _rel(out_fast, out_ref) < TOL
    assert len(g_fast) == len(g_ref) > 0
    worst = max(_rel(a, b) for a, b in zip(g_fast, g_ref) if b.abs().max() > 0)
    assert worst < GRAD_TOL
