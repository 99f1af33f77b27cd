"""Training data: a LightningDataModule of frame-pack batches over videos with captions.

Sources (docs/data.md): a data manifest (``cogvx.videoio``: JSON Lines with path, caption, type,
frames, height, width, fps) or a folder of videos / images with caption sidecars
(``clip.mp4`` + ``clip.txt``). Each sample is given its training shape by
``cogvx.framepack.assign_train_shape`` (resolution stage: short side, area limit, max frames,
target fps), loaded at that shape -- frames resampled to the target fps from the first frame,
resized to cover the target size keeping the aspect ratio, then center-cropped -- and encoded by
the frozen VAE and T5 (on the fly, or once through the pre-encoding cache of
:mod:`cogvx.train.cache`). Batches are Multi-Resolution Frame Packs planned by
``cogvx.framepack`` (one pack per rank per step) and collated into a
``cogvx.framepack.PackedBatch`` inside a :class:`TrainBatch`.

Bad files (missing, unreadable, corrupt, truncated) never stop a run: they are skipped, counted
and logged with their path, at cataloguing (header probe), at pre-encoding, or at load time (the
dataset then yields a ``SkippedSample`` and the module logs ``train/skipped``). A run whose data
is all bad stops with a RuntimeError naming the source and the reasons.

Order: the plan is a pure function of (seed, epoch, world size, data), and the position inside
the epoch is in :meth:`VideoDataModule.state_dict` (Lightning saves it in the checkpoint), so a
resumed run sees exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from cogvx.framepack import (
    FramePackSampler,
    ModelGeometry,
    PackCollator,
    PackedBatch,
    ResolutionStage,
    SampleShape,
    SkippedSample,
    TrainShape,
    UnfitSample,
    assign_train_shape,
)
from cogvx.train.cache import CachedSample, FrozenEncoders, LatentCache
from cogvx.videoio import (
    IMAGE_SUFFIXES,
    ManifestRecord,
    VideoReadError,
    collect_media,
    frames_to_tensor,
    probe_video,
    read_image,
    read_video,
    resolve_path,
    scan_manifest,
)

__all__ = [
    "Catalog",
    "ClipDataset",
    "TrainBatch",
    "TrainCollator",
    "VideoDataModule",
    "build_catalog",
    "load_clip",
]

logger = logging.getLogger(__name__)

_LOAD_ERRORS = (VideoReadError, ValueError, OSError, RuntimeError)


# ---------------------------------------------------------------------------------- catalogue
@dataclass(frozen=True)
class Catalog:
    """Usable samples (records with absolute paths, in source order) and the ones left out."""

    source: str
    records: tuple[ManifestRecord, ...]
    skipped: tuple[tuple[str, str], ...]  # (path or line, reason)

    def reasons(self) -> Counter[str]:
        return Counter(reason.split(":")[0] for _, reason in self.skipped)


def _probe(path: Path) -> tuple[int, int, int, float | None, str]:
    """(frames, height, width, fps, type) of a video or image file; raises on a bad file."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        img = read_image(path)
        return 1, int(img.shape[0]), int(img.shape[1]), None, "image"
    info = probe_video(path)
    return info.num_frames, info.height, info.width, info.fps or None, "video"


def build_catalog(
    *, manifest: str | os.PathLike[str] | None = None, video_folder: str | None = None
) -> Catalog:
    """The samples of a manifest or of a folder with caption sidecars, bad ones left out.

    Manifest lines that do not parse, and files that are missing or whose header cannot be read,
    are skipped with a reason (logged with the path). Raises RuntimeError when nothing is left.
    """
    if (manifest is None) == (video_folder is None):
        raise ValueError(
            f"manifest={manifest!r}, video_folder={video_folder!r}: give exactly one data source"
        )
    records: list[ManifestRecord] = []
    skipped: list[tuple[str, str]] = []
    if manifest is not None:
        source = str(manifest)
        if not Path(manifest).is_file():
            raise FileNotFoundError(f"data.manifest={source!r}: no such file")
        raw, invalid = scan_manifest(manifest)
        skipped += [(f"{source}:{line}", f"invalid_record: {why}") for line, why in invalid]
        for rec in raw:
            path = resolve_path(manifest, rec).resolve()
            if not path.is_file():
                skipped.append((str(path), "missing: file does not exist"))
                continue
            try:
                _probe(path)
            except _LOAD_ERRORS as e:
                skipped.append((str(path), f"unreadable: {e}"))
                continue
            records.append(replace(rec, path=str(path)))
    else:
        source = str(video_folder)
        root = Path(video_folder)  # type: ignore[arg-type]
        if not root.is_dir():
            raise FileNotFoundError(f"data.video_folder={source!r}: no such folder")
        # the project's one suffix list; dot-files and *.partial.* outputs of atomic writers
        # (an interrupted write) are left out
        files = collect_media(root, images=True, recursive=True, parameter="data.video_folder")
        for path in files:
            sidecar = path.with_suffix(".txt")
            if not sidecar.is_file():
                skipped.append((str(path), f"no_caption: {sidecar.name} is missing"))
                continue
            try:
                frames, height, width, fps, kind = _probe(path)
                caption = sidecar.read_text(encoding="utf-8").strip()
                records.append(
                    ManifestRecord(
                        path=str(path.resolve()),
                        caption=caption,
                        type=kind,
                        frames=frames,
                        height=height,
                        width=width,
                        fps=fps if kind == "video" else None,
                    )
                )
            except _LOAD_ERRORS as e:
                skipped.append((str(path), f"unreadable: {e}"))
    for path, reason in skipped:
        logger.warning("data: skipping %s (%s)", path, reason)
    if not records:
        counts = dict(Counter(reason.split(":")[0] for _, reason in skipped))
        first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise RuntimeError(
            f"no usable training sample in {source!r}: {len(skipped)} skipped {counts}{first}"
        )
    return Catalog(source, tuple(records), tuple(skipped))


# ---------------------------------------------------------------------------------- loading
def _resampled_indices(num_frames: int, src_fps: float | None, dst_fps: float | None, n: int):
    """``n`` frame indices from frame 0 at ``dst_fps`` (consecutive when either rate is unknown)."""
    if src_fps is None or dst_fps is None or src_fps <= 0:
        step = 1.0
    else:
        step = src_fps / dst_fps
    return [min(num_frames - 1, math.floor(k * step + 1e-6)) for k in range(n)]


def load_clip(record: ManifestRecord, shape: TrainShape, *, fps: float | None) -> torch.Tensor:
    """Pixels ``[3, F, H, W]`` in [-1, 1] at the training shape (see the module docstring)."""
    path = Path(record.path)
    if record.type == "image" or path.suffix.lower() in IMAGE_SUFFIXES:
        frames = read_image(path)[None]  # [1, H, W, 3]
    else:
        n_stored = probe_video(path).num_frames
        idx = _resampled_indices(n_stored, record.fps, fps, shape.frames)
        frames = read_video(path, frame_indices=idx).frames  # [F, H, W, 3]
    if frames.shape[0] < shape.frames:
        raise VideoReadError(
            f"{path}: decoded {frames.shape[0]} frames, the training shape needs {shape.frames}"
        )
    x = frames_to_tensor(np.ascontiguousarray(frames[: shape.frames]))  # [3, F, H0, W0]
    _, _, h0, w0 = x.shape
    th, tw = shape.height, shape.width
    scale = max(th / h0, tw / w0)
    rh, rw = max(th, round(h0 * scale)), max(tw, round(w0 * scale))
    if (rh, rw) != (h0, w0):
        x = F.interpolate(
            x.permute(1, 0, 2, 3),
            size=(rh, rw),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        ).permute(1, 0, 2, 3)  # [3, F, rh, rw]
    top, left = (rh - th) // 2, (rw - tw) // 2
    return x[:, :, top : top + th, left : left + tw].clamp(-1.0, 1.0).contiguous()


def sample_key(record: ManifestRecord, shape: TrainShape, fps: float | None, image: bool) -> str:
    """Identity of one encoded sample: the file (path, size, mtime), caption and training shape."""
    st = Path(record.path).stat()
    ident = json.dumps(
        [
            record.path,
            st.st_size,
            st.st_mtime_ns,
            record.caption,
            shape.frames,
            shape.height,
            shape.width,
            fps,
            image,
        ]
    )
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


class ClipDataset(Dataset):
    """Index -> ``{"latents" [T, C, h, w], "text_embeds" [L, D], "index", "image"?}`` or a
    ``SkippedSample`` (bad file; logged with its path).

    ``shapes[i]`` is the sample's training shape (None when the planner leaves it out).
    Encodes with ``encoders`` on the fly, or reads ``cache`` when given.
    """

    def __init__(
        self,
        records: Sequence[ManifestRecord],
        shapes: Sequence[TrainShape | None],
        *,
        fps: float | None,
        encoders: FrozenEncoders | None = None,
        cache: LatentCache | None = None,
        keys: Sequence[str] | None = None,
        with_image: bool = False,
    ) -> None:
        if encoders is None and cache is None:
            raise ValueError("ClipDataset needs encoders or a cache")
        self.records = tuple(records)
        self.shapes = tuple(shapes)
        self.fps = fps
        self.encoders = encoders
        self.cache = cache
        self.keys = tuple(keys) if keys is not None else None
        self.with_image = with_image
        self.bad: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.records)

    def encode(self, i: int) -> CachedSample:
        """Load and encode sample ``i`` (raises on a bad file)."""
        record, shape = self.records[i], self.shapes[i]
        if shape is None:
            raise ValueError(f"{record.path}: the planner gave this sample no training shape")
        assert self.encoders is not None
        pixels = load_clip(record, shape, fps=self.fps)
        seed = int(sample_key(record, shape, self.fps, self.with_image)[:12], 16)
        latents = self.encoders.encode_video(pixels, seed=seed)
        text = self.encoders.encode_text(record.caption)
        image = pixels[:, :1].clone() if self.with_image else None
        return CachedSample(latents, text, image)

    def __getitem__(self, i: int) -> Mapping[str, Any] | SkippedSample:
        try:
            if self.cache is not None and self.keys is not None and self.keys[i] in self.cache:
                sample = self.cache.load(self.keys[i])
            elif (
                self.cache is not None
                and self.keys is not None
                and (reason := self.cache.bad_reason(self.keys[i]))
            ):
                raise VideoReadError(reason)
            else:
                sample = self.encode(i)
        except _LOAD_ERRORS as e:
            reason = str(e)
            if i not in self.bad:
                logger.warning("data: skipping %s (%s)", self.records[i].path, reason)
            self.bad[i] = reason
            if len(self.bad) == len(self.records):
                raise RuntimeError(
                    f"every one of the {len(self.records)} training samples failed to load; "
                    f"last: {self.records[i].path}: {reason}"
                ) from e
            return SkippedSample(i, f"{self.records[i].path}: {reason}")
        item: dict[str, Any] = {
            "latents": sample.latents,
            "text_embeds": sample.text_embeds,
            "index": i,
        }
        if self.with_image:
            if sample.image is None:
                return SkippedSample(i, f"{self.records[i].path}: cached without the first frame")
            item["image"] = sample.image
        return item


# ---------------------------------------------------------------------------------- batches
class TrainBatch:
    """One rank's step: the frame pack, first frames (I2V), the unconditional text embedding.

    A plain class (not a dataclass or mapping) so Lightning's collection utilities leave it
    alone; the module moves it with :meth:`to`. ``packed`` is None when the dataset skipped
    every sample of the pack.
    """

    def __init__(
        self,
        packed: PackedBatch | None,
        uncond: torch.Tensor,
        images: list[torch.Tensor] | None = None,
        skipped: tuple[SkippedSample, ...] = (),
    ) -> None:
        self.packed = packed
        self.uncond = uncond
        self.images = images
        self.skipped = skipped

    def to(self, device: torch.device | str) -> TrainBatch:
        return TrainBatch(
            self.packed.to(device) if self.packed is not None else None,
            self.uncond.to(device),
            [im.to(device) for im in self.images] if self.images is not None else None,
            self.skipped,
        )

    def __repr__(self) -> str:
        n = 0 if self.packed is None else self.packed.num_samples
        return f"TrainBatch(samples={n}, skipped={len(self.skipped)})"


class TrainCollator:
    """``collate_fn``: dataset items of one pack -> :class:`TrainBatch`."""

    def __init__(self, geometry: ModelGeometry, uncond: torch.Tensor, *, with_image: bool = False):
        self.pack = PackCollator(geometry)
        self.uncond = uncond
        self.with_image = with_image

    def __call__(self, items: Sequence[Mapping[str, Any] | SkippedSample]) -> TrainBatch:
        skipped = tuple(x for x in items if isinstance(x, SkippedSample))
        good = [x for x in items if not isinstance(x, SkippedSample)]
        if not good:
            return TrainBatch(None, self.uncond, None, skipped)
        packed = self.pack(good)
        images = [x["image"] for x in good] if self.with_image else None
        return TrainBatch(replace(packed, skipped=skipped), self.uncond, images, skipped)


class _EpochBatches(Sampler[list[int]]):
    """A :class:`FramePackSampler` whose length is the whole epoch even when resumed mid-epoch
    (Lightning counts the restored batches of the epoch against the loader's length)."""

    def __init__(self, sampler: FramePackSampler) -> None:
        self.sampler = sampler

    def __len__(self) -> int:
        return self.sampler.plan().steps

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


# ---------------------------------------------------------------------------------- module
class VideoDataModule(L.LightningDataModule):
    """Frame-pack batches of encoded clips for :class:`cogvx.train.DiTModule`.

    Args:
        manifest: a ``cogvx.videoio`` data manifest (JSON Lines) -- or --
        video_folder: a folder of videos / images, each with a ``<stem>.txt`` caption.
        model_folder: a diffusers-layout folder whose ``vae/``, ``text_encoder/`` and
            ``tokenizer/`` are the frozen encoders; the three ``*_folder`` arguments override
            single components (or replace ``model_folder``).
        short_side, max_area, max_frames, fps, upscale: the resolution stage
            (``cogvx.framepack.ResolutionStage``; ``fps`` None keeps the stored frame rate).
        patch_size, patch_size_t, max_text_length: the transformer's geometry (its
            ``patch_size``, ``patch_size_t``, ``max_text_seq_length``).
        token_budget: tokens (text + video) per pack, i.e. per rank and step.
        mode, window: ``cogvx.framepack.plan_epoch`` packing mode and window.
        uncond: text-dropout embedding, ``"empty_prompt"`` (T5 of "", diffusers' CFG) or
            ``"zeros"`` (SAT).
        image_conditioning: also deliver the first frame of each clip (I2V training).
        cache_dir: pre-encode every sample once into this cache (see :mod:`cogvx.train.cache`).
        seed: data order seed. num_workers: DataLoader workers (0: load in the main process).
        encode_device: device of the frozen encoders when encoding (``"cpu"``).
    """

    def __init__(
        self,
        manifest: str | None = None,
        video_folder: str | None = None,
        model_folder: str | None = None,
        vae_folder: str | None = None,
        text_encoder_folder: str | None = None,
        tokenizer_folder: str | None = None,
        short_side: int = 256,
        max_area: int | None = None,
        max_frames: int = 49,
        fps: float | None = 8.0,
        upscale: bool = False,
        patch_size: int = 2,
        patch_size_t: int | None = None,
        max_text_length: int = 226,
        token_budget: int = 4096,
        mode: str = "packed",
        window: int | None = None,
        uncond: str = "empty_prompt",
        image_conditioning: bool = False,
        cache_dir: str | None = None,
        seed: int = 0,
        num_workers: int = 0,
        encode_device: str = "cpu",
    ) -> None:
        super().__init__()
        if (manifest is None) == (video_folder is None):
            raise ValueError(
                f"data.manifest={manifest!r}, data.video_folder={video_folder!r}: give exactly "
                "one of them"
            )
        if mode not in ("packed", "bucketed"):
            raise ValueError(f"data.mode={mode!r}: expected 'packed' or 'bucketed'")
        if uncond not in ("empty_prompt", "zeros"):
            raise ValueError(f"data.uncond={uncond!r}: expected 'empty_prompt' or 'zeros'")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"data.num_workers={num_workers!r}: expected an int >= 0")
        folders = {}
        for name, override in (
            ("vae", vae_folder),
            ("text_encoder", text_encoder_folder),
            ("tokenizer", tokenizer_folder),
        ):
            if override is not None:
                folders[name] = Path(override)
            elif model_folder is not None:
                folders[name] = Path(model_folder) / name
            else:
                raise ValueError(
                    f"data.{name}_folder=None and data.model_folder=None: the frozen {name} is "
                    "needed (give a model folder or the component folder)"
                )
        self.folders = folders
        self.manifest = manifest
        self.video_folder = video_folder
        self.stage = ResolutionStage(
            short_side=short_side,
            max_area=max_area,
            max_frames=max_frames,
            fps=fps,
            upscale=upscale,
        )
        self.fps = fps
        self.patch_size = patch_size
        self.patch_size_t = patch_size_t
        self.max_text_length = max_text_length
        self.token_budget = token_budget
        self.mode = mode
        self.window = window
        self.uncond_kind = uncond
        self.image_conditioning = bool(image_conditioning)
        self.cache_dir = cache_dir
        self.seed = seed
        self.num_workers = num_workers
        self.encode_device = encode_device
        self.catalog: Catalog | None = None
        self.geometry: ModelGeometry | None = None
        self.train_shapes: tuple[TrainShape | None, ...] = ()
        self.dataset: ClipDataset | None = None
        self.sampler: FramePackSampler | None = None
        self._encoders: FrozenEncoders | None = None
        self._pending_state: dict[str, Any] | None = None
        self._uncond: torch.Tensor | None = None

    # ------------------------------------------------------------------ pieces
    def _geometry(self) -> ModelGeometry:
        cfg_path = self.folders["vae"] / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"VAE config not found: {cfg_path}")
        cfg = json.loads(cfg_path.read_text())
        spatial = 2 ** (len(cfg.get("block_out_channels", (128, 256, 256, 512))) - 1)
        return ModelGeometry(
            temporal_compression=int(cfg.get("temporal_compression_ratio", 4)),
            spatial_compression=spatial,
            patch_size=self.patch_size,
            patch_size_t=self.patch_size_t,
            text_tokens=self.max_text_length,
        )

    def encoders(self) -> FrozenEncoders:
        """The frozen VAE + T5 (loaded once)."""
        if self._encoders is None:
            self._encoders = FrozenEncoders.from_folders(
                vae_folder=self.folders["vae"],
                text_encoder_folder=self.folders["text_encoder"],
                tokenizer_folder=self.folders["tokenizer"],
                max_text_length=self.max_text_length,
                uncond=self.uncond_kind,
                device=self.encode_device,
            )
        return self._encoders

    def _shapes(self, catalog: Catalog, geometry: ModelGeometry) -> tuple[TrainShape | None, ...]:
        out: list[TrainShape | None] = []
        for r in catalog.records:
            try:
                out.append(
                    assign_train_shape(
                        SampleShape(r.frames, r.height, r.width, r.fps), self.stage, geometry
                    )
                )
            except UnfitSample:
                out.append(None)  # the planner reports it
        return tuple(out)

    def _keys(self) -> list[str]:
        assert self.catalog is not None
        return [
            sample_key(r, s, self.fps, self.image_conditioning) if s is not None else ""
            for r, s in zip(self.catalog.records, self.train_shapes)
        ]

    def _prepare_catalog(self) -> None:
        if self.catalog is None:
            self.catalog = build_catalog(manifest=self.manifest, video_folder=self.video_folder)
            self.geometry = self._geometry()
            self.train_shapes = self._shapes(self.catalog, self.geometry)

    # ------------------------------------------------------------------ Lightning hooks
    def prepare_data(self) -> None:
        """With ``cache_dir``: pre-encode every sample not cached yet (local rank 0 only)."""
        if self.cache_dir is None:
            return
        self._prepare_catalog()
        enc = self.encoders()
        cache = LatentCache(self.cache_dir, enc.fingerprint)
        keys = self._keys()
        dataset = ClipDataset(
            self.catalog.records,
            self.train_shapes,
            fps=self.fps,
            encoders=enc,  # type: ignore[union-attr]
            with_image=self.image_conditioning,
        )
        by_key = {k: i for i, k in enumerate(keys) if k}
        done, bad = cache.build(
            [k for k in keys if k],
            lambda k: dataset.encode(by_key[k]),
            uncond=enc.unconditional,
            errors=_LOAD_ERRORS,
        )
        usable = sum(1 for k in keys if k and k in cache)
        logger.info(
            "cache %s: %d encoded now, %d bad now, %d usable", cache.folder, done, bad, usable
        )
        if usable == 0:
            raise RuntimeError(
                f"no usable training sample in {self.catalog.source!r}: every sample failed to "  # type: ignore[union-attr]
                f"encode (see the warnings above; cache {cache.folder})"
            )

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        self._prepare_catalog()
        assert self.catalog is not None
        if self.cache_dir is not None:
            fingerprint = self.encoders().fingerprint
            cache = LatentCache(self.cache_dir, fingerprint)
            keys = self._keys()
            missing = cache.missing(k for k in keys if k)
            if missing:
                raise RuntimeError(
                    f"cache {cache.folder} lacks {len(missing)} samples: prepare_data() has not "
                    "built it (call dm.prepare_data() before dm.setup())"
                )
            self.dataset = ClipDataset(
                self.catalog.records,
                self.train_shapes,
                fps=self.fps,
                cache=cache,
                keys=keys,
                with_image=self.image_conditioning,
            )
            uncond = cache.unconditional()
            self._uncond = uncond if uncond is not None else self.encoders().unconditional()
        else:
            enc = self.encoders()
            self.dataset = ClipDataset(
                self.catalog.records,
                self.train_shapes,
                fps=self.fps,
                encoders=enc,
                with_image=self.image_conditioning,
            )
            self._uncond = enc.unconditional()

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.global_rank, trainer.world_size
        return 0, 1

    def sample_groups(self) -> list[list[int]] | None:
        """Catalog indices that must train in the same step, in this order (paired objectives:
        ``FramePackSampler(groups=...)``); None (here) when samples are independent."""
        return None

    def make_sampler(self, rank: int, world_size: int) -> FramePackSampler:
        """The frame-pack batch sampler of ``rank`` (all ranks plan the same epoch)."""
        assert self.catalog is not None and self.geometry is not None
        shapes = [SampleShape(r.frames, r.height, r.width, r.fps) for r in self.catalog.records]
        return FramePackSampler(
            shapes,
            stage=self.stage,
            geometry=self.geometry,
            token_budget=self.token_budget,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            mode=self.mode,  # type: ignore[arg-type]
            window=self.window,
            groups=self.sample_groups(),
        )

    def train_dataloader(self) -> DataLoader:
        if self.dataset is None:
            self.setup("fit")
        rank, world = self._rank_world()
        self.sampler = self.make_sampler(rank, world)
        report = self.sampler.plan().report
        logger.info("frame packs: %s", report.summary())
        if self.sampler.groups is not None:  # the plan (and its report) is over the groups
            g = self.sampler.groups
            logger.info("frame packs planned over %d groups of %d samples", len(g), len(g[0]))
        if self._pending_state is not None:
            self.sampler.load_state_dict(self._pending_state)
            self._pending_state = None
        assert self.geometry is not None and self._uncond is not None
        return DataLoader(
            self.dataset,  # type: ignore[arg-type]
            batch_sampler=_EpochBatches(self.sampler),
            collate_fn=TrainCollator(
                self.geometry, self._uncond, with_image=self.image_conditioning
            ),
            num_workers=self.num_workers,
            # Its own generator: the loader's base seed never comes from the global RNG.
            generator=torch.Generator().manual_seed(self.seed),
            persistent_workers=False,
        )

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """The sampler position: epoch and the steps of it the training loop has finished."""
        if self.sampler is None:
            return {}
        trainer = getattr(self, "trainer", None)
        consumed = None
        if trainer is not None:
            consumed = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"sampler": self.sampler.state_dict(consumed_steps=consumed)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Applied when the next train dataloader is built (Lightning restores before that)."""
        if "sampler" in state:
            self._pending_state = dict(state["sampler"])
            if self.sampler is not None:
                self.sampler.load_state_dict(self._pending_state)
                self._pending_state = None
