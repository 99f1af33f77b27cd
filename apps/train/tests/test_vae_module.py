"""VAE training: learning (+5 dB reconstruction PSNR), the GAN / perceptual path, and the export."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch

from cogvx.train.shapes import ShapesDataConfig, draw_clip, sample_clip
from cogvx.train.vae import (
    ClipDataModule,
    PatchDiscriminator3D,
    PerceptualLoss,
    VAEModule,
    foreground_weights,
    hinge_d_loss,
    noised_latents,
    reconstruction_metrics,
    weighted_l1,
)
from cogvx.vae3d import CausalVAE3D, VAEConfig
from cogvx.videoio import frames_to_tensor

TINY = VAEConfig.tiny(latent_channels=4).replace(block_out_channels=(8, 8, 8, 8), norm_num_groups=4)


def clips(n: int = 4, frames: int = 5, size: int = 32) -> torch.Tensor:
    # the small-shape setting (22-32% of the width) the learning amounts below were measured on
    cfg = ShapesDataConfig(
        num_clips=n,
        frames=frames,
        height=size,
        width=size,
        seed=0,
        size=(0.22, 0.32),
        travel=(0.38, 0.5),
    )
    return torch.stack(
        [frames_to_tensor(draw_clip(sample_clip(cfg, i), frames, size, size)) for i in range(n)]
    )


def trainer(steps: int, root) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


def mean_psnr(module: VAEModule, x: torch.Tensor) -> float:
    rows = reconstruction_metrics(module.reconstruct(x), x)
    return sum(r["psnr"] for r in rows) / len(rows)


def test_vae_reconstruction_psnr_rises_by_5_db_in_120_steps(tmp_path):
    # 120 steps, not 80: 80 steps rose by +4.97 dB in CI on an AMD EPYC (AVX2, 2 threads), just
    # under the bound; there 120 steps give 14.59 -> 20.92 dB (+6.3) in 6.5 s.
    torch.manual_seed(0)
    x = clips()
    data = torch.utils.data.DataLoader(list(x), batch_size=2, shuffle=True)
    module = VAEModule(
        vae=TINY,
        optim=SimpleNamespace(lr=2e-3, schedule="constant"),
        kl_weight=1e-4,
        disc_weight=0.0,
        logvar_init=-6.0,
        export=False,
    )
    before = mean_psnr(module, x)
    trainer(120, tmp_path).fit(module, train_dataloaders=data)
    after = mean_psnr(module, x)
    assert after >= before + 5.0, (before, after)


def test_gan_and_perceptual_terms_train_both_networks(tmp_path):
    torch.manual_seed(0)
    x = clips(2, frames=5, size=32)
    net = PerceptualLoss(width=0.125)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "p.safetensors")
    module = VAEModule(
        vae=TINY,
        optim=SimpleNamespace(lr=1e-3),
        perceptual_weight=0.1,
        perceptual_weights=str(tmp_path / "p.safetensors"),
        perceptual_width=0.125,
        disc_weight=0.1,
        disc_start=1,
        disc_channels=8,
        disc_layers=2,
        export=False,
    )
    loaded = dict(module.perceptual.named_parameters())
    assert all(torch.equal(loaded[k], v) for k, v in net.named_parameters() if k in loaded)
    disc_before = [p.detach().clone() for p in module.discriminator.parameters()]
    fit = trainer(3, tmp_path)
    fit.fit(module, train_dataloaders=torch.utils.data.DataLoader(list(x), batch_size=2))
    assert fit.global_step == 3  # VAE steps only: the discriminator's steps are not counted
    moved = [not torch.equal(a, b) for a, b in zip(disc_before, module.discriminator.parameters())]
    assert all(moved)  # the discriminator trained (it starts after step 1)
    assert not any(p.requires_grad for p in module.perceptual.parameters())


def test_hinge_loss_and_patch_discriminator_shapes():
    d = PatchDiscriminator3D(channels=8, layers=2)
    assert d(torch.zeros(1, 3, 5, 32, 32)).shape == (1, 1, 3, 8, 8)
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert float(hinge_d_loss(real, fake)) == pytest.approx(0.5 * (0.25 + 0.5))


def test_export_loads_in_diffusers_and_decodes_the_same(tmp_path):
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(0)
    module = VAEModule(vae=TINY.replace(scaling_factor=0.9), disc_weight=0.0, export=False)
    folder = module.save_pretrained(tmp_path / "vae")
    ours = CausalVAE3D.from_pretrained(folder)
    ref = AutoencoderKLCogVideoX.from_pretrained(folder).eval()
    assert ref.config.scaling_factor == pytest.approx(0.9)
    x = clips(1, frames=9, size=32)
    with torch.no_grad():
        z = ours.encode(x).mode()
        z_ref = ref.encode(x).latent_dist.mode()
        assert float((z - z_ref).abs().max()) <= 1e-4
        assert float((ours.decode(z) - ref.decode(z).sample).abs().max()) <= 1e-4


def test_clip_data_module_and_bad_settings(tmp_path):
    from cogvx.train.shapes import make_shapes_dataset

    manifest = make_shapes_dataset(
        tmp_path / "d", ShapesDataConfig(num_clips=3, height=32, width=32), progress=False
    )
    dm = ClipDataModule(str(manifest), frames=5, batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 3, 5, 32, 32) and float(batch.min()) >= -1 and float(batch.max()) <= 1
    with pytest.raises(ValueError, match="frames=6"):
        ClipDataModule(str(manifest), frames=6)
    with pytest.raises(ValueError, match="kl_weight=-1"):
        VAEModule(vae=TINY, kl_weight=-1)
    with pytest.raises(ValueError, match="crop_size=12"):
        VAEModule(vae=TINY, crop_size=12)
    for bad in (0, 4, 6, True):
        with pytest.raises(ValueError, match=f"clip_frames={bad!r}"):
            VAEModule(vae=TINY, clip_frames=bad)


def test_training_views_image_clip_window_and_crop():
    # image_prob picks one frame, else clip_frames picks a window of 4k + 1 consecutive frames.
    video = torch.arange(9.0)[None, None, :, None, None].expand(2, 3, 9, 16, 16)
    g = torch.Generator().manual_seed(0)
    window = VAEModule(vae=TINY, clip_frames=5)
    starts = set()
    for _ in range(40):
        v = window._view(video, g)
        assert v.shape == (2, 3, 5, 16, 16)
        t0 = int(v[0, 0, 0, 0, 0])
        assert torch.equal(v[0, 0, :, 0, 0], torch.arange(t0, t0 + 5.0))
        starts.add(t0)
    assert starts == set(range(5))  # every window start is drawn
    both = VAEModule(vae=TINY, clip_frames=5, image_prob=0.5, crop_size=8)
    lengths = {both._view(video, g).shape[2] for _ in range(40)}
    assert lengths == {1, 5} and both._view(video, g).shape[-2:] == (8, 8)
    # a window as long as the clip (or longer) leaves the clip whole
    assert VAEModule(vae=TINY, clip_frames=9)._view(video, g).shape[2] == 9


def test_image_frames_are_distinct_frames_of_each_clip_as_single_images():
    # image_frames=k: k distinct frames per clip, each its own T=1 video, clip-major order.
    video = (
        torch.arange(9.0)[None, None, :, None, None]
        + 100 * torch.arange(2.0)[:, None, None, None, None]
    ).expand(2, 3, 9, 16, 16)
    g = torch.Generator().manual_seed(0)
    module = VAEModule(vae=TINY, image_prob=1.0, image_frames=4)
    for _ in range(10):
        v = module._view(video, g)
        assert v.shape == (8, 3, 1, 16, 16)
        picked = v[:, 0, 0, 0, 0].reshape(2, 4)
        assert torch.equal(picked[1], picked[0] + 100)  # the same frames of both clips
        assert len(set(picked[0].tolist())) == 4  # distinct frames
        assert set(picked[0].tolist()) <= set(range(9))
    # more frames than the clip has: every frame once
    assert VAEModule(vae=TINY, image_prob=1.0, image_frames=20)._view(video, g).shape[0] == 18
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"image_frames={bad!r}"):
            VAEModule(vae=TINY, image_frames=bad)


def test_foreground_weighted_l1():
    # A plain background (the frame's median colour) weighs 1, a saturated object up to 1 + w.
    x = clips(2, frames=5, size=32)
    wgt = foreground_weights(x, 9.0)
    assert wgt.shape == (2, 1, 5, 32, 32)
    median = x[0, :, 0].reshape(3, -1).median(dim=-1).values
    bg = (x[0, :, 0] == median[:, None, None]).all(dim=0)
    assert bg.float().mean() > 0.5 and torch.all(wgt[0, 0, 0][bg] == 1.0)
    assert float(wgt.max()) > 4.0 and float(wgt.max()) <= 10.0
    # weight 0 is the plain mean; the weighted L1 of an all-background reconstruction is larger
    # than its plain L1 (the object's error counts more) and equal for a uniform error.
    grey = median[None, :, None, None, None].expand_as(x)
    assert torch.equal(weighted_l1(grey, x, 0.0), (grey - x).abs().mean())
    assert weighted_l1(grey, x, 9.0) > 2 * weighted_l1(grey, x, 0.0)
    torch.testing.assert_close(weighted_l1(x + 0.1, x, 9.0), torch.tensor(0.1))
    with pytest.raises(ValueError, match="foreground_weight=-1"):
        VAEModule(vae=TINY, foreground_weight=-1)


def test_noised_latents_scale_with_the_latents_and_vary_per_sample():
    # u * level * std(z) per sample, u ~ U(0, 1): never above level * std(z); level 0 is z itself.
    z = torch.randn(64, 4, 2, 8, 8) * 3.0 + 1.0
    assert noised_latents(z, 0.0) is z
    out = noised_latents(z, 0.5, torch.Generator().manual_seed(0))
    per_sample = (out - z).flatten(1).std(dim=1) / float(z.std())
    assert float(per_sample.max()) <= 0.5 * 1.05  # within sampling error of the cap
    assert float(per_sample.min()) < 0.1 and float(per_sample.max()) > 0.4  # spread over [0, 0.5]
    # scale-invariant: latents 10x larger get 10x the noise (the encoder cannot outgrow it)
    big = noised_latents(10 * z, 0.5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(big - 10 * z, 10 * (out - z), rtol=1e-4, atol=1e-4)
    # gradients reach the encoder's latents; the noise scale itself is not a path
    zg = z.clone().requires_grad_(True)
    noised_latents(zg, 0.5, torch.Generator().manual_seed(0)).sum().backward()
    torch.testing.assert_close(zg.grad, torch.ones_like(z))
    with pytest.raises(ValueError, match=r"latent_noise=-0\.1"):
        VAEModule(vae=TINY, latent_noise=-0.1)


def test_whiten_folds_a_basis_that_keeps_reconstructions():
    # The exported latents get an identity second moment and scaling_factor 1; decoding them
    # gives the reconstructions of the unwhitened VAE.
    torch.manual_seed(0)
    module = VAEModule(vae=TINY.replace(scaling_factor=0.7), disc_weight=0.0, whiten_latents=True)
    x = clips(4, frames=5, size=32)
    before = module.reconstruct(x)
    matrix = module.whiten([x[:2], x[2:]])
    assert module.vae.config.scaling_factor == 1.0 and tuple(matrix.shape) == (4, 4)
    with torch.no_grad():
        z = module.vae.encode(x, frames_per_chunk=None).mode()
    cells = z.movedim(1, -1).reshape(-1, 4).double()
    torch.testing.assert_close(
        cells.T @ cells / cells.shape[0], torch.eye(4, dtype=torch.float64), atol=1e-3, rtol=0
    )
    torch.testing.assert_close(module.reconstruct(x), before, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="whiten_latents='yes'"):
        VAEModule(vae=TINY, whiten_latents="yes")
