"""Fixtures: tiny random transformers models saved to tmp folders, synthetic clips.

Nothing is downloaded: tokenizers are built with the ``tokenizers`` library from a word list,
models from small configs with random weights, and loaded back by path like real ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The models here are tiny: with several intra-op threads on a loaded 2-core machine OpenMP
# spin-waiting makes each op ~100x slower than on one thread.
torch.set_num_threads(1)

WORDS = [
    "a",
    "the",
    "man",
    "woman",
    "dog",
    "cat",
    "runs",
    "walks",
    "sits",
    "on",
    "in",
    "at",
    "beach",
    "field",
    "street",
    "red",
    "blue",
    "green",
    "square",
    "moves",
    "left",
    "right",
    "camera",
    "pans",
    "slowly",
    "sky",
    "water",
    "tree",
    "car",
    "light",
    "dark",
    "small",
    "large",
    ".",
    ",",
]
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]

CHAT_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<s> assistant {% endif %}"
)


def make_tokenizer(chat_template: str | None = None):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    if chat_template:
        fast.chat_template = chat_template
    return fast


@pytest.fixture(scope="session")
def tokenizer_vocab_size() -> int:
    return len(SPECIALS) + len(WORDS)


@pytest.fixture(scope="session")
def captioner_dir(tmp_path_factory) -> Path:
    """A tiny ViT -> GPT-2 VisionEncoderDecoder image captioner with its image processor."""
    import torch
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessorPil,
    )

    out = tmp_path_factory.mktemp("captioner")
    n = len(SPECIALS) + len(WORDS)
    enc = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    dec = GPT2Config(
        vocab_size=n,
        n_embd=32,
        n_layer=1,
        n_head=2,
        n_positions=64,
        add_cross_attention=True,
        is_decoder=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 1, 0, 2
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=cfg)
    # random weights may stop at once or emit specials: suppress them so captions have words
    model.generation_config.suppress_tokens = [0, 1, 2, 3]
    model.save_pretrained(out)
    make_tokenizer().save_pretrained(out)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def _save_llama(out: Path, *, chat_template: str | None, seed: int) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    n = len(SPECIALS) + len(WORDS)
    cfg = LlamaConfig(
        vocab_size=n,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.generation_config.suppress_tokens = [0, 1, 2, 3]  # no early EOS, no specials
    model.save_pretrained(out)
    make_tokenizer(chat_template).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def chat_lm_dir(tmp_path_factory) -> Path:
    """A tiny Llama causal LM whose tokenizer has a chat template."""
    return _save_llama(tmp_path_factory.mktemp("chat_lm"), chat_template=CHAT_TEMPLATE, seed=1)


@pytest.fixture(scope="session")
def base_lm_dir(tmp_path_factory) -> Path:
    """A tiny Llama causal LM without a chat template (plain rendering path)."""
    return _save_llama(tmp_path_factory.mktemp("base_lm"), chat_template=None, seed=2)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    """A tiny transformers CLIPModel folder (what evals' CLIPBackend loads)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    out = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config={
            "vocab_size": 40,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    CLIPModel(cfg).save_pretrained(out)
    make_tokenizer().save_pretrained(out)
    return out


# ---- synthetic clips ------------------------------------------------------------------------


def textured_square(size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def background(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return np.stack([xx * 200 // w + 20, yy * 200 // h + 20, np.full_like(xx, 90)], -1).astype(
        np.uint8
    )


def moving_square_frames(
    n: int = 24, h: int = 96, w: int = 128, speed: float = 3.0, seed: int = 0
) -> np.ndarray:
    """A textured square moving ``speed`` px/frame to the right over a smooth background."""
    tex, bg = textured_square(32, seed), background(h, w)
    frames = []
    for t in range(n):
        f = bg.copy()
        x = round(8 + speed * t) % (w - 32)
        f[32:64, x : x + 32] = tex
        frames.append(f)
    return np.stack(frames)


def static_frames(n: int = 24, h: int = 96, w: int = 128) -> np.ndarray:
    return moving_square_frames(n, h, w, speed=0.0)


def text_frames(n: int = 24, h: int = 96, w: int = 128) -> np.ndarray:
    """A slowly scrolling page of text (dominated by text)."""
    frames = []
    for t in range(n):
        f = np.full((h, w, 3), 235, np.uint8)
        for line in range(8):
            cv2.putText(
                f,
                "text line 42",
                (4, 12 + line * 12 - t % 4),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.35,
                (10, 10, 10),
                1,
            )
        frames.append(f)
    return np.stack(frames)


def write_clip(path: Path, frames: np.ndarray, fps: float = 8.0) -> Path:
    from cogvx.videoio import write_video

    write_video(path, frames, fps)
    return path


@pytest.fixture
def clip_folder(tmp_path) -> Path:
    """4 moving clips, 1 static, 1 text page, 1 corrupt and 1 empty file."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(4):
        write_clip(folder / f"move{i}.mp4", moving_square_frames(speed=2.0 + i, seed=i))
    write_clip(folder / "still.mp4", static_frames())
    write_clip(folder / "page.mp4", text_frames())
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 20)
    (folder / "empty.mp4").write_bytes(b"")
    return folder


@pytest.fixture(scope="session")
def synth():
    """The synthetic-clip helpers, for tests (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        moving=moving_square_frames,
        static=static_frames,
        text=text_frames,
        write=write_clip,
        make_tokenizer=make_tokenizer,
    )
