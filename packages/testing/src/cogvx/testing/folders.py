"""Tiny CogVideoX model folders in the diffusers layout, with random weights.

A folder holds ``model_index.json`` and the five component subfolders a released checkpoint has
(``tokenizer``, ``text_encoder``, ``transformer``, ``vae``, ``scheduler``; see docs/pipelines.md),
at sizes that run a whole pipeline call in well under a second on a CPU. Two writers:

- ``writer="cogvx"`` (the default): our own ``ExpertDiT`` / ``CausalVAE3D`` / ``SchedulerConfig``
  ``save_pretrained`` plus transformers' ``T5EncoderModel``; needs no diffusers;
- ``writer="diffusers"``: diffusers' own ``CogVideoX*Pipeline.save_pretrained`` of the reference
  modules (diffusers must be installed: it is a dev-only oracle). Parity tests use this one, so the
  file format is the reference's and not something our loader might merely agree with itself on.

Every parameter is perturbed (:func:`randomize`) so that zero-initialised adaLN and unit norm scales
do not make a model trivially the identity. Nothing is downloaded: the tokenizer is trained here
(:mod:`cogvx.testing.tokenizer`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from cogvx.testing.tokenizer import TokenizerKind, build_tokenizer

__all__ = [
    "PIPELINE_CLASS_NAMES",
    "T5_KWARGS",
    "VAE_KWARGS",
    "TinySpec",
    "Writer",
    "build_model_folder",
    "randomize",
    "read_index",
    "transformer_kwargs",
    "vae_kwargs",
]

Writer = Literal["cogvx", "diffusers"]

#: ``model_index.json`` ``_class_name`` per task (the reference pipeline classes).
PIPELINE_CLASS_NAMES: dict[str, str] = {
    "t2v": "CogVideoXPipeline",
    "i2v": "CogVideoXImageToVideoPipeline",
    "v2v": "CogVideoXVideoToVideoPipeline",
}

#: A 2-layer T5 encoder (d_model 32, the transformer's ``text_embed_dim``).
T5_KWARGS: dict[str, Any] = dict(
    vocab_size=160,  # >= the T5 tokenizer length with its 100 extra ids
    d_model=32,
    d_kv=8,
    d_ff=48,
    num_layers=2,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=16,
    feed_forward_proj="gated-gelu",
    dropout_rate=0.0,
)

#: An 8x spatial, 4x temporal VAE with 4 latent channels and 8-channel blocks.
VAE_KWARGS: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4,
    block_out_channels=(8, 8, 8, 8),
    latent_channels=4,
    layers_per_block=1,
    norm_num_groups=2,
    temporal_compression_ratio=4,
)


@dataclass(frozen=True)
class TinySpec:
    """What to build: the model family, the task, the sampler and the tokenizer kind.

    ``rope``: 3D RoPE (the 5B family) instead of 3D sin-cos (2B); ``v15``: CogVideoX 1.5
    (``patch_size_t=2``, no patch bias, ofs embedding for I2V, inverted image-latent scale);
    ``learned_positions``: the 5B-I2V learned position table. ``name`` is the folder name.
    ``*_overrides`` change config keys of the transformer, the VAE or the T5 encoder (e.g. larger
    models for benchmarks); ``text_embed_dim`` follows the T5 ``d_model``.
    """

    name: str
    task: str = "t2v"  # t2v | i2v | v2v
    rope: bool = False
    v15: bool = False
    learned_positions: bool = False
    sampler: str = "ddim"  # ddim | dpm
    tokenizer: TokenizerKind = "spiece"
    snr_shift: float = 3.0
    transformer_overrides: dict[str, Any] = field(default_factory=dict)
    vae_overrides: dict[str, Any] = field(default_factory=dict)
    t5_overrides: dict[str, Any] = field(default_factory=dict)
    randomize: bool = True  # perturb every parameter (False: the libraries' own initialisation)

    def __post_init__(self) -> None:
        if self.task not in PIPELINE_CLASS_NAMES:
            raise ValueError(f"task={self.task!r} is not one of {sorted(PIPELINE_CLASS_NAMES)}")
        if self.sampler not in ("ddim", "dpm"):
            raise ValueError(f"sampler={self.sampler!r} is not one of 'ddim', 'dpm'")


def transformer_kwargs(spec: TinySpec) -> dict[str, Any]:
    """The transformer's ``config.json`` keys (diffusers names) for ``spec``: 2 layers, 2 heads x 16,
    latents 4 x 6 at 9 frames (1.5: 17)."""
    latent = vae_kwargs(spec)["latent_channels"]
    kw: dict[str, Any] = dict(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=latent,
        out_channels=latent,
        time_embed_dim=8,
        text_embed_dim={**T5_KWARGS, **spec.t5_overrides}["d_model"],
        num_layers=2,
        sample_width=6,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=12,
        use_rotary_positional_embeddings=spec.rope,
    )
    if spec.task == "i2v":
        kw["in_channels"] = 2 * latent  # noisy latents + image latents on channels
    if spec.v15:
        kw.update(
            patch_size_t=2,
            sample_frames=17,
            use_rotary_positional_embeddings=True,
            patch_bias=False,
        )
        if spec.task == "i2v":
            kw["ofs_embed_dim"] = 8
    if spec.learned_positions:
        kw.update(use_learned_positional_embeddings=True, use_rotary_positional_embeddings=True)
    kw.update(spec.transformer_overrides)
    return kw


def vae_kwargs(spec: TinySpec) -> dict[str, Any]:
    """The VAE's ``config.json`` keys for ``spec`` (1.5: inverted image-latent scale, factor 0.7)."""
    kw = dict(VAE_KWARGS)
    if spec.v15:
        kw.update(invert_scale_latents=True, scaling_factor=0.7)
    kw.update(spec.vae_overrides)
    return kw


def _scheduler_kwargs(spec: TinySpec) -> dict[str, Any]:
    return dict(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
        snr_shift_scale=spec.snr_shift,
    )


def _perturb(spec: TinySpec, module: torch.nn.Module, seed: int) -> None:
    if spec.randomize:
        randomize(module, seed)


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Perturb every parameter: 1-D weights (norm scales) to ``1 + 0.1 N``, the rest by ``0.05 N``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.ndim == 1 and name.endswith("weight"):
                p.copy_(1 + 0.1 * noise)
            else:
                p.add_(0.05 * noise)


def _t5_encoder(spec: TinySpec) -> torch.nn.Module:
    from transformers import T5Config, T5EncoderModel

    t5 = T5EncoderModel(T5Config(**{**T5_KWARGS, **spec.t5_overrides}))
    _perturb(spec, t5, 3)
    return t5


def _write_cogvx(folder: Path, spec: TinySpec, tokenizer_dir: Path) -> None:
    from cogvx.expert_dit.config import DiTConfig
    from cogvx.expert_dit.schedule import SchedulerConfig
    from cogvx.expert_dit.transformer import ExpertDiT
    from cogvx.vae3d import CausalVAE3D, VAEConfig

    torch.manual_seed(0)
    transformer = ExpertDiT(DiTConfig.from_dict(transformer_kwargs(spec)))
    _perturb(spec, transformer, 1)
    transformer.save_pretrained(folder / "transformer")
    vae = CausalVAE3D(VAEConfig.from_dict(vae_kwargs(spec)))
    _perturb(spec, vae, 2)
    vae.save_pretrained(folder / "vae")
    _t5_encoder(spec).save_pretrained(folder / "text_encoder")
    SchedulerConfig(sampler=spec.sampler, **_scheduler_kwargs(spec)).save_pretrained(
        folder / "scheduler"
    )
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    scheduler_class = (
        "CogVideoXDDIMScheduler" if spec.sampler == "ddim" else "CogVideoXDPMScheduler"
    )
    index = {
        "_class_name": PIPELINE_CLASS_NAMES[spec.task],
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", scheduler_class],
        "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "T5Tokenizer"],
        "transformer": ["diffusers", "CogVideoXTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def _write_diffusers(folder: Path, spec: TinySpec, tokenizer_dir: Path) -> None:
    import diffusers
    from transformers import T5Tokenizer

    torch.manual_seed(0)
    transformer = diffusers.CogVideoXTransformer3DModel(**transformer_kwargs(spec))
    _perturb(spec, transformer, 1)
    vae = diffusers.AutoencoderKLCogVideoX(**vae_kwargs(spec))
    _perturb(spec, vae, 2)
    scheduler_cls = (
        diffusers.CogVideoXDDIMScheduler
        if spec.sampler == "ddim"
        else diffusers.CogVideoXDPMScheduler
    )
    pipe_cls = getattr(diffusers, PIPELINE_CLASS_NAMES[spec.task])
    pipe = pipe_cls(
        tokenizer=T5Tokenizer.from_pretrained(tokenizer_dir),
        text_encoder=_t5_encoder(spec),
        vae=vae,
        transformer=transformer,
        scheduler=scheduler_cls(**_scheduler_kwargs(spec)),
    )
    pipe.save_pretrained(folder)


def build_model_folder(root: str | Path, spec: TinySpec, *, writer: Writer = "cogvx") -> Path:
    """Write the folder ``<root>/<writer>/<spec.name>`` (once: an existing complete folder is
    reused) and return its path.

    The tokenizer subfolder holds only the bare trained file (``spiece.model`` or
    ``tokenizer.json``), so loading exercises both ways a T5 tokenizer can be stored.
    """
    if writer not in ("cogvx", "diffusers"):
        raise ValueError(f"writer={writer!r} is not one of 'cogvx', 'diffusers'")
    root = Path(root)
    folder = root / writer / spec.name
    if (folder / "model_index.json").is_file():
        return folder
    tok_dir = root / f"_tokenizer_{spec.tokenizer}"
    if not tok_dir.exists():
        build_tokenizer(tok_dir, spec.tokenizer)
    (_write_cogvx if writer == "cogvx" else _write_diffusers)(folder, spec, tok_dir)
    tok_out = folder / "tokenizer"
    for f in tok_out.iterdir():
        f.unlink()
    for f in tok_dir.iterdir():
        shutil.copyfile(f, tok_out / f.name)
    return folder


def read_index(folder: str | Path) -> dict[str, Any]:
    """The folder's ``model_index.json`` as a dict."""
    return json.loads((Path(folder) / "model_index.json").read_text())
