"""Training the 3D causal VAE: a LightningModule (losses, discriminator, two optimizers) and a
LightningDataModule of pixel clips.

The objective is the CogVideoX paper's (§2.1; docs/training.md §VAE training, §VAE losses,
§Discriminator): a weighted sum of an L1 reconstruction term, an LPIPS-style perceptual term and
the KL term of the diagonal Gaussian posterior, plus a hinge GAN loss from a 3D patch
discriminator that starts after ``disc_start`` steps. No loss weights were published; the defaults
here are conventional (KL 1e-6 per element, perceptual 0.1 when a network is given, GAN 0.1).

* **Perceptual network** (:class:`PerceptualLoss`): a VGG16-shaped conv stack compared LPIPS-style
  (unit-normalised channels, squared difference, per-layer 1x1 weights, spatial mean), on one
  random frame per video as the released loss does. Its weights load from a local safetensors file
  (``perceptual_weights``); nothing is downloaded. Without a file the backbone is random (tests).
* **Discriminator** (:class:`PatchDiscriminator3D`): strided 3D convolutions down to one logit per
  space-time patch; hinge loss. The released loss's ``if global_step >= disc_start: gen_loss = 0``
  (which switches the generator's GAN term *off* after the start) is not reproduced: here the
  generator term starts with the discriminator (docs/differences.md §Training).
* **Two optimizers, manual optimization**: the VAE's AdamW steps every batch; the discriminator's
  steps from ``disc_start`` on. ``global_step`` counts VAE steps only (the discriminator steps its
  inner torch optimizer, so ``trainer.max_steps`` means VAE steps; both states are checkpointed).
* **Foreground weighting by option** (default off; not in the paper): ``foreground_weight``
  weighs each pixel's L1 by 1 + ``foreground_weight`` x its distance from its frame's median
  colour (:func:`foreground_weights`), for data whose objects cover a few percent of a plain
  background (the shapes dataset, docs/shapes-model.md), where a plain L1 is first minimised by
  the background alone.
* **Cheap steps by option**: ``image_prob`` trains a step on one random frame per clip (a T=1
  image, which the causal VAE encodes like a first frame; ``image_frames`` > 1 takes that many
  distinct frames per clip as independent images, a larger image batch from the same clips: on a
  2-thread CPU 32 images cost 3.1x the time of 8, not 4x), ``clip_frames`` the other steps on a
  random window of ``4k + 1`` frames (e.g. 5 of 9: a first frame and one group of 4, the unit of
  the 4x temporal compression) and ``crop_size`` on random spatial crops; the VAE is fully
  convolutional and causal, so all of them train the same weights at a fraction of the cost.
* **Latent noise by option** (default off; not in the paper): ``latent_noise`` decodes the
  sampled latents plus noise of up to that fraction of their std (:func:`noised_latents`), so
  that the decoder tolerates the small errors of generated latents and the encoder keeps
  contents apart by more than them (docs/shapes-model.md).
* **Validation**: PSNR, SSIM and adjacent-frame flicker of the posterior-mode reconstruction from
  :mod:`cogvx.evals.metrics` (frames in [0, 1]).
* **Start and export**: from a :class:`cogvx.vae3d.VAEConfig` (scratch) or a CogVideoX VAE folder
  (fine-tuning); :meth:`VAEModule.save_pretrained` writes a folder that
  ``CausalVAE3D.from_pretrained`` and diffusers' ``AutoencoderKLCogVideoX.from_pretrained`` load.
  With ``export=True`` the run writes it to ``<run dir>/vae`` when training ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from cogvx.evals import metrics
from cogvx.train.dit import lr_lambda
from cogvx.vae3d import CausalVAE3D, VAEConfig, fold_latent_transform, latent_whitening
from cogvx.videoio import ManifestRecord, frames_to_tensor, read_manifest, read_video, resolve_path

__all__ = [
    "ClipDataModule",
    "PatchDiscriminator3D",
    "PerceptualLoss",
    "VAEModule",
    "foreground_weights",
    "hinge_d_loss",
    "noised_latents",
    "reconstruction_metrics",
    "weighted_l1",
]

# VGG16 `features`: conv channels per stage; LPIPS taps the last ReLU of each stage.
_VGG16_STAGES: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
)


class PerceptualLoss(nn.Module):
    """LPIPS-style distance between two image batches ``[N, 3, H, W]`` in [-1, 1].

    ``d(x, y) = sum_l mean_hw( w_l . (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|)^2 )`` over the stage
    outputs ``f_l`` of a VGG16-shaped backbone, with per-channel weights ``w_l`` (ones unless the
    weights file has ``lin.<l>.weight``). ``width`` scales the channel counts (1.0 = VGG16).
    The backbone is frozen: it is a measuring instrument, not trained.
    """

    def __init__(self, *, width: float = 1.0, stages: int = 5) -> None:
        super().__init__()
        if not 1 <= stages <= len(_VGG16_STAGES):
            raise ValueError(f"stages={stages}: expected 1 to {len(_VGG16_STAGES)}")
        if not width > 0:
            raise ValueError(f"width={width}: expected > 0")
        self.stages = nn.ModuleList()
        channels_in = 3
        for i, stage in enumerate(_VGG16_STAGES[:stages]):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i else []
            for c in stage:
                c = max(1, round(c * width))
                layers += [nn.Conv2d(channels_in, c, 3, padding=1), nn.ReLU()]
                channels_in = c
            self.stages.append(nn.Sequential(*layers))
        self.lin = nn.ParameterList(
            [nn.Parameter(torch.ones(max(1, round(s[-1] * width)))) for s in _VGG16_STAGES[:stages]]
        )
        # ImageNet statistics, as LPIPS' ScalingLayer (inputs in [-1, 1]).
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | Path, *, width: float = 1.0, stages: int = 5) -> PerceptualLoss:
        """Load backbone (and optional ``lin.<l>``) weights from a local safetensors file.

        Keys are either this module's (``stages.<s>.<i>.weight``) or torchvision's VGG16
        ``features.<n>.weight`` (mapped by order of the convolutions).
        """
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"perceptual_weights={str(path)!r}: no such file")
        net = cls(width=width, stages=stages)
        state = load_file(str(path))
        if any(k.startswith("features.") for k in state):
            convs = [m for m in net.stages.modules() if isinstance(m, nn.Conv2d)]
            names = sorted(
                {k.rsplit(".", 1)[0] for k in state if k.startswith("features.")},
                key=lambda n: int(n.split(".")[1]),
            )
            mapped = {}
            for conv_name, conv in zip(names, convs):
                mapped[conv] = (state[f"{conv_name}.weight"], state[f"{conv_name}.bias"])
            if len(mapped) != len(convs):
                raise ValueError(
                    f"perceptual_weights={str(path)!r}: {len(names)} convolutions, the network has {len(convs)}"
                )
            with torch.no_grad():
                for conv, (w, b) in mapped.items():
                    conv.weight.copy_(w)
                    conv.bias.copy_(b)
            lin = {k: v for k, v in state.items() if k.startswith("lin.")}
            if lin:
                net.lin.load_state_dict({k[len("lin.") :]: v.flatten() for k, v in lin.items()})
        else:
            missing, unexpected = net.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith(("lin.", "shift", "scale"))]
            if missing or unexpected:
                raise ValueError(
                    f"perceptual_weights={str(path)!r}: missing {missing[:3]}, unexpected {unexpected[:3]}"
                )
        return net

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Mean distance over the batch (a scalar)."""
        h = torch.cat([x, y]).sub(self.shift).div(self.scale)  # [2N, 3, H, W]
        total = x.new_zeros(())
        for stage, w in zip(self.stages, self.lin):
            h = stage(h)
            f = h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            fx, fy = f.chunk(2)
            total = total + ((fx - fy).pow(2) * w.view(1, -1, 1, 1)).sum(dim=1).mean()
        return total


class PatchDiscriminator3D(nn.Module):
    """3D patch discriminator: strided Conv3d + GroupNorm + LeakyReLU blocks, one logit per patch.

    Video ``[B, 3, T, H, W]`` in [-1, 1] -> logits ``[B, 1, t, h, w]``. The first layer halves only
    space (short clips keep their frames); later layers halve time and space.
    """

    def __init__(self, *, channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        if layers < 1 or channels < 1:
            raise ValueError(f"channels={channels}, layers={layers}: expected both >= 1")
        blocks: list[nn.Module] = [
            nn.Conv3d(3, channels, 3, stride=(1, 2, 2), padding=1),
            nn.LeakyReLU(0.2),
        ]
        c = channels
        for _ in range(layers - 1):
            blocks += [
                nn.Conv3d(c, 2 * c, 3, stride=2, padding=1),
                nn.GroupNorm(min(32, 2 * c) if (2 * c) % min(32, 2 * c) == 0 else 1, 2 * c),
                nn.LeakyReLU(0.2),
            ]
            c *= 2
        blocks.append(nn.Conv3d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*blocks)

    def forward(self, video: Tensor) -> Tensor:
        return self.net(video)


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge loss of the discriminator: mean relu(1 - D(x)) + mean relu(1 + D(x_hat)), halved."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def foreground_weights(video: Tensor, foreground_weight: float) -> Tensor:
    """Per-pixel weights ``[B, 1, T, H, W]`` = 1 + ``foreground_weight`` x the pixel's distance
    from its frame's median colour (mean over channels of the absolute difference, in [0, 1] for
    videos in [-1, 1]). On a plain background the median is the background colour, so pixels of
    small objects weigh up to ``1 + foreground_weight`` and the background 1."""
    b, c, t, h, w = video.shape
    # [B, C, T, H, W] -> [B, C, T, H*W]: the per-frame, per-channel median colour
    median = video.reshape(b, c, t, h * w).median(dim=-1).values[..., None, None]
    distance = (video - median).abs().mean(dim=1, keepdim=True) / 2
    return 1.0 + foreground_weight * distance


def noised_latents(z: Tensor, level: float, generator: torch.Generator | None = None) -> Tensor:
    """``z`` plus Gaussian noise of std ``u * level * std(z)``, ``u ~ U(0, 1)`` per sample.

    The decoder-side latent noise of the ``latent_noise`` option (a latent-denoising objective in
    the spirit of l-DeTok, Yang et al. 2025, "Latent Denoising Makes Good Visual Tokenizers"):
    the decoder learns to render latents that are slightly off the encoder's, which is what a
    diffusion model's samples are, and since the noise scales with the batch's latent std
    (detached) the encoder cannot escape it by growing its latents; it has to keep the contents
    (e.g. which shape) apart by more than the noise. ``level`` 0 returns ``z`` itself.
    """
    if level == 0:
        return z
    # [B, C, T, H, W]: one noise level per sample, from clean (u = 0) to level * std
    u = torch.rand((z.shape[0],) + (1,) * (z.dim() - 1), generator=generator)
    noise = torch.randn(z.shape, generator=generator)
    scale = u.to(z) * float(level) * z.detach().float().std().to(z)
    return z + scale * noise.to(z)


def weighted_l1(recon: Tensor, target: Tensor, foreground_weight: float = 0.0) -> Tensor:
    """L1 of ``recon`` against ``target``; with ``foreground_weight > 0`` a weighted mean with
    :func:`foreground_weights` of the target (weights normalised to mean 1), so a small object on
    a plain background is not drowned by the background's pixels. ``0`` is the plain mean."""
    err = (recon - target).abs()
    if foreground_weight == 0:
        return err.mean()
    wgt = foreground_weights(target.detach(), foreground_weight)
    return (err * wgt).sum() / (wgt.sum() * err.shape[1])


def reconstruction_metrics(recon: Tensor, target: Tensor) -> list[dict[str, float]]:
    """Per-clip PSNR, SSIM and flicker (``cogvx.evals.metrics``) of videos ``[B, 3, T, H, W]`` in [-1, 1]."""
    out = []
    # [B, 3, T, H, W] in [-1, 1] -> [B, T, H, W, 3] in [0, 1]
    r = ((recon.detach().float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 4, 1).cpu()
    t = ((target.detach().float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 4, 1).cpu()
    for rb, tb in zip(r, t):
        row = {"psnr": metrics.psnr(rb, tb), "ssim": metrics.ssim(rb, tb)}
        if rb.shape[0] > 1:
            row["flicker"] = metrics.adjacent_frame_l1(rb)
        out.append(row)
    return out


class VAEModule(L.LightningModule):
    """Trains a :class:`cogvx.vae3d.CausalVAE3D` (module docstring for the objective).

    Give ``vae`` (a config: from scratch) or ``vae_folder`` (a CogVideoX VAE folder: fine-tuning;
    with both, the folder's config must equal ``vae``). ``optim`` is the run's
    :class:`cogvx.train.config.OptimConfig` (lr, betas, weight decay, warmup, cosine); the
    discriminator uses the same settings with ``disc_lr`` (default: the same lr).
    """

    def __init__(
        self,
        vae: VAEConfig | None = None,
        vae_folder: str | None = None,
        optim: Any = None,
        l1_weight: float = 1.0,
        foreground_weight: float = 0.0,
        perceptual_weight: float = 0.0,
        perceptual_weights: str | None = None,
        perceptual_width: float = 1.0,
        kl_weight: float = 1e-6,
        disc_weight: float = 0.1,
        disc_start: int = 2000,
        disc_channels: int = 32,
        disc_layers: int = 3,
        disc_lr: float | None = None,
        grad_clip: float | None = 1.0,
        sample_posterior: bool = True,
        image_prob: float = 0.0,
        image_frames: int = 1,
        clip_frames: int | None = None,
        crop_size: int | None = None,
        export: bool = True,
        calibrate_scaling: bool = False,
        logvar_init: float | None = None,
        latent_noise: float = 0.0,
        whiten_latents: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("l1_weight", l1_weight),
            ("foreground_weight", foreground_weight),
            ("perceptual_weight", perceptual_weight),
            ("kl_weight", kl_weight),
            ("disc_weight", disc_weight),
            ("latent_noise", latent_noise),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}={value!r}: expected a finite number >= 0")
        if not 0.0 <= image_prob <= 1.0:
            raise ValueError(f"image_prob={image_prob!r}: expected a probability in [0, 1]")
        if isinstance(image_frames, bool) or not isinstance(image_frames, int) or image_frames < 1:
            raise ValueError(f"image_frames={image_frames!r}: expected an int >= 1")
        if clip_frames is not None and (
            isinstance(clip_frames, bool)
            or not isinstance(clip_frames, int)
            or clip_frames < 1
            or (clip_frames - 1) % 4
        ):
            raise ValueError(
                f"clip_frames={clip_frames!r}: expected 4k + 1 frames (1, 5, 9, ...) or None"
            )
        if vae is not None and float(vae.temporal_compression_ratio).is_integer():
            # Hydra types this float field: 4.0 in config.json breaks diffusers' latent-frame
            # arithmetic ((F - 1) // 4.0 is a float); the released configs store the int 4.
            vae = vae.replace(temporal_compression_ratio=int(vae.temporal_compression_ratio))
        if vae is None and vae_folder is None:
            raise ValueError(
                "vae=None and vae_folder=None: give a VAEConfig (scratch) or a VAE folder"
            )
        if vae_folder is not None:
            self.vae = CausalVAE3D.from_pretrained(vae_folder)
            if vae is not None and vae != self.vae.config:
                raise ValueError(
                    f"vae_folder={vae_folder!r}: its config differs from the given vae config"
                )
        else:
            self.vae = CausalVAE3D(vae)
            if logvar_init is not None:
                # Start the posterior narrow (std exp(logvar_init / 2)): at the default init its
                # std is ~1, and the sampled latents carry almost nothing for the first steps.
                lat = self.vae.config.latent_channels
                with torch.no_grad():
                    self.vae.encoder.conv_out.conv.bias[lat:].fill_(float(logvar_init))
        if crop_size is not None:
            s = self.vae.config.spatial_compression
            if crop_size < s or crop_size % s:
                raise ValueError(
                    f"crop_size={crop_size}: expected a positive multiple of {s} or None"
                )
        self.optim = optim
        self.l1_weight, self.kl_weight = float(l1_weight), float(kl_weight)
        self.foreground_weight = float(foreground_weight)
        self.latent_noise = float(latent_noise)
        self.perceptual_weight, self.disc_weight = float(perceptual_weight), float(disc_weight)
        self.disc_start, self.disc_lr, self.grad_clip = int(disc_start), disc_lr, grad_clip
        self.sample_posterior, self.image_prob, self.crop_size = (
            sample_posterior,
            image_prob,
            crop_size,
        )
        self.clip_frames, self.image_frames = clip_frames, image_frames
        self.export, self.calibrate_scaling, self.seed = export, calibrate_scaling, int(seed)
        if not isinstance(whiten_latents, bool):
            raise ValueError(f"whiten_latents={whiten_latents!r}: expected true or false")
        self.whiten_latents = whiten_latents
        self.perceptual: PerceptualLoss | None = None
        if perceptual_weight > 0:
            self.perceptual = (
                PerceptualLoss.from_file(perceptual_weights, width=perceptual_width)
                if perceptual_weights
                else PerceptualLoss(width=perceptual_width)
            )
        self.discriminator = (
            PatchDiscriminator3D(channels=disc_channels, layers=disc_layers)
            if disc_weight > 0
            else None
        )
        self.automatic_optimization = False
        self.validation_rows: list[dict[str, float]] = []

    # ---------------------------------------------------------------- optimizers
    def _optim(self, key: str, default: Any) -> Any:
        return getattr(self.optim, key, default) if self.optim is not None else default

    def _adamw(self, params: Sequence[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        betas = tuple(self._optim("betas", (0.9, 0.95)))
        return torch.optim.AdamW(
            params,
            lr=lr,
            betas=(float(betas[0]), float(betas[1])),
            weight_decay=float(self._optim("weight_decay", 1e-4)),
            eps=float(self._optim("eps", 1e-8)),
        )

    def configure_optimizers(self) -> Any:
        lr = float(self._optim("lr", 1e-4))
        opt_vae = self._adamw(list(self.vae.parameters()), lr)
        total = self._optim("max_steps", None)
        if total is None or int(total) <= 0:
            total = self.trainer.max_steps if self.trainer.max_steps > 0 else 1
        schedule = str(self._optim("schedule", "cosine"))
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"optim.schedule={schedule!r}: expected 'cosine' or 'constant'")
        warmup, min_ratio = (
            int(self._optim("warmup_steps", 0)),
            float(self._optim("min_lr_ratio", 0.0)),
        )

        def fn(step: int) -> float:
            return lr_lambda(
                step,
                warmup_steps=warmup,
                total_steps=int(total),
                schedule=schedule,
                min_lr_ratio=min_ratio,
            )

        optimizers = [opt_vae]
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt_vae, fn)]
        if self.discriminator is not None:
            d_lr = float(self.disc_lr) if self.disc_lr is not None else lr
            opt_d = self._adamw(list(self.discriminator.parameters()), d_lr)
            optimizers.append(opt_d)
        return optimizers, schedulers

    # ---------------------------------------------------------------- one step
    def _step_generator(self) -> torch.Generator:
        # Per-step randomness from (seed, step): a resumed run draws what the original drew.
        return torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.global_step))

    def _view(self, video: Tensor, g: torch.Generator) -> Tensor:
        """The step's training view: optionally ``image_frames`` distinct frames per clip as
        independent images (``image_prob``), else a window of ``clip_frames`` frames, and/or a
        random crop."""
        if self.image_prob > 0 and float(torch.rand((), generator=g)) < self.image_prob:
            k = min(self.image_frames, video.shape[2])
            if k == 1:  # the draw of the earlier one-frame option: its recipes reproduce
                t = torch.randint(video.shape[2], (1,), generator=g)
            else:
                t = torch.randperm(video.shape[2], generator=g)[:k]
            # [B, C, T, H, W] -> [B * k, C, 1, H, W]: each picked frame is its own T=1 video
            video = rearrange(video[:, :, t], "b c k h w -> (b k) c 1 h w")
        elif self.clip_frames is not None and self.clip_frames < video.shape[2]:
            t = int(torch.randint(video.shape[2] - self.clip_frames + 1, (), generator=g))
            video = video[:, :, t : t + self.clip_frames]
        if self.crop_size is not None:
            s = self.vae.config.spatial_compression
            h, w = video.shape[-2:]
            c = self.crop_size
            if c < h or c < w:
                y = int(torch.randint((h - min(c, h)) // s + 1, (), generator=g)) * s
                x = int(torch.randint((w - min(c, w)) // s + 1, (), generator=g)) * s
                video = video[..., y : y + c, x : x + c]
        return video

    def _gan_active(self) -> bool:
        return self.discriminator is not None and self.global_step >= self.disc_start

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        optimizers = self.optimizers()
        opt_vae = optimizers[0] if isinstance(optimizers, list) else optimizers
        g = self._step_generator()
        x = self._view(batch, g)  # [B, 3, T, H, W] in [-1, 1]
        posterior = self.vae.encode(x, frames_per_chunk=None)
        z = posterior.sample(g) if self.sample_posterior else posterior.mode()
        z = noised_latents(z, self.latent_noise, g)  # level 0: z itself, no draws
        recon = self.vae.decode(z, latent_frames_per_chunk=None)
        l1 = weighted_l1(recon, x, self.foreground_weight)
        kl = posterior.kl().mean() / x[0].numel()  # per element, like the L1 term
        loss = self.l1_weight * l1 + self.kl_weight * kl
        logs = {"train/l1": l1.detach(), "train/kl": kl.detach()}
        if self.perceptual is not None:
            # One random frame per video, as the released loss (pick_video_frame).
            t = torch.randint(x.shape[2], (x.shape[0],), generator=g)
            idx = torch.arange(x.shape[0])
            p = self.perceptual(recon[idx, :, t], x[idx, :, t])
            loss = loss + self.perceptual_weight * p
            logs["train/perceptual"] = p.detach()
        gan = self._gan_active()
        if gan:
            g_loss = -self.discriminator(recon).mean()
            loss = loss + self.disc_weight * g_loss
            logs["train/g_loss"] = g_loss.detach()
        opt_vae.zero_grad()
        self.manual_backward(loss)
        if gan:  # the generator step must not train the discriminator
            self.discriminator.zero_grad(set_to_none=True)
        if self.grad_clip:
            logs["train/grad_norm"] = torch.nn.utils.clip_grad_norm_(
                self.vae.parameters(), float(self.grad_clip)
            ).detach()
        opt_vae.step()
        sched = self.lr_schedulers()
        (sched[0] if isinstance(sched, list) else sched).step()
        if gan:
            opt_d = optimizers[1]
            d_loss = hinge_d_loss(self.discriminator(x), self.discriminator(recon.detach()))
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            # The inner torch optimizer: Lightning's wrapper would count this as a training step.
            opt_d.optimizer.step()
            logs["train/d_loss"] = d_loss.detach()
        logs["train/loss"] = loss.detach()
        self.log_dict(logs, prog_bar=False)
        self.log("train/l1_bar", l1.detach(), prog_bar=True, logger=False)
        return loss.detach()

    # ---------------------------------------------------------------- validation
    @torch.no_grad()
    def reconstruct(self, video: Tensor) -> Tensor:
        """Posterior-mode round trip of ``[B, 3, T, H, W]`` in [-1, 1] (whole clip, no chunks)."""
        z = self.vae.encode(video, frames_per_chunk=None).mode()
        return self.vae.decode(z, latent_frames_per_chunk=None)

    def on_validation_epoch_start(self) -> None:
        self.validation_rows = []

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        rows = reconstruction_metrics(self.reconstruct(batch), batch)
        self.validation_rows.extend(rows)

    def on_validation_epoch_end(self) -> None:
        if not self.validation_rows:
            return
        for key in ("psnr", "ssim", "flicker"):
            values = [r[key] for r in self.validation_rows if key in r]
            if values:
                self.log(f"val/{key}", float(np.mean(values)), prog_bar=key == "psnr")

    # ---------------------------------------------------------------- export
    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the VAE as a diffusers-layout folder (``config.json`` + safetensors)."""
        folder = Path(folder)
        self.vae.save_pretrained(folder)
        return folder

    @torch.no_grad()
    def calibrate_scaling_factor(self, clips: Sequence[Tensor]) -> float:
        """Set ``config.scaling_factor`` to 1 / std of the posterior-mode latents of ``clips``
        (the convention of the released VAEs: scaled latents have unit variance). Returns it."""
        z = torch.cat(
            [
                self.vae.encode(c.to(self.device), frames_per_chunk=None).mode().flatten()
                for c in clips
            ]
        )
        factor = float(1.0 / z.float().std())
        self.vae.config = self.vae.config.replace(scaling_factor=factor)
        return factor

    @torch.no_grad()
    def whiten(self, clips: Sequence[Tensor]) -> Tensor:
        """Fold the whitening of the posterior-mode latents of ``clips`` into the VAE
        (:func:`cogvx.vae3d.latent_basis.fold_latent_transform`, ``scaling_factor`` 1): the same
        reconstructions, latents whose second moment is the identity. Returns the ``[C, C]`` map."""
        sf = self.vae.config.scaling_factor
        z = torch.cat(
            [self.vae.encode(c.to(self.device), frames_per_chunk=None).mode() * sf for c in clips]
        )
        matrix = latent_whitening(z)
        self.vae = fold_latent_transform(self.vae, matrix)
        return matrix

    def on_train_end(self) -> None:
        if not self.trainer.is_global_zero or self.trainer.fast_dev_run:
            return
        if self.calibrate_scaling or self.whiten_latents:
            loader = self.trainer.datamodule.train_dataloader() if self.trainer.datamodule else None
            if loader is not None:
                clips = [b for _, b in zip(range(8), loader)]
                # Whitening fixes the latents' scale itself (scaling_factor 1), so a calibration
                # before it would only encode the clips a second time.
                if self.whiten_latents:
                    self.whiten(clips)
                else:
                    self.calibrate_scaling_factor(clips)
        if self.export:
            self.save_pretrained(Path(self.trainer.default_root_dir) / "vae")


# ------------------------------------------------------------------------------------ data
class _Clips(Dataset):
    """Clips of a manifest decoded once and kept as uint8 ``[N, T, H, W, 3]`` (small datasets)."""

    def __init__(self, manifest: Path, frames: int, limit: int | None) -> None:
        records: list[ManifestRecord] = read_manifest(manifest)
        videos = [r for r in records if r.type == "video"][: limit if limit else None]
        if not videos:
            raise ValueError(f"manifest={str(manifest)!r}: no video records")
        clips = []
        for r in videos:
            f = read_video(resolve_path(manifest, r), max_frames=frames).frames
            if f.shape[0] < frames:
                raise ValueError(
                    f"{resolve_path(manifest, r)}: {f.shape[0]} frames, the VAE run needs frames={frames}"
                )
            clips.append(f)
        shapes = {c.shape for c in clips}
        if len(shapes) != 1:
            raise ValueError(f"manifest={str(manifest)!r}: clips differ in size {sorted(shapes)}")
        self.clips = np.stack(clips)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> Tensor:
        return frames_to_tensor(self.clips[i])  # [T, H, W, 3] uint8 -> [3, T, H, W] in [-1, 1]


class ClipDataModule(L.LightningDataModule):
    """Pixel clips ``[B, 3, T, H, W]`` in [-1, 1] from a data manifest, for VAE training.

    All clips must share one size; the first ``frames`` frames of each are used (``frames`` must
    be ``4k + 1``). ``val_manifest`` (optional) gives the validation clips (e.g. held-out ones).
    The shuffle order is a function of ``seed`` and the epoch.
    """

    def __init__(
        self,
        manifest: str,
        val_manifest: str | None = None,
        frames: int = 9,
        batch_size: int = 4,
        val_batch_size: int = 8,
        limit: int | None = None,
        val_limit: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if frames < 1 or (frames - 1) % 4:
            raise ValueError(f"frames={frames}: the VAE needs 4k+1 frames (1, 5, 9, 13, ...)")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: expected >= 1")
        self.manifest, self.val_manifest = manifest, val_manifest
        self.frames, self.batch_size, self.val_batch_size = frames, batch_size, val_batch_size
        self.limit, self.val_limit = limit, val_limit
        self.num_workers, self.seed = num_workers, seed
        self.train_set: _Clips | None = None
        self.val_set: _Clips | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = _Clips(Path(self.manifest), self.frames, self.limit)
        if self.val_manifest is not None and self.val_set is None:
            self.val_set = _Clips(Path(self.val_manifest), self.frames, self.val_limit)

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(self.train_set) >= self.batch_size,
            generator=g,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(
            self.val_set, batch_size=self.val_batch_size, num_workers=self.num_workers
        )
