"""Frozen encoders of the training data and the pre-encoding cache (docs/data.md).

:class:`FrozenEncoders` turns a loaded clip into what the transformer trains on, as the reference
fine-tuning scripts do: VAE latents ``posterior.sample() * scaling_factor`` (``[T, C, h, w]``,
frames first: the transformer layout) and T5 ``last_hidden_state`` of the caption padded to
``max_text_length`` without an attention mask (``[L, D]``). The posterior sample is drawn from a
generator seeded by the sample's key, so re-encoding a sample gives the same latents bit for bit.

:class:`LatentCache` stores those encodings once, in safetensors shards with an ``index.json``:

    <cache_dir>/<encoder fingerprint>/index.json
    <cache_dir>/<encoder fingerprint>/shard-00000.safetensors ...

* keyed by the encoders' fingerprint (configs, weight files, tokenizer, text length) -- another
  VAE or text encoder gets a new folder, i.e. the cache is rebuilt -- and, inside, by each
  sample's key (file identity, caption, training shape), so a changed sample is re-encoded;
* resumable: shards are written one at a time (temporary file + rename) and the index is
  rewritten atomically after each, so an interrupted build keeps every finished shard and a
  rerun encodes only what is missing;
* bad files (unreadable, corrupt, truncated) are recorded in the index with their reason and
  skipped (not retried every epoch).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from cogvx.videoio import atomic_output

__all__ = [
    "CACHE_VERSION",
    "CachedSample",
    "FrozenEncoders",
    "LatentCache",
    "folder_fingerprint",
]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
_INDEX = "index.json"
_UNCOND = "__uncond__"


def folder_fingerprint(folder: str | os.PathLike[str]) -> str:
    """A hash of a model component folder: every file's name and size, small files' content,
    and large files' first and last MiB (weights change there when they change at all)."""
    h = hashlib.sha256()
    root = Path(folder)
    for p in sorted(x for x in root.rglob("*") if x.is_file()):
        rel = p.relative_to(root).as_posix()
        size = p.stat().st_size
        h.update(f"{rel}|{size}|".encode())
        with p.open("rb") as f:
            if size <= 4 << 20:
                h.update(f.read())
            else:
                h.update(f.read(1 << 20))
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read())
    return h.hexdigest()


@dataclass(frozen=True)
class CachedSample:
    """One encoded sample: latents ``[T, C, h, w]`` (scaled), text ``[L, D]``, first frame
    pixels ``[3, 1, H, W]`` (I2V only)."""

    latents: torch.Tensor
    text_embeds: torch.Tensor
    image: torch.Tensor | None = None


class FrozenEncoders:
    """The frozen VAE and text encoder of a training run (never trained, no grad).

    Args:
        vae: a ``cogvx.vae3d.CausalVAE3D`` (its ``config.scaling_factor`` scales the latents).
        text_encoder: a ``cogvx.infer.T5TextEncoder``.
        max_text_length: text rows per sample (the transformer's ``max_text_seq_length``).
        fingerprint: identifies the encoders (see :meth:`from_folders`); part of every cache key.
        uncond: the unconditional text embedding for text dropout: ``"empty_prompt"`` (T5 of
            ``""``, what the diffusers pipelines use for CFG) or ``"zeros"`` (SAT).
    """

    def __init__(
        self,
        vae: torch.nn.Module,
        text_encoder: Any,
        *,
        max_text_length: int,
        fingerprint: str,
        uncond: str = "empty_prompt",
    ) -> None:
        if uncond not in ("empty_prompt", "zeros"):
            raise ValueError(f"uncond={uncond!r}: expected 'empty_prompt' or 'zeros'")
        if not isinstance(max_text_length, int) or max_text_length < 1:
            raise ValueError(f"max_text_length={max_text_length!r}: expected a positive int")
        self.vae = vae.eval().requires_grad_(False)
        self.text_encoder = text_encoder
        text_encoder.model.requires_grad_(False)
        self.max_text_length = max_text_length
        self.uncond = uncond
        self.fingerprint = hashlib.sha256(
            f"v{CACHE_VERSION}|{fingerprint}|L={max_text_length}|uncond={uncond}".encode()
        ).hexdigest()[:20]

    @classmethod
    def from_folders(
        cls,
        *,
        vae_folder: str | os.PathLike[str],
        text_encoder_folder: str | os.PathLike[str],
        tokenizer_folder: str | os.PathLike[str],
        max_text_length: int,
        uncond: str = "empty_prompt",
        device: torch.device | str = "cpu",
    ) -> FrozenEncoders:
        """Load the three components (fp32) from their diffusers-layout folders."""
        from cogvx.infer import T5TextEncoder
        from cogvx.vae3d import CausalVAE3D

        for name, folder in (
            ("vae_folder", vae_folder),
            ("text_encoder_folder", text_encoder_folder),
            ("tokenizer_folder", tokenizer_folder),
        ):
            if not Path(folder).is_dir():
                raise FileNotFoundError(f"{name}={str(folder)!r}: no such folder")
        vae = CausalVAE3D.from_pretrained(vae_folder).to(device=device, dtype=torch.float32)
        text = T5TextEncoder.from_pretrained(
            tokenizer_folder, text_encoder_folder, dtype=torch.float32, device=device
        )
        fp = "|".join(
            folder_fingerprint(f) for f in (vae_folder, text_encoder_folder, tokenizer_folder)
        )
        return cls(vae, text, max_text_length=max_text_length, fingerprint=fp, uncond=uncond)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @torch.no_grad()
    def encode_video(self, pixels: torch.Tensor, *, seed: int) -> torch.Tensor:
        """``pixels [3, F, H, W]`` in [-1, 1] -> scaled latents ``[T, C, h, w]``."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        posterior = self.vae.encode(pixels[None].to(self.device, torch.float32))
        z = posterior.sample(generator=g) * self.scaling_factor  # [1, C, T, h, w]
        return z[0].permute(1, 0, 2, 3).contiguous().cpu()  # [T, C, h, w]

    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        """First frames ``[B, 3, 1, H, W]`` -> scaled latents ``[B, C, 1, h, w]`` (I2V)."""
        posterior = self.vae.encode(pixels.to(self.device, torch.float32))
        return posterior.sample(generator=generator) * self.scaling_factor

    @torch.no_grad()
    def encode_text(self, caption: str) -> torch.Tensor:
        """``[L, D]`` T5 hidden states of the padded caption (no attention mask, as the pipelines)."""
        out = self.text_encoder.encode(
            [caption], max_sequence_length=self.max_text_length, dtype=torch.float32
        )
        return out[0].cpu()

    @torch.no_grad()
    def unconditional(self) -> torch.Tensor:
        """The embedding text dropout substitutes: T5("") or zeros, ``[L, D]``."""
        if self.uncond == "zeros":
            return torch.zeros(self.max_text_length, self.text_encoder.hidden_size)
        return self.encode_text("")


class LatentCache:
    """Encoded samples on disk under ``<root>/<fingerprint>/`` (see the module docstring).

    Args:
        root: the cache folder (shared by runs; one subfolder per encoder fingerprint).
        fingerprint: :attr:`FrozenEncoders.fingerprint`.
        shard_size: samples per shard file.
    """

    def __init__(self, root: str | os.PathLike[str], fingerprint: str, *, shard_size: int = 64):
        if not isinstance(shard_size, int) or shard_size < 1:
            raise ValueError(f"shard_size={shard_size!r}: expected a positive int")
        self.folder = Path(root) / fingerprint
        self.fingerprint = fingerprint
        self.shard_size = shard_size
        self._index = self._read_index()
        self._readers: dict[str, Any] = {}

    # ------------------------------------------------------------------ index
    def _read_index(self) -> dict[str, Any]:
        path = self.folder / _INDEX
        empty = {
            "version": CACHE_VERSION,
            "fingerprint": self.fingerprint,
            "entries": {},
            "bad": {},
        }
        if not path.is_file():
            return empty
        try:
            index = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as e:
            logger.warning("cache index %s is unreadable (%s): rebuilding the cache", path, e)
            return empty
        if index.get("version") != CACHE_VERSION or index.get("fingerprint") != self.fingerprint:
            logger.warning("cache index %s is for other encoders: rebuilding the cache", path)
            return empty
        # Entries whose shard vanished are dropped (re-encoded by the next build).
        entries = {
            k: v for k, v in index["entries"].items() if (self.folder / v["shard"]).is_file()
        }
        return {**index, "entries": entries}

    def _write_index(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.folder / _INDEX) as tmp:
            tmp.write_text(json.dumps(self._index, indent=1, sort_keys=True) + "\n")

    def __contains__(self, key: str) -> bool:
        return key in self._index["entries"]

    @property
    def num_entries(self) -> int:
        return len(self._index["entries"])

    def bad_reason(self, key: str) -> str | None:
        """Why the sample could not be encoded (recorded by :meth:`build`), or None."""
        return self._index["bad"].get(key)

    def missing(self, keys: Iterable[str]) -> list[str]:
        """Keys neither cached nor recorded as bad."""
        return [k for k in keys if k not in self._index["entries"] and k not in self._index["bad"]]

    # ------------------------------------------------------------------ build
    def build(
        self,
        keys: list[str],
        encode: Callable[[str], CachedSample],
        *,
        uncond: Callable[[], torch.Tensor] | None = None,
        errors: tuple[type[BaseException], ...] = (ValueError, OSError),
        progress: bool = True,
    ) -> tuple[int, int]:
        """Encode the missing ``keys`` with ``encode(key)``; returns (newly encoded, newly bad).

        ``encode`` raising one of ``errors`` marks the sample bad (logged with the reason).
        ``uncond`` stores the unconditional text embedding the first time.
        """
        todo = self.missing(keys)
        if uncond is not None and _UNCOND not in self._index["entries"]:
            todo = [_UNCOND, *todo]
        if not todo:
            return 0, 0
        self.folder.mkdir(parents=True, exist_ok=True)
        done = bad = 0
        pending: dict[str, torch.Tensor] = {}
        pending_keys: list[str] = []
        bar = tqdm(todo, desc="pre-encoding", unit="sample", disable=not progress)
        for key in bar:
            if key == _UNCOND:
                assert uncond is not None
                pending[f"{key}.text_embeds"] = uncond().contiguous()
                pending_keys.append(key)
            else:
                try:
                    sample = encode(key)
                except errors as e:
                    self._index["bad"][key] = str(e)
                    logger.warning("skipping a sample that cannot be encoded: %s", e)
                    bad += 1
                    continue
                pending[f"{key}.latents"] = sample.latents.contiguous()
                pending[f"{key}.text_embeds"] = sample.text_embeds.contiguous()
                if sample.image is not None:
                    pending[f"{key}.image"] = sample.image.contiguous()
                pending_keys.append(key)
                done += 1
            if len(pending_keys) >= self.shard_size:
                self._flush(pending, pending_keys)
                pending, pending_keys = {}, []
        if pending_keys:
            self._flush(pending, pending_keys)
        elif bad:
            self._write_index()
        return done, bad

    def _flush(self, tensors: dict[str, torch.Tensor], keys: list[str]) -> None:
        shards = {v["shard"] for v in self._index["entries"].values()}
        n = len(shards)
        while (
            f"shard-{n:05d}.safetensors" in shards
            or (self.folder / f"shard-{n:05d}.safetensors").exists()
        ):
            n += 1
        name = f"shard-{n:05d}.safetensors"
        with atomic_output(self.folder / name) as tmp:
            save_file(tensors, str(tmp), metadata={"fingerprint": self.fingerprint})
        for key in keys:
            self._index["entries"][key] = {"shard": name}
        self._write_index()

    # ------------------------------------------------------------------ read
    def _reader(self, shard: str) -> Any:
        if shard not in self._readers:
            self._readers[shard] = safe_open(str(self.folder / shard), framework="pt")
        return self._readers[shard]

    def load(self, key: str) -> CachedSample:
        """The cached sample ``key`` (KeyError when it is not cached)."""
        entry = self._index["entries"][key]
        f = self._reader(entry["shard"])
        names = set(f.keys())
        image = f.get_tensor(f"{key}.image") if f"{key}.image" in names else None
        return CachedSample(
            f.get_tensor(f"{key}.latents"), f.get_tensor(f"{key}.text_embeds"), image
        )

    def unconditional(self) -> torch.Tensor | None:
        """The stored unconditional text embedding, if any."""
        entry = self._index["entries"].get(_UNCOND)
        if entry is None:
            return None
        return self._reader(entry["shard"]).get_tensor(f"{_UNCOND}.text_embeds")

    def __getstate__(self) -> Mapping[str, Any]:
        # safetensors readers are opened lazily again in DataLoader workers.
        return {**self.__dict__, "_readers": {}}
