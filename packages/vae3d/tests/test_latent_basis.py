"""Folding a latent change of basis into the VAE: same reconstruction, transformed latents."""

from __future__ import annotations

import pytest
import torch

from cogvx.vae3d import CausalVAE3D, fold_latent_transform, latent_whitening


def _scaled(vae: CausalVAE3D, video: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return vae.encode(video, frames_per_chunk=None).mode() * vae.config.scaling_factor


def test_whitening_gives_identity_second_moment():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(6, 6, generator=g, dtype=torch.float64)
    z = torch.einsum("ij,nj...->ni...", mix, torch.randn(5, 6, 3, 4, 4, generator=g).double())
    a = latent_whitening(z)
    w = torch.einsum("ij,nj...->ni...", a, z).movedim(1, -1).reshape(-1, 6)
    assert torch.allclose(w.T @ w / w.shape[0], torch.eye(6, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(a, a.T, atol=1e-12)  # ZCA: symmetric
    with pytest.raises(ValueError, match="latents must be"):
        latent_whitening(torch.zeros(0, 6))


def test_fold_keeps_reconstruction_and_maps_latents(tiny_vae, make_video, rel_err):
    video = make_video(b=2, f=9, h=32, w=48, seed=3)
    channels = tiny_vae.config.latent_channels
    z_old = _scaled(tiny_vae, video)
    matrix = latent_whitening(z_old)
    new = fold_latent_transform(tiny_vae, matrix)
    assert new.config.scaling_factor == 1.0
    # The original is left as it was (a copy is folded).
    assert rel_err(_scaled(tiny_vae, video), z_old) == 0.0
    z_new = _scaled(new, video)
    expected = torch.einsum("ij,nj...->ni...", matrix.float(), z_old)
    assert rel_err(z_new, expected) <= 1e-5
    cells = z_new.movedim(1, -1).reshape(-1, channels).double()
    assert torch.allclose(
        cells.T @ cells / cells.shape[0], torch.eye(channels, dtype=torch.float64), atol=1e-3
    )
    with torch.no_grad():
        before = tiny_vae.decode(z_old / tiny_vae.config.scaling_factor)
        after = new.decode(z_new / new.config.scaling_factor)
    assert rel_err(after, before) <= 1e-5


def test_fold_survives_save_and_load(tiny_vae, make_video, rel_err, tmp_path):
    video = make_video(b=1, f=5, h=32, w=32, seed=4)
    matrix = (
        torch.linalg.qr(
            torch.randn(
                tiny_vae.config.latent_channels,
                tiny_vae.config.latent_channels,
                generator=torch.Generator().manual_seed(1),
            )
        )[0]
        * 0.5
    )
    new = fold_latent_transform(tiny_vae, matrix)
    new.save_pretrained(tmp_path / "vae")
    loaded = CausalVAE3D.from_pretrained(tmp_path / "vae").eval()
    assert loaded.config.scaling_factor == 1.0
    assert rel_err(_scaled(loaded, video), _scaled(new, video)) <= 1e-6


def test_fold_refuses_bad_matrices(tiny_vae):
    c = tiny_vae.config.latent_channels
    with pytest.raises(ValueError, match=rf"matrix must be \[{c}, {c}\]"):
        fold_latent_transform(tiny_vae, torch.eye(c + 1))
    singular = torch.eye(c)
    singular[0, 0] = 0.0
    with pytest.raises(ValueError, match="invertible"):
        fold_latent_transform(tiny_vae, singular)


def test_diffusers_decodes_the_folded_vae_the_same(tiny_vae, make_video, rel_err):
    diffusers = pytest.importorskip("diffusers")
    video = make_video(b=1, f=9, h=32, w=32, seed=5)
    new = fold_latent_transform(tiny_vae, latent_whitening(_scaled(tiny_vae, video)))
    kwargs = {k: v for k, v in new.config.to_dict().items() if not k.startswith("_")}
    ref = diffusers.AutoencoderKLCogVideoX(**kwargs).eval()
    ref.load_state_dict(new.state_dict(), strict=True)
    z = _scaled(new, video)
    with torch.no_grad():
        ours = new.decode(z)
        theirs = ref.decode(z).sample
        before = tiny_vae.decode(
            torch.linalg.solve(
                latent_whitening(_scaled(tiny_vae, video)).float(), z.movedim(1, -1)[..., None]
            )[..., 0].movedim(-1, 1)
            / tiny_vae.config.scaling_factor
        )
    assert rel_err(theirs, ours) <= 1e-5
    assert rel_err(ours, before) <= 1e-5
