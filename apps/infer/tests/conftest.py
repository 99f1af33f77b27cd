"""Tiny CogVideoX model folders for the cogvx-infer tests, written by the reference itself.

Every folder is a real diffusers layout saved by diffusers' own ``CogVideoX*Pipeline.save_pretrained``
from random components (transformer, VAE, T5 from a ``T5Config``, a CogVideoX scheduler), so loading it
exercises the same code path as a released checkpoint. Tokenizers are built here: one trained with
the ``tokenizers`` library (``tokenizer.json``), one a locally trained sentencepiece ``spiece.model``.
Nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("TRITON_INTERPRET", "1")

CORPUS = [
    "a panda plays a small guitar in a bamboo forest",
    "the quick brown fox jumps over the lazy dog",
    "sunlight filters through the tall trees onto a quiet river",
    "a red car drives along a coastal road at sunset",
    "a cat sits on a mat and watches the rain",
] * 8

VOCAB = 160  # >= the T5 tokenizer length with its 100 extra ids


def build_spiece_tokenizer(folder: Path) -> None:
    """A sentencepiece unigram model trained on CORPUS, saved as ``spiece.model`` only."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=buf,
        vocab_size=48,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(buf.getvalue())


def build_json_tokenizer(folder: Path) -> None:
    """A T5-style unigram tokenizer trained with the ``tokenizers`` library, ``tokenizer.json`` only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=50, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))


@dataclass(frozen=True)
class TinySpec:
    """What to build: the model family, the task, the sampler and the tokenizer kind."""

    name: str
    task: str = "t2v"  # t2v | i2v | v2v
    rope: bool = False
    v15: bool = False
    learned_positions: bool = False
    sampler: str = "ddim"
    tokenizer: str = "spiece"  # spiece | json
    snr_shift: float = 3.0
    transformer_overrides: dict[str, Any] = field(default_factory=dict)


def transformer_kwargs(spec: TinySpec) -> dict[str, Any]:
    latent = 4
    kw: dict[str, Any] = dict(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=latent,
        out_channels=latent,
        time_embed_dim=8,
        text_embed_dim=32,
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
        kw["in_channels"] = 2 * latent
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


VAE_KWARGS = dict(
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


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Perturb every parameter so nothing is trivially zero or one (zero-init adaLN, norm scales)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.ndim == 1 and name.endswith("weight"):
                p.copy_(1 + 0.1 * noise)
            else:
                p.add_(0.05 * noise)


def build_model_folder(root: Path, spec: TinySpec) -> Path:
    """Write the folder with diffusers' own save_pretrained and return its path."""
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXDPMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
        CogVideoXVideoToVideoPipeline,
    )
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    folder = root / spec.name
    if (folder / "model_index.json").is_file():
        return folder
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(**transformer_kwargs(spec))
    randomize(transformer, 1)
    vae_kwargs = dict(VAE_KWARGS)
    if spec.v15:
        vae_kwargs["invert_scale_latents"] = True
        vae_kwargs["scaling_factor"] = 0.7
    vae = AutoencoderKLCogVideoX(**vae_kwargs)
    randomize(vae, 2)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=VOCAB,
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
    )
    randomize(t5, 3)
    tok_dir = root / f"_tok_{spec.tokenizer}"
    if not tok_dir.exists():
        (build_spiece_tokenizer if spec.tokenizer == "spiece" else build_json_tokenizer)(tok_dir)
    tokenizer = T5Tokenizer.from_pretrained(tok_dir)
    scheduler_cls = CogVideoXDDIMScheduler if spec.sampler == "ddim" else CogVideoXDPMScheduler
    scheduler = scheduler_cls(
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
    pipe_cls = {
        "t2v": CogVideoXPipeline,
        "i2v": CogVideoXImageToVideoPipeline,
        "v2v": CogVideoXVideoToVideoPipeline,
    }[spec.task]
    pipe = pipe_cls(
        tokenizer=tokenizer, text_encoder=t5, vae=vae, transformer=transformer, scheduler=scheduler
    )
    pipe.save_pretrained(folder)
    # Replace the saved tokenizer with the bare built files, so loading exercises both kinds.
    tok_out = folder / "tokenizer"
    for f in tok_out.iterdir():
        f.unlink()
    for f in tok_dir.iterdir():
        (tok_out / f.name).write_bytes(f.read_bytes())
    return folder


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def make_folder(model_root):
    def make(spec: TinySpec | dict) -> Path:
        return build_model_folder(
            model_root, spec if isinstance(spec, TinySpec) else TinySpec(**spec)
        )

    return make


@pytest.fixture(scope="session")
def cached_pipelines(make_folder):
    """``(reference, ours)`` pipelines per (spec, task), loaded once per session (parity tests
    only: they do not change pipeline state)."""
    cache: dict[tuple, tuple] = {}

    def get(spec: dict, task: str):
        key = (tuple(sorted((k, repr(v)) for k, v in spec.items())), task)
        if key not in cache:
            from diffusers import (
                CogVideoXImageToVideoPipeline,
                CogVideoXPipeline,
                CogVideoXVideoToVideoPipeline,
            )

            from cogvx.infer import (
                ImageToVideoPipeline,
                TextToVideoPipeline,
                VideoToVideoPipeline,
            )

            folder = make_folder(spec)
            ref_cls, our_cls = {
                "t2v": (CogVideoXPipeline, TextToVideoPipeline),
                "i2v": (CogVideoXImageToVideoPipeline, ImageToVideoPipeline),
                "v2v": (CogVideoXVideoToVideoPipeline, VideoToVideoPipeline),
            }[task]
            ref = ref_cls.from_pretrained(folder)
            ref.set_progress_bar_config(disable=True)
            cache[key] = (ref, our_cls.from_pretrained(folder))
        return cache[key]

    return get


def read_index(folder: Path) -> dict:
    return json.loads((folder / "model_index.json").read_text())
