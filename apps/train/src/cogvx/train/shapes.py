"""The synthetic "shapes" dataset: clips of one coloured shape moving on a plain grey background.

Each clip is drawn from the shapes vocabulary of :mod:`cogvx.evals.shapes` (the single source of
the colours, shapes, motions, caption phrasings and the held-out (colour, shape) pairs, so the
evaluator judges exactly what the generator draws) and written as a real video file plus one
line of a data manifest (docs/data.md), so training goes through the same videoio / frame-pack /
cache path as real data.

* Deterministic: clip ``i`` of a dataset with seed ``s`` depends only on ``(s, i)``
  (``numpy.random.default_rng([s, i])``), so a larger dataset extends a smaller one and an
  interrupted run resumes where it stopped (clips already on disk are kept).
* Geometry: the shape's size ``s`` (circle diameter, square side, triangle base and height) is a
  fraction of the frame width (at least ``MIN_SIZE_FRACTION``); a moving shape's centre travels at
  least ``MIN_TRAVEL_FRACTION`` of the frame side along its motion, linearly over the clip, and
  the shape stays wholly inside the frame. Shapes are drawn by the evaluator's own drawer
  (anti-aliased, sub-pixel positions).
* Files: H.264 mp4 with full-resolution chroma at crf 0 (``pix_fmt="yuv444p"``): at 64x64 the
  usual yuv420p halves the chroma resolution and caps a round trip at about 32 dB PSNR on these
  saturated edges; yuv444p at crf 0 is within one level of the drawn frames.

``pairs="train"`` draws only the training (colour, shape) pairs and train phrasings;
``pairs="held_out"`` draws the held-out pairs with held-out phrasings (evaluation clips, e.g. the
VAE's held-out reconstruction PSNR).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from cogvx.evals.shapes import (
    BACKGROUND_LEVELS,
    COLORS,
    HELD_OUT_PAIRS,
    MIN_SIZE_FRACTION,
    MIN_TRAVEL_FRACTION,
    MOTION_VECTORS,
    MOTIONS,
    caption,
    draw_shape,
    phrasings,
    training_pairs,
    vocabulary_words,
)
from cogvx.expert_dit import DiTConfig, SchedulerConfig
from cogvx.infer import DEFAULT_MODEL_STEPS
from cogvx.train.data import VideoDataModule
from cogvx.train.dit import DiTModule
from cogvx.train.vae import ClipDataModule
from cogvx.videoio import ManifestRecord, atomic_output, write_image, write_video

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_NAME",
    "ClipSpec",
    "ShapesClipDataModule",
    "ShapesDataConfig",
    "ShapesDiTModule",
    "ShapesVideoDataModule",
    "build_text_encoder",
    "build_tokenizer",
    "contact_sheet",
    "draw_clip",
    "evaluate_adherence",
    "make_shapes_dataset",
    "sample_clip",
]

MANIFEST_NAME = "manifest.jsonl"
_INFO_NAME = "shapes.json"

Pairs = Literal["train", "held_out"]


@dataclass(frozen=True)
class ClipSpec:
    """One clip: what is drawn (colour, shape, motion), where, and its caption phrase."""

    color: str
    shape: str
    motion: str
    phrase: str
    size: float
    """Shape size in pixels (circle diameter, square side, triangle base and height)."""
    start: tuple[float, float]
    """Centre (x, y) in pixels at the first frame; y grows downwards."""
    travel: float
    """Distance in pixels the centre moves along the motion from the first to the last frame."""
    background: int
    """Grey level (R = G = B) of the plain background."""
    names_color: bool = True
    """False: the caption leaves the colour out ("a circle sinks"; ``caption_drop_color``)."""

    @property
    def caption(self) -> str:
        text = caption(self.color, self.shape, self.motion, self.phrase)
        if not self.names_color:
            text = text.replace(
                f"a {self.color} ", "a ", 1
            )  # "a <color> <shape> ..." -> "a <shape> ..."
        return text

    def centre(self, t: float) -> tuple[float, float]:
        """Centre at clip time ``t`` in [0, 1] (linear motion)."""
        dx, dy = MOTION_VECTORS[self.motion]
        return self.start[0] + dx * self.travel * t, self.start[1] + dy * self.travel * t


def _check_fraction_range(name: str, value: tuple[float, float], low: float, high: float) -> None:
    ok = (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and low <= value[0] <= value[1] <= high
    )
    if not ok:
        raise ValueError(
            f"{name}={value!r}: expected (min, max) with {low:g} <= min <= max <= {high:g}"
        )


@dataclass(frozen=True)
class ShapesDataConfig:
    """What :func:`make_shapes_dataset` draws and writes (the ``data=shapes`` options)."""

    num_clips: int = 1200
    frames: int = 9
    height: int = 64
    width: int = 64
    fps: float = 8.0
    size: tuple[float, float] = (0.3, 0.42)
    """Shape size range as a fraction of the frame width (min >= ``MIN_SIZE_FRACTION``)."""
    travel: tuple[float, float] = (0.38, 0.45)
    """Travel range of a moving shape as a fraction of the frame side along its motion."""
    pairs: Pairs = "train"
    seed: int = 0
    crf: int = 0
    pix_fmt: str = "yuv444p"
    caption_drop_color: float = 0.0
    """Fraction of the clips captioned without their colour ("a circle moves left"). There the
    shape word alone says the shape, which keeps the transformer from reading the shape off the
    colour (each held-out colour is seen with only two shapes; docs/shapes-model.md)."""
    twin_shapes: bool = False
    """Draw the clips in pairs: clips ``2g`` and ``2g + 1`` are the same clip (colour, motion,
    phrasing, size, path, background) with two different shapes, both a training pair of the
    colour; for the transformer's paired loss (``model.pair_weight``, docs/training.md)."""
    num_images: int = 0
    """Also write this many still images (PNG, ``type="image"`` records): the first frame of the
    clips drawn at indices ``num_clips .. num_clips + num_images - 1``, captioned with colour and
    shape only ("a red circle"), for image-video joint training of the transformer (images as
    one-frame videos, docs/training.md §Joint image-video training); stage 1 does not use them."""

    def __post_init__(self) -> None:
        counts = {"num_clips": 1, "frames": 1, "height": 1, "width": 1, "num_images": 0}
        for name, low in counts.items():  # the least value of each count
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r}: expected an integer >= {low}")
        if self.num_images and self.twin_shapes:
            raise ValueError("num_images > 0 with twin_shapes=True: stills have no twin")
        if self.frames < 2:
            raise ValueError(f"frames={self.frames}: a clip needs at least 2 frames to show motion")
        if isinstance(self.fps, bool) or not isinstance(self.fps, int | float) or self.fps <= 0:
            raise ValueError(f"fps={self.fps!r}: expected a number > 0")
        object.__setattr__(self, "size", tuple(self.size))
        object.__setattr__(self, "travel", tuple(self.travel))
        _check_fraction_range("size", self.size, MIN_SIZE_FRACTION, 0.5)
        _check_fraction_range("travel", self.travel, MIN_TRAVEL_FRACTION, 1.0)
        if self.pairs not in ("train", "held_out"):
            raise ValueError(f"pairs={self.pairs!r}: expected 'train' or 'held_out'")
        if not isinstance(self.twin_shapes, bool):
            raise ValueError(f"twin_shapes={self.twin_shapes!r}: expected true or false")
        if self.twin_shapes and (self.pairs != "train" or self.num_clips % 2):
            raise ValueError(
                f"twin_shapes=True needs pairs='train' (got {self.pairs!r}; each held-out colour "
                f"has one shape) and an even num_clips (got {self.num_clips})"
            )
        drop = self.caption_drop_color
        if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0.0 <= drop <= 1.0:
            raise ValueError(f"caption_drop_color={drop!r}: expected a fraction in [0, 1]")
        side = min(self.height, self.width)
        if self.size[1] * self.width + self.travel[1] * max(self.height, self.width) > side:
            raise ValueError(
                f"size={self.size} and travel={self.travel} do not fit a {self.height}x{self.width} "
                "frame: the largest shape must stay inside the frame over its longest travel"
            )


def sample_clip(config: ShapesDataConfig, index: int) -> ClipSpec:
    """Clip ``index`` of the dataset: a function of ``(config.seed, index)`` only.

    With ``twin_shapes`` every draw comes from the pair ``index // 2`` except the shape: the
    first clip of a pair gets a random training pair, the second another shape of that colour.
    """
    key = index // 2 if config.twin_shapes else index
    rng = np.random.default_rng([config.seed, key])
    pairs = sorted(HELD_OUT_PAIRS) if config.pairs == "held_out" else list(training_pairs())
    color, shape = pairs[int(rng.integers(len(pairs)))]
    if config.twin_shapes:
        others = [s for c, s in pairs if c == color and s != shape]
        twin = others[int(rng.integers(len(others)))]  # drawn for both clips of the pair
        shape = twin if index % 2 else shape
    motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
    options = phrasings(motion, held_out=config.pairs == "held_out")
    phrase = options[int(rng.integers(len(options)))]
    size = float(rng.uniform(*config.size)) * config.width
    dx, dy = MOTION_VECTORS[motion]
    along = config.width if dx else config.height
    travel = float(rng.uniform(*config.travel)) * along if motion != "still" else 0.0
    margin = size / 2 + 1.0
    start = []
    for d, extent in ((dx, config.width), (dy, config.height)):
        # The centre's range at the start so that the whole path stays inside the frame.
        lo = margin + max(0.0, -d * travel)
        hi = extent - margin - max(0.0, d * travel)
        start.append(float(rng.uniform(lo, hi)))
    background = int(BACKGROUND_LEVELS[int(rng.integers(len(BACKGROUND_LEVELS)))])
    # Drawn last, and only when asked for, so every earlier draw (and so the pixels) of clip
    # ``index`` is the same with or without colour-free captions.
    names_color = not (config.caption_drop_color > 0 and rng.random() < config.caption_drop_color)
    return ClipSpec(
        color, shape, motion, phrase, size, (start[0], start[1]), travel, background, names_color
    )


def draw_clip(spec: ClipSpec, frames: int, height: int, width: int) -> np.ndarray:
    """Draw the clip with the evaluator's own drawer (``cogvx.evals.shapes.draw_shape``: OpenCV,
    anti-aliased, sub-pixel positions): uint8 frames ``[T, H, W, 3]``."""
    out = np.full((frames, height, width, 3), spec.background, dtype=np.uint8)
    for t in range(frames):
        draw_shape(out[t], spec.shape, spec.centre(t / (frames - 1)), spec.size, COLORS[spec.color])
    return out


def _record(
    spec: ClipSpec, path: str, config: ShapesDataConfig, index: int, *, image: bool = False
) -> ManifestRecord:
    return ManifestRecord(
        path=path,
        caption=f"a {spec.color} {spec.shape}" if image else spec.caption,
        type="image" if image else "video",
        frames=1 if image else config.frames,
        height=config.height,
        width=config.width,
        fps=None if image else float(config.fps),
        tags=(spec.color, spec.shape) if image else (spec.color, spec.shape, spec.motion),
        extra={
            "shapes": {
                **({"pair": index // 2} if config.twin_shapes else {}),
                "color": spec.color,
                "shape": spec.shape,
                "motion": spec.motion,
                "size": round(spec.size, 4),
                "start": [round(v, 4) for v in spec.start],
                "travel": round(spec.travel, 4),
                "background": spec.background,
            }
        },
    )


def make_shapes_dataset(
    out_dir: str | os.PathLike[str],
    config: ShapesDataConfig | None = None,
    *,
    progress: bool = True,
) -> Path:
    """Write ``config.num_clips`` clips to ``out_dir/clips/NNNNN.mp4`` (and ``config.num_images``
    stills to ``out_dir/images/NNNNN.png``) and ``out_dir/manifest.jsonl``.

    Returns the manifest path. Clips already present from an earlier (interrupted) run with the
    same settings are kept; a folder made with different settings is refused (the settings are
    recorded in ``out_dir/shapes.json``). Every file appears only when complete.
    """
    config = config if config is not None else ShapesDataConfig()
    root = Path(out_dir)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    # What the clip files depend on; captions are rewritten into the manifest on every call, so
    # a folder is shared by runs that differ only in ``caption_drop_color``.
    settings = {
        k: v
        for k, v in asdict(config).items()
        if k not in ("num_clips", "caption_drop_color", "num_images")
    }
    if not config.twin_shapes:  # folders written before the option existed stay valid
        del settings["twin_shapes"]
    settings["size"], settings["travel"] = list(config.size), list(config.travel)
    info = root / _INFO_NAME
    if info.is_file():
        previous = json.loads(info.read_text())
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise ValueError(
                f"out_dir={str(root)!r} holds a shapes dataset made with other settings "
                f"({', '.join(changed)} differ); choose an empty folder"
            )
    else:
        with atomic_output(info) as tmp:
            tmp.write_text(json.dumps(settings, indent=2) + "\n")
    records = []
    for i in tqdm(range(config.num_clips), desc="shapes clips", disable=not progress):
        spec = sample_clip(config, i)
        rel = f"clips/{i:05d}.mp4"
        if not (root / rel).is_file():
            frames = draw_clip(spec, config.frames, config.height, config.width)
            write_video(root / rel, frames, config.fps, crf=config.crf, pix_fmt=config.pix_fmt)
        records.append(_record(spec, rel, config, i))
    if config.num_images:
        (root / "images").mkdir(exist_ok=True)
    for i in tqdm(
        range(config.num_clips, config.num_clips + config.num_images),
        desc="shapes images",
        disable=not progress or not config.num_images,
    ):
        spec = sample_clip(config, i)
        rel = f"images/{i:05d}.png"
        if not (root / rel).is_file():
            write_image(root / rel, draw_clip(spec, 2, config.height, config.width)[0])
        records.append(_record(spec, rel, config, i, image=True))
    manifest = root / MANIFEST_NAME
    with atomic_output(manifest) as tmp:
        tmp.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    return manifest


class ShapesClipDataModule(ClipDataModule):
    """:class:`cogvx.train.vae.ClipDataModule` over a generated shapes dataset (``data=shapes_clips``).

    ``prepare_data`` writes ``root/train`` (``num_clips`` training clips, seed ``seed``) and
    ``root/held_out`` (``val_clips`` clips of the held-out pairs, seed ``seed + 1``) when absent;
    validation runs on the held-out clips.
    """

    def __init__(
        self,
        root: str,
        num_clips: int = 1200,
        val_clips: int = 32,
        frames: int = 9,
        height: int = 64,
        width: int = 64,
        batch_size: int = 4,
        val_batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
        size: Sequence[float] = ShapesDataConfig.size,
        travel: Sequence[float] = ShapesDataConfig.travel,
        twin_shapes: bool = False,
    ) -> None:
        self.root = Path(root)
        common = {"frames": frames, "height": height, "width": width}
        common |= {"size": tuple(size), "travel": tuple(travel)}
        self.train_config = ShapesDataConfig(
            num_clips=num_clips, seed=seed, twin_shapes=twin_shapes, **common
        )
        self.val_config = ShapesDataConfig(
            num_clips=val_clips, seed=seed + 1, pairs="held_out", **common
        )
        super().__init__(
            manifest=str(self.root / "train" / MANIFEST_NAME),
            val_manifest=str(self.root / "held_out" / MANIFEST_NAME) if val_clips else None,
            frames=frames,
            batch_size=batch_size,
            val_batch_size=val_batch_size,
            num_workers=num_workers,
            seed=seed,
        )

    def prepare_data(self) -> None:
        make_shapes_dataset(self.root / "train", self.train_config)
        if self.val_manifest is not None:
            make_shapes_dataset(self.root / "held_out", self.val_config)


# ------------------------------------------------------------------------------ text encoder
def build_tokenizer(folder: str | os.PathLike[str], *, max_length: int = 16) -> Path:
    """Write a T5-layout tokenizer whose pieces are the whole words of the shapes vocabulary.

    A ``tokenizers`` Unigram model (what ``transformers``' ``T5Tokenizer`` wraps) holding
    ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2 and one ``"▁word"`` piece per word of
    ``cogvx.evals.shapes.vocabulary_words()``, lower-casing input, appending ``</s>``: every
    caption word is one token, any other word falls to ``<unk>``. Files: ``tokenizer.json`` and a
    ``tokenizer_config.json`` (``T5Tokenizer``, no extra ids, ``model_max_length``), loaded by
    ``T5Tokenizer.from_pretrained`` in cogvx and diffusers alike.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("▁" + w, -1.0) for w in vocabulary_words()]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    with atomic_output(root / "tokenizer.json") as tmp:
        tok.save(str(tmp))
    config = {
        "tokenizer_class": "T5Tokenizer",
        "model_max_length": max_length,
        "extra_ids": 0,
        "additional_special_tokens": [],
        "pad_token": "<pad>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
    }
    with atomic_output(root / "tokenizer_config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    return root


def build_text_encoder(
    folder: str | os.PathLike[str],
    *,
    d_model: int = 32,
    num_layers: int = 1,
    num_heads: int = 2,
    seed: int = 0,
) -> Path:
    """Write a small random-weight ``T5EncoderModel`` (safetensors) sized for :func:`build_tokenizer`.

    It stays frozen in training: its only job is to give every caption word a distinct, stable
    embedding (a random T5 keeps token identity through its residual stream), which the
    transformer learns to read. ``seed`` fixes the weights.
    """
    import torch
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=3 + len(vocabulary_words()),
        d_model=d_model,
        d_kv=d_model // num_heads,
        d_ff=2 * d_model,
        num_layers=num_layers,
        num_heads=num_heads,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5EncoderModel(config).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    return Path(folder)


# ------------------------------------------------------------------------------ DiT data
class ShapesVideoDataModule(VideoDataModule):
    """:class:`cogvx.train.VideoDataModule` over a generated shapes dataset (``data=shapes``).

    ``prepare_data`` writes, when absent: the training clips (``root/train``), the word-level
    tokenizer (``root/tokenizer``, :func:`build_tokenizer`) and the frozen random T5
    (``root/text_encoder``, :func:`build_text_encoder`, seed ``text_encoder_seed``); without
    ``vae_folder`` also a random tiny VAE (``root/vae``: for smoke runs such as ``tiny_dit``; the
    shapes recipe passes the VAE trained by ``experiment=shapes_vae``). Then it pre-encodes every
    clip into ``root/cache`` (VAE latents + T5 embeddings, reused while the encoders match).
    With ``twin_shapes`` the clips come in pairs (:class:`ShapesDataConfig`) and every batch
    holds whole pairs, next to each other (``FramePackSampler(groups=...)``), for
    ``model.pair_weight``. ``num_images`` adds still images (one latent frame each) that the
    frame packer mixes with the clips.
    """

    def __init__(
        self,
        root: str,
        vae_folder: str | None = None,
        num_clips: int = 1200,
        frames: int = 9,
        height: int = 64,
        width: int = 64,
        max_text_length: int = 16,
        text_embed_dim: int = 32,
        text_encoder_seed: int = 0,
        token_budget: int = 2048,
        patch_size: int = 2,
        uncond: str = "empty_prompt",
        seed: int = 0,
        num_workers: int = 0,
        size: Sequence[float] = ShapesDataConfig.size,
        travel: Sequence[float] = ShapesDataConfig.travel,
        caption_drop_color: float = 0.0,
        twin_shapes: bool = False,
        num_images: int = 0,
    ) -> None:
        self.root = Path(root)
        self.shapes_config = ShapesDataConfig(
            twin_shapes=twin_shapes,
            num_images=num_images,
            num_clips=num_clips,
            frames=frames,
            height=height,
            width=width,
            seed=seed,
            size=tuple(size),
            travel=tuple(travel),
            caption_drop_color=caption_drop_color,
        )
        self.text_embed_dim, self.text_encoder_seed = text_embed_dim, text_encoder_seed
        self.builds_vae = vae_folder is None
        super().__init__(
            manifest=str(self.root / "train" / MANIFEST_NAME),
            vae_folder=str(self.root / "vae") if vae_folder is None else vae_folder,
            text_encoder_folder=str(self.root / "text_encoder"),
            tokenizer_folder=str(self.root / "tokenizer"),
            short_side=min(height, width),
            max_frames=frames,
            fps=self.shapes_config.fps,
            max_text_length=max_text_length,
            token_budget=token_budget,
            patch_size=patch_size,
            uncond=uncond,
            cache_dir=str(self.root / "cache"),
            seed=seed,
            num_workers=num_workers,
        )

    def sample_groups(self) -> list[list[int]] | None:
        """With ``twin_shapes``, the catalog indices of each pair (see the base class); a pair
        whose other clip the catalog left out (unreadable) is not trained on."""
        if not self.shapes_config.twin_shapes:
            return None
        assert self.catalog is not None
        members: dict[int, list[int]] = {}
        for i, record in enumerate(self.catalog.records):
            members.setdefault(int(record.extra["shapes"]["pair"]), []).append(i)
        groups = [m for _, m in sorted(members.items()) if len(m) == 2]
        if len(groups) < len(members):
            logger.warning("twin_shapes: %d incomplete pairs left out", len(members) - len(groups))
        return groups

    def prepare_data(self) -> None:
        make_shapes_dataset(self.root / "train", self.shapes_config)
        if not (self.root / "tokenizer" / "tokenizer.json").is_file():
            build_tokenizer(self.root / "tokenizer", max_length=self.max_text_length)
        if not (self.root / "text_encoder" / "config.json").is_file():
            build_text_encoder(
                self.root / "text_encoder", d_model=self.text_embed_dim, seed=self.text_encoder_seed
            )
        if self.builds_vae and not (self.root / "vae" / "config.json").is_file():
            import torch

            from cogvx.vae3d import CausalVAE3D, VAEConfig

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.shapes_config.seed)
                CausalVAE3D(VAEConfig.tiny()).save_pretrained(self.root / "vae")
        super().prepare_data()


class ShapesDiTModule(DiTModule):
    """:class:`cogvx.train.DiTModule` trained from scratch that, when training ends, writes the
    complete model folder ``<run dir>/model`` (``cogvx.train.export_model_folder``: the trained
    transformer -- the EMA weights when ``ema_for_validation`` -- with the data module's frozen
    VAE, T5 and tokenizer, and this module's scheduler). ``export=False`` skips it."""

    def __init__(
        self,
        transformer: DiTConfig,
        scheduler: SchedulerConfig | None = None,
        optim: Any = None,
        text_dropout: float = 0.1,
        explicit_uniform: bool = True,
        timestep_logit_normal: list[float] | None = None,
        foreground_weight: float = 0.0,
        pair_weight: float | None = None,
        ema_decay: float | None = None,
        ema_for_validation: bool = False,
        attention_mode: str = "auto",
        export: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(
            transformer=transformer,
            scheduler=scheduler,
            optim=optim,
            text_dropout=text_dropout,
            explicit_uniform=explicit_uniform,
            timestep_logit_normal=timestep_logit_normal,
            foreground_weight=foreground_weight,
            pair_weight=pair_weight,
            ema_decay=ema_decay,
            ema_for_validation=ema_for_validation,
            attention_mode=attention_mode,
            seed=seed,
        )
        self.export = export

    def export_model(self, out: str | os.PathLike[str], data: VideoDataModule) -> Path:
        """Write the model folder ``out`` from this module and ``data``'s frozen encoders."""
        from cogvx.train.export import export_model_folder

        with self.validation_weights():
            return export_model_folder(
                out,
                self.dit,
                vae_folder=data.folders["vae"],
                text_encoder_folder=data.folders["text_encoder"],
                tokenizer_folder=data.folders["tokenizer"],
                scheduler=self.scheduler_config,
                overwrite=True,
            )

    def on_train_end(self) -> None:
        trainer = self.trainer
        if not self.export or not trainer.is_global_zero or trainer.fast_dev_run:
            return
        if not isinstance(trainer.datamodule, VideoDataModule):
            raise TypeError("ShapesDiTModule export needs a VideoDataModule (its frozen encoders)")
        self.export_model(Path(trainer.default_root_dir) / "model", trainer.datamodule)


# ------------------------------------------------------------------------------ adherence
#: Sampling settings the shapes model is evaluated and shipped with (chosen before evaluating);
#: ``cogvx generate`` uses the same step count for it (``cogvx.infer.DEFAULT_MODEL_STEPS``).
SHAPES_STEPS = DEFAULT_MODEL_STEPS
SHAPES_GUIDANCE = 6.0


def evaluate_adherence(
    model_folder: str | os.PathLike[str],
    *,
    prompts: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    num_inference_steps: int = SHAPES_STEPS,
    guidance_scale: float = SHAPES_GUIDANCE,
    progress: bool = True,
) -> tuple[Any, list[tuple[str, int, np.ndarray]]]:
    """Generate every prompt x seed with ``cogvx.infer``'s text-to-video pipeline and score the
    videos with the shapes evaluator (``cogvx.evals.shapes.evaluate_shapes``).

    ``prompts`` defaults to the fixed held-out set (``held_out_prompts()``). Returns the
    ``ShapesReport`` and the videos as ``(prompt, seed, uint8 [F, H, W, 3])``.
    """
    import torch

    from cogvx.evals.shapes import evaluate_shapes, held_out_prompts
    from cogvx.infer import TextToVideoPipeline

    texts = list(prompts) if prompts is not None else [p.text for p in held_out_prompts()]
    pipe = TextToVideoPipeline.from_pretrained(model_folder)
    videos: list[tuple[str, int, np.ndarray]] = []
    jobs = [(t, s) for t in texts for s in seeds]
    for text, seed in tqdm(jobs, desc="shapes adherence", disable=not progress):
        out = pipe(
            prompt=text,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=torch.Generator().manual_seed(int(seed)),
            output_type="np",
            progress=False,
        )
        frames = out.frames if hasattr(out, "frames") else out
        video = np.asarray(frames)[0]  # [F, H, W, 3] in [0, 1]
        videos.append((text, int(seed), np.rint(np.clip(video, 0, 1) * 255).astype(np.uint8)))
    report = evaluate_shapes((v, t) for t, _, v in videos)
    return report, videos


def contact_sheet(
    videos: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    frames: Sequence[int] = (0, 2, 4, 6, 8),
    scale: int = 1,
) -> Path:
    """A PNG grid: one row per ``(caption, uint8 [F, H, W, 3])`` video, the chosen frames left to
    right, the caption above each row."""
    from PIL import Image, ImageDraw

    if not videos:
        raise ValueError("videos is empty: nothing to put on a contact sheet")
    h, w = videos[0][1].shape[1:3]
    h, w = h * scale, w * scale
    label, gap = 12, 2
    sheet = Image.new(
        "RGB", (len(frames) * (w + gap) + gap, len(videos) * (h + label + gap) + gap), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for r, (caption_text, video) in enumerate(videos):
        y = gap + r * (h + label + gap)
        draw.text((gap, y), caption_text, fill="black")
        for c, f in enumerate(frames):
            tile = Image.fromarray(video[min(f, len(video) - 1)])
            if scale != 1:
                tile = tile.resize((w, h), Image.NEAREST)
            sheet.paste(tile, (gap + c * (w + gap), y + label))
    target = Path(path)
    with atomic_output(target) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return target
