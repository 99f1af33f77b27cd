"""Training of the CogVideoX expert transformer: a LightningModule over frame-pack batches.

The recipe (docs/training.md, CogVideoX paper §3 and App. A, and the diffusers fine-tuning
scripts):

* **v-prediction on the CogVideoX schedule** (``cogvx.expert_dit.NoiseSchedule``: scaled-linear
  betas, SNR shift, zero terminal SNR): ``x_t = sqrt(a) x_0 + sqrt(1 - a) eps``, target
  ``v = sqrt(a) eps - sqrt(1 - a) x_0``, loss ``|v_hat - v|^2`` averaged over each sample's
  elements, then over the samples. SAT writes the same loss as ``|x0_hat - x0|^2 / (1 - a)``;
  the two are equal, and the v form has no division near ``t = 0``.
* **explicit uniform sampling** of timesteps across data-parallel ranks
  (:mod:`cogvx.train.timesteps`).
* **text dropout** (10%): a dropped sample's text rows become the unconditional embedding the
  data module delivers (T5 of ``""`` by default, zeros as SAT by option).
* **AdamW** (0.9, 0.95, wd 1e-4, eps 1e-8) with linear warmup then cosine (or constant) decay;
  gradient clipping is the Trainer's (``gradient_clip_val``).
* **EMA** of the trainable weights (:mod:`cogvx.train.ema`), saved in the checkpoint, swapped in
  for validation by option.
* **image-to-video** for I2V variants (``in_channels = 2 x out_channels``): the first pixel
  frame gets noise ``sigma = exp(N(-3, 0.5))`` (one sigma per batch, as the diffusers I2V
  trainer), is clamped to [-1, 1] and VAE-encoded (``sample() * scaling_factor``), padded with zero latents to the
  clip's length and concatenated on channels after the noisy latents (``[noisy | image]``); with
  probability 5% (one draw per batch) the image latents are all zeros.
* **LoRA** (:mod:`cogvx.train.lora`): only the adapter trains, only the adapter is checkpointed.
* **frame-pack batches** through ``cogvx.expert_dit.packed_forward``: every sample keeps its own
  timestep, positions and attention.
* **paired samples** (option ``pair_weight``, not in CogVideoX): batches made of pairs of clips
  that differ in one factor (``data.twin_shapes``: the same clip drawn with two shapes) share
  their noise, timestep and text dropout, and the error of the pair's difference is weighted
  (:func:`pair_difference_loss`, docs/training.md).

Randomness (timesteps, noise, dropout, image noise) comes from a generator seeded by
``(seed, global_step, rank)``, so a resumed run draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from cogvx.expert_dit import DiTConfig, ExpertDiT, NoiseSchedule, SchedulerConfig, packed_forward
from cogvx.framepack import PackedBatch, patchify
from cogvx.train.data import TrainBatch
from cogvx.train.ema import EMA
from cogvx.train.lora import LoraSettings, add_lora, save_lora
from cogvx.train.timesteps import TimestepSampler

__all__ = [
    "NUM_LOSS_BUCKETS",
    "DiTModule",
    "foreground_token_weights",
    "lr_lambda",
    "pair_difference_loss",
    "pair_token_index",
]

#: Timestep buckets of the per-bucket loss (``train/loss_bucket_{i}``, ``i`` in 0..9).
NUM_LOSS_BUCKETS = 10


def lr_lambda(
    step: int, *, warmup_steps: int, total_steps: int, schedule: str, min_lr_ratio: float
) -> float:
    """LR multiplier at optimizer step ``step``: linear warmup from ``1/warmup`` to 1 over
    ``warmup_steps``, then cosine decay to ``min_lr_ratio`` at ``total_steps`` (or constant)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def foreground_token_weights(
    x0: Tensor, video_lengths: Sequence[int], foreground_weight: float
) -> Tensor:
    """Per-token loss weights ``[N]`` for clean packed latent tokens ``x0`` ``[N, P]``.

    A token's weight is ``1 + foreground_weight * d / max(d)``, where ``d`` is its mean absolute
    distance from the per-feature median token of its own clip (a plain background is the median
    of a clip whose subject covers fewer than half the tokens) and the maximum is over that clip.
    The token mean otherwise lets the background -- most tokens, and predictable -- dominate the
    loss (docs/shapes-model.md); the VAE's ``foreground_weight`` does the same in pixel space.
    """
    weights = []
    for part in x0.detach().float().split(list(video_lengths)):  # [N_i, P] per clip
        d = (part - part.median(dim=0).values).abs().mean(dim=1)  # [N_i]
        weights.append(1.0 + foreground_weight * d / d.max().clamp_min(1e-12))
    return torch.cat(weights)


def pair_token_index(video_lengths: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Token indices ``(first, second)`` of the pairs of a packed batch, each ``[N / 2]``.

    Samples ``2k`` and ``2k + 1`` are pair ``k``; their video tokens lie next to each other in the
    packed sequence (samples are packed in order), and both must have the same number of tokens,
    so ``first[j]`` and ``second[j]`` are the same position of the two clips.
    """
    lengths = list(video_lengths)
    if len(lengths) % 2:
        raise ValueError(
            f"model.pair_weight: a batch of {len(lengths)} samples is not made of pairs (the "
            "data module must yield samples 2k and 2k+1 together, e.g. data.twin_shapes=true)"
        )
    first, second, start = [], [], 0
    for k in range(0, len(lengths), 2):
        n_a, n_b = lengths[k], lengths[k + 1]
        if n_a != n_b:
            raise ValueError(
                f"model.pair_weight: samples {k} and {k + 1} have {n_a} and {n_b} video tokens; "
                "the two clips of a pair must have the same shape"
            )
        first.append(torch.arange(start, start + n_a))
        second.append(torch.arange(start + n_a, start + 2 * n_a))
        start += 2 * n_a
    return torch.cat(first), torch.cat(second)


def pair_difference_loss(pred: Tensor, target: Tensor, first: Tensor, second: Tensor) -> Tensor:
    """Mean squared error of the pairs' difference, ``|(p_a - p_b) - (v_a - v_b)|^2``.

    With shared noise, ``v_a - v_b = -sqrt(1 - a) (x0_a - x0_b)``: the target is exactly what
    the one differing factor changes, and the plain loss weighs that part of the error by only
    a quarter per pair (``e_a^2 + e_b^2 = ((e_a + e_b)^2 + (e_a - e_b)^2) / 2``, averaged over
    the two samples). Mean over the features and tokens of all pairs (equal-length clips).
    """
    diff = (pred[first] - pred[second]).float() - (target[first] - target[second])
    return diff.pow(2).mean()


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}|{step}|{rank}".encode()).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)


class DiTModule(L.LightningModule):
    """Trains an :class:`~cogvx.expert_dit.ExpertDiT` (T2V or I2V, full or LoRA).

    Args:
        transformer: architecture for training from scratch (random init from ``seed``) --or--
        model_folder: a local diffusers-layout CogVideoX folder (or its ``transformer/``):
            full fine-tuning, or the LoRA base. Its ``scheduler/`` and ``vae/`` are used when
            ``scheduler`` / ``vae_folder`` are not given.
        scheduler: the noise schedule (default: the folder's, else ``SchedulerConfig()``).
        vae_folder: the frozen VAE that encodes the first frame (I2V only).
        lora: train a LoRA adapter instead of all weights.
        optim: ``cogvx.train.config.OptimConfig`` (lr, betas, weight_decay, eps, warmup_steps,
            schedule, min_lr_ratio, max_steps); None = the defaults below.
        text_dropout: probability that a sample trains unconditionally (paper: 0.1).
        explicit_uniform: explicit uniform timestep sampling across ranks (off: plain uniform).
        timestep_logit_normal: ``[mean, std]`` of a logit-normal timestep density
            (:class:`cogvx.train.timesteps.TimestepSampler`); None = uniform, as CogVideoX.
        foreground_weight: weigh each video token's loss by ``1 + foreground_weight x`` its
            distance from its clip's median latent token (:func:`foreground_token_weights`);
            0 = the plain token mean (CogVideoX).
        pair_weight: None (default, CogVideoX): samples are independent. A number: every batch
            is made of pairs (samples ``2k`` and ``2k + 1``, e.g. ``data.twin_shapes=true``) that
            share their noise, timestep and text dropout, and ``pair_weight x``
            :func:`pair_difference_loss` is added to the loss (0: sharing only).
        ema_decay: keep an EMA of the trainable weights with this decay (None: no EMA).
        ema_for_validation: validate (and export by default) with the EMA weights.
        gradient_checkpointing: recompute each block in backward.
        image_noise_mean, image_noise_std, image_dropout: I2V first-frame augmentation.
        attention_mode: ``cogvx.expert_dit.PackedAttention`` (auto, mask, split, varlen).
        seed: model init and per-step randomness.
        export: at the end of training (rank 0, not ``fast_dev_run``) write the complete model
            folder ``<trainer.default_root_dir>/model`` (:func:`cogvx.train.export_model_folder`,
            frozen components from the trainer's :class:`~cogvx.train.VideoDataModule`).
    """

    def __init__(
        self,
        transformer: DiTConfig | None = None,
        model_folder: str | None = None,
        scheduler: SchedulerConfig | None = None,
        vae_folder: str | None = None,
        lora: LoraSettings | None = None,
        optim: Any = None,
        text_dropout: float = 0.1,
        explicit_uniform: bool = True,
        timestep_logit_normal: list[float] | None = None,
        foreground_weight: float = 0.0,
        pair_weight: float | None = None,
        ema_decay: float | None = None,
        ema_for_validation: bool = False,
        gradient_checkpointing: bool = False,
        image_noise_mean: float = -3.0,
        image_noise_std: float = 0.5,
        image_dropout: float = 0.05,
        attention_mode: str = "auto",
        seed: int = 0,
        export: bool = False,
    ) -> None:
        super().__init__()
        if (transformer is None) == (model_folder is None):
            raise ValueError(
                f"model.transformer={transformer!r}, model.model_folder={model_folder!r}: give "
                "exactly one (a DiTConfig to train from scratch, or a folder to fine-tune)"
            )
        for name, p in (("text_dropout", text_dropout), ("image_dropout", image_dropout)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"model.{name}={p!r}: expected a probability in [0, 1]")
        if isinstance(foreground_weight, bool) or not foreground_weight >= 0.0:
            raise ValueError(
                f"model.foreground_weight={foreground_weight!r}: expected a number >= 0"
            )
        self.foreground_weight = float(foreground_weight)
        if pair_weight is not None and (isinstance(pair_weight, bool) or not pair_weight >= 0.0):
            raise ValueError(
                f"model.pair_weight={pair_weight!r}: expected None (no pairs) or a number >= 0"
            )
        self.pair_weight = None if pair_weight is None else float(pair_weight)
        if ema_for_validation and ema_decay is None:
            raise ValueError("model.ema_for_validation=True needs model.ema_decay (no EMA kept)")
        if model_folder is not None:
            folder = Path(model_folder)
            if not folder.is_dir():
                raise FileNotFoundError(f"model.model_folder={model_folder!r}: no such folder")
            self.dit = ExpertDiT.from_pretrained(folder, torch_dtype=torch.float32)
            root = folder if (folder / "transformer").is_dir() else folder.parent
            if scheduler is None and (root / "scheduler").is_dir():
                scheduler = SchedulerConfig.from_pretrained(root / "scheduler")
            if vae_folder is None and (root / "vae").is_dir():
                vae_folder = str(root / "vae")
            self.base_folder: str | None = str(root)
        else:
            if not isinstance(transformer, DiTConfig):
                raise TypeError(
                    f"model.transformer must be a DiTConfig, got {type(transformer).__name__}"
                )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.dit = ExpertDiT(transformer)
            self.base_folder = None
        self.scheduler_config = scheduler if scheduler is not None else SchedulerConfig()
        self.schedule = NoiseSchedule(self.scheduler_config)
        self.timesteps = TimestepSampler(
            self.scheduler_config.num_train_timesteps,
            explicit_uniform=explicit_uniform,
            logit_normal=None if timestep_logit_normal is None else tuple(timestep_logit_normal),
        )
        config = self.dit.config
        self.i2v = config.in_channels == 2 * config.out_dim
        self.vae_folder = vae_folder
        if self.i2v and vae_folder is None:
            raise ValueError(
                f"this transformer is I2V (in_channels={config.in_channels} = 2 x "
                f"{config.out_dim}) and needs model.vae_folder to encode the first frame"
            )
        self._vae: torch.nn.Module | None = None  # frozen, not a submodule (never checkpointed)
        self.lora_settings = lora
        self.lora_config = add_lora(self.dit, lora) if lora is not None else None
        # LoRA checkpoints hold the adapter only; the frozen base comes from the folder.
        self.strict_loading = lora is None
        if gradient_checkpointing:
            self.dit.set_gradient_checkpointing(True)
        self.ema = EMA(self.dit, ema_decay) if ema_decay is not None else None
        self.ema_for_validation = ema_for_validation
        self.optim = optim
        self.text_dropout = float(text_dropout)
        self.image_noise_mean = float(image_noise_mean)
        self.image_noise_std = float(image_noise_std)
        self.image_dropout = float(image_dropout)
        self.attention_mode = attention_mode
        self.seed = int(seed)
        self._validation_stack: contextlib.ExitStack | None = None
        self.last_timesteps: Tensor | None = None
        self.export = bool(export)

    # ------------------------------------------------------------------ helpers
    @property
    def config(self) -> DiTConfig:
        return self.dit.config

    def vae(self) -> torch.nn.Module:
        """The frozen VAE (I2V), loaded on first use on the module's device."""
        if self._vae is None:
            from cogvx.vae3d import CausalVAE3D

            assert self.vae_folder is not None
            vae = CausalVAE3D.from_pretrained(self.vae_folder).to(torch.float32)
            self._vae = vae.eval().requires_grad_(False)
        if next(self._vae.parameters()).device != self.device:
            self._vae.to(self.device)
        return self._vae

    def _rank_world(self) -> tuple[int, int]:
        trainer = self._trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        if isinstance(batch, TrainBatch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    # ------------------------------------------------------------------ loss
    def _image_tokens(self, packed: PackedBatch, images: list[Tensor], g: torch.Generator):
        """I2V conditioning tokens ``[N_video, C*pt*p*p]``: noisy first frame -> latents, zero
        latents after it, patchified like the video (see the module docstring)."""
        vae = self.vae()
        sigma = math.exp(
            self.image_noise_mean + self.image_noise_std * torch.randn(1, generator=g).item()
        )
        drop = torch.rand(1, generator=g).item() < self.image_dropout
        tokens = []
        for image, shape, pad in zip(images, packed.latent_shapes, packed.latent_pads):
            t, c, h, w = shape
            if drop:
                lat = torch.zeros(t + pad, c, h, w, device=self.device)
            else:
                eps = torch.randn(image.shape, generator=g).to(image)
                # Clamped to [-1, 1], the VAE encoder's input contract (the reference feeds the
                # unclamped sum; docs/differences.md).
                noisy = (image + sigma * eps).clamp(-1.0, 1.0)[None].float()  # [1, 3, 1, H, W]
                post = vae.encode(noisy)
                z = post.sample(generator=g).to(self.device) * float(vae.config.scaling_factor)
                first = z[0].permute(1, 0, 2, 3)  # [1, C, h, w]
                lat = torch.cat([first, first.new_zeros(t + pad - 1, c, h, w)])  # [t+pad, C, h, w]
            tok, _, _ = patchify(lat, self.config.patch_size, self.config.patch_size_t)
            tokens.append(tok)
        return torch.cat(tokens)

    def packed_loss(
        self,
        batch: TrainBatch,
        *,
        generator: torch.Generator,
        rank: int = 0,
        world_size: int = 1,
        timesteps: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(loss, per-sample losses ``[n]``, timesteps ``[n]``) of one frame-pack batch."""
        packed = batch.packed
        assert packed is not None
        n, device = packed.num_samples, self.device
        pairs = None if self.pair_weight is None else pair_token_index(packed.video_lengths())
        if timesteps is None:
            # Pairs draw one timestep each (the sampler's spread is over the pairs).
            timesteps = self.timesteps.sample(
                n if pairs is None else n // 2,
                rank=rank,
                world_size=world_size,
                generator=generator,
            )
            if pairs is not None:
                timesteps = timesteps.repeat_interleave(2)
        t = timesteps.to(device)
        video_lengths = torch.tensor(packed.video_lengths(), device=device)
        video_ids = torch.repeat_interleave(torch.arange(n, device=device), video_lengths)  # [N]
        x0 = packed.latent_tokens.to(device, torch.float32)  # [N, C*pt*p*p]
        noise = torch.randn(x0.shape, generator=generator).to(device)
        if pairs is not None:
            noise[pairs[1]] = noise[pairs[0]]  # the second clip of a pair gets the first's noise
        t_tok = t[video_ids]
        x_t = self.schedule.add_noise(x0, noise, t_tok)
        target = self.schedule.get_velocity(x0, noise, t_tok)

        text = packed.text_embeds.to(device, torch.float32)  # [N_text, D]
        drop = torch.rand(n, generator=generator) < self.text_dropout
        if pairs is not None:
            drop = drop[0::2].repeat_interleave(2)
        if drop.any():
            rows = []
            for i, (part, n_text) in enumerate(
                zip(text.split(list(packed.text_lengths)), packed.text_lengths)
            ):
                rows.append(batch.uncond[:n_text].to(text) if drop[i] else part)
            text = torch.cat(rows)

        model_in = x_t
        if self.i2v:
            if batch.images is None:
                raise ValueError(
                    "this I2V transformer needs first frames: set data.image_conditioning=true"
                )
            model_in = torch.cat([x_t, self._image_tokens(packed, batch.images, generator)], dim=1)
        ofs = 2.0 if self.config.ofs_embed_dim else None
        pred = packed_forward(
            self.dit,
            model_in,
            text,
            text_lengths=packed.text_lengths,
            grids=packed.grids,
            timestep=t,
            ofs=ofs,
            attention_mode=self.attention_mode,
        )
        err = (pred.float() - target).pow(2).mean(dim=1)  # [N] per-token mean over features
        total = video_lengths  # [n] the per-sample sum of token weights (1 each by default)
        if self.foreground_weight:
            w = foreground_token_weights(x0, packed.video_lengths(), self.foreground_weight)
            err, total = w * err, torch.zeros(n, device=device).index_add_(0, video_ids, w)
        per_sample = torch.zeros(n, device=device).index_add_(0, video_ids, err) / total
        loss = per_sample.mean()
        if pairs is not None and self.pair_weight:
            first, second = (i.to(device) for i in pairs)
            loss = loss + self.pair_weight * pair_difference_loss(pred, target, first, second)
        return loss, per_sample, timesteps

    # ------------------------------------------------------------------ Lightning hooks
    def training_step(self, batch: TrainBatch, batch_idx: int) -> Tensor:
        rank, world = self._rank_world()
        g = _step_generator(self.seed, self.global_step, rank)
        skipped = len(batch.skipped)
        self.log("train/skipped", float(skipped), on_step=True, on_epoch=False, batch_size=1)
        if batch.packed is None:
            # Every sample of this pack was unreadable: a zero loss that still touches every
            # trainable weight, so data-parallel ranks stay in step.
            loss = sum(p.sum() * 0.0 for p in self.dit.parameters() if p.requires_grad)
            self.log("train/loss", float("nan"), on_step=True, on_epoch=False, batch_size=1)
            return loss  # type: ignore[return-value]
        loss, per_sample, t = self.packed_loss(batch, generator=g, rank=rank, world_size=world)
        self.last_timesteps = t  # what this rank drew this step (read by callbacks and tests)
        n = per_sample.shape[0]
        self.log(
            "train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, batch_size=n
        )
        if self.pair_weight:  # train/loss adds the pair term; this is the plain v-loss
            self.log("train/v_loss", per_sample.detach().mean(), on_step=True, batch_size=n)
        # All 10 buckets every step (NaN where no sample fell), so no logger repeats a stale value.
        buckets = t.to(per_sample.device) * NUM_LOSS_BUCKETS // self.timesteps.num_timesteps
        for k in range(NUM_LOSS_BUCKETS):
            sel = per_sample.detach()[buckets == k]
            value = sel.mean() if sel.numel() else torch.tensor(float("nan"))
            self.log(
                f"train/loss_bucket_{k}",
                value,
                on_step=True,
                on_epoch=False,
                batch_size=max(1, sel.numel()),
            )
        self.log(
            "train/real_tokens",
            float(batch.packed.seq_len),
            on_step=True,
            on_epoch=False,
            batch_size=1,
        )
        self.log("train/samples", float(n), on_step=True, on_epoch=False, batch_size=1)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad.detach().float() for p in self.dit.parameters() if p.grad is not None]
        if grads:
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(x) for x in grads])
            )
            self.log("train/grad_norm", norm, on_step=True, on_epoch=False, batch_size=1)

    def on_before_zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        # Called once per optimizer step, after the step: the weights the EMA should follow.
        if self.ema is not None and self.trainer.training:
            self.ema.update(self.dit)

    def configure_optimizers(self) -> Any:
        o = self.optim
        get = (lambda k, d: getattr(o, k, d)) if o is not None else (lambda k, d: d)
        lr = float(get("lr", 1e-4))
        betas = tuple(get("betas", (0.9, 0.95)))
        params = [p for p in self.dit.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params,
            lr=lr,
            betas=(float(betas[0]), float(betas[1])),
            weight_decay=float(get("weight_decay", 1e-4)),
            eps=float(get("eps", 1e-8)),
        )
        total = get("max_steps", None)
        if total is None or int(total) <= 0:
            total = self.trainer.max_steps if self.trainer.max_steps > 0 else None
        if total is None:
            total = int(self.trainer.estimated_stepping_batches)
        schedule = str(get("schedule", "cosine"))
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"optim.schedule={schedule!r}: expected 'cosine' or 'constant'")
        warmup = int(get("warmup_steps", 0))
        min_ratio = float(get("min_lr_ratio", 0.0))

        def fn(step: int) -> float:
            return lr_lambda(
                step,
                warmup_steps=warmup,
                total_steps=int(total),
                schedule=schedule,
                min_lr_ratio=min_ratio,
            )

        sched = torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------ EMA and checkpoints
    @contextlib.contextmanager
    def validation_weights(self) -> Iterator[None]:
        """The weights to validate or export with: the EMA ones when ``ema_for_validation``."""
        if self.ema is not None and self.ema_for_validation:
            with self.ema.applied(self.dit):
                yield
        else:
            yield

    def on_validation_start(self) -> None:
        self._validation_stack = contextlib.ExitStack()
        self._validation_stack.enter_context(self.validation_weights())

    def on_validation_end(self) -> None:
        if self._validation_stack is not None:
            self._validation_stack.close()
            self._validation_stack = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.ema is not None:
            checkpoint["ema"] = self.ema.state_dict()
        if self.lora_config is not None:
            trainable = {f"dit.{n}" for n, p in self.dit.named_parameters() if p.requires_grad}
            checkpoint["state_dict"] = {
                k: v for k, v in checkpoint["state_dict"].items() if k in trainable
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.ema is not None:
            if "ema" not in checkpoint:
                raise ValueError("the checkpoint has no EMA state but model.ema_decay is set")
            self.ema.load_state_dict(checkpoint["ema"])

    # ------------------------------------------------------------------ export
    def on_train_end(self) -> None:
        trainer = self.trainer
        if not self.export or trainer.fast_dev_run or not trainer.is_global_zero:
            return
        folders = getattr(trainer.datamodule, "folders", None)
        if folders is None:
            raise ValueError(
                "model.export=True needs the frozen components' folders: train with a "
                "cogvx.train.VideoDataModule"
            )
        kw = {f"{k}_folder": v for k, v in folders.items()}
        self.export_model_folder(Path(trainer.default_root_dir) / "model", **kw)

    def export_model_folder(
        self,
        out: str | os.PathLike[str],
        *,
        vae_folder: str | os.PathLike[str],
        text_encoder_folder: str | os.PathLike[str],
        tokenizer_folder: str | os.PathLike[str],
        use_ema: bool | None = None,
        overwrite: bool = True,
    ) -> Path:
        """The complete diffusers-layout model folder of the trained transformer (see
        :func:`cogvx.train.export_model_folder`); EMA weights when ``use_ema`` (default:
        ``ema_for_validation``)."""
        from cogvx.train.export import export_model_folder

        use_ema = self.ema_for_validation if use_ema is None else use_ema
        ema = self.ema if use_ema else None
        ctx = ema.applied(self.dit) if ema is not None else contextlib.nullcontext()
        with ctx:
            return export_model_folder(
                out,
                self.dit,
                vae_folder=vae_folder,
                text_encoder_folder=text_encoder_folder,
                tokenizer_folder=tokenizer_folder,
                scheduler=self.scheduler_config,
                overwrite=overwrite,
            )

    def save_lora_weights(
        self, folder: str | os.PathLike[str], *, use_ema: bool | None = None
    ) -> Path:
        """Write the adapter in the diffusers LoRA layout (``pytorch_lora_weights.safetensors``)."""
        if self.lora_config is None:
            raise ValueError("this module trains no LoRA (model.lora is None)")
        use_ema = self.ema_for_validation if use_ema is None else use_ema
        ctx = (
            self.ema.applied(self.dit)
            if (use_ema and self.ema is not None)
            else contextlib.nullcontext()
        )
        with ctx:
            return save_lora(self.dit, folder, self.lora_config)

    def save_transformer(
        self, folder: str | os.PathLike[str], *, use_ema: bool | None = None
    ) -> None:
        """``save_pretrained`` of the trained transformer (LoRA merged into a copy of the base)."""
        from cogvx.train.export import merged_transformer

        use_ema = self.ema_for_validation if use_ema is None else use_ema
        ctx = (
            self.ema.applied(self.dit)
            if (use_ema and self.ema is not None)
            else contextlib.nullcontext()
        )
        with ctx:
            merged_transformer(self.dit).save_pretrained(folder)
