"""Collation: several samples into one packed sequence, and back.

The packed sequence is, sample after sample, ``[text_i ; video_i]`` -- the same per-sample order as
the unpacked transformer's joint sequence (docs/transformer.md §Patch embedding) -- so sample ``i`` occupies the rows
``cu_seqlens[i]:cu_seqlens[i+1]``, as flash-attn's variable-length kernels expect.

Video latents are patchified here into tokens of ``C * pt * p * p`` features in ``(c, t, h, w)``
order: that is the order of the 1.0 patch embedding's ``Conv2d`` weight ``[D, C, p, p]`` flattened
and of the 1.5 ``Linear(C*pt*p*p, D)`` (docs/transformer.md §Patch embedding), so the packed forward embeds them with one
matrix product. Tokens are ordered ``(t, h, w)`` row-major within a sample, as in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

from cogvx.expert_dit.geometry import patchify as _patchify
from cogvx.expert_dit.geometry import unpatchify as _unpatchify
from cogvx.framepack.shapes import ModelGeometry

__all__ = [
    "PackCollator",
    "PackedBatch",
    "SkippedSample",
    "patchify",
    "unpack",
    "unpack_video",
    "unpatchify",
]


@dataclass(frozen=True)
class SkippedSample:
    """What a dataset returns instead of a sample it could not load (corrupt file, ...).

    The collator leaves it out of the pack and lists it in ``PackedBatch.skipped``, so a training
    loop can count and log it instead of crashing or silently losing it.
    """

    index: int
    reason: str


def patchify(latents: torch.Tensor, patch_size: int, patch_size_t: int | None = None):
    """Latents ``[T, C, H, W]`` -> tokens ``[N, C*pt*p*p]``, patch grid ``(T'/pt, H/p, W/p)``, pad.

    With temporal patching and ``T % pt != 0``, copies of the first latent frame are prepended
    (``pad`` of them), as the CogVideoX1.5 fine-tuning code does. The token layout is the
    transformer's own (:func:`cogvx.expert_dit.geometry.patchify`).
    """
    if latents.ndim != 4:
        raise ValueError(f"latents must be [T, C, H, W], got shape {tuple(latents.shape)}")
    pt, p = patch_size_t or 1, patch_size
    t, _, h, w = latents.shape
    if h % p or w % p:
        raise ValueError(
            f"latent height and width must be multiples of patch_size={p}, got {h}x{w}"
        )
    pad = (-t) % pt
    if pad:
        latents = torch.cat([latents[:1].expand(pad, -1, -1, -1), latents], dim=0)
    grid = ((t + pad) // pt, h // p, w // p)
    return _patchify(latents[None], p, patch_size_t)[0], grid, pad


def unpatchify(
    tokens: torch.Tensor,
    grid: Sequence[int],
    channels: int,
    patch_size: int,
    patch_size_t: int | None = None,
    pad: int = 0,
) -> torch.Tensor:
    """Inverse of :func:`patchify`: tokens ``[N, C*pt*p*p]`` -> ``[T, C, H, W]`` without the pad."""
    pt, p = patch_size_t or 1, patch_size
    tt, hh, ww = grid
    if tokens.shape != (tt * hh * ww, channels * pt * p * p):
        raise ValueError(
            f"tokens must be [{tt * hh * ww}, {channels * pt * p * p}] for grid {tuple(grid)}, "
            f"channels={channels}, got {tuple(tokens.shape)}"
        )
    return _unpatchify(tokens[None], (tt, hh, ww), p, patch_size_t)[0, pad:]


@dataclass(frozen=True)
class PackedBatch:
    """Several samples in one sequence of ``S = sum(text_i + video_i)`` rows.

    ``latent_tokens [N_video, C*pt*p*p]`` and ``text_embeds [N_text, D_text]`` hold the two
    modalities, sample after sample; ``text_positions`` / ``video_positions`` are their rows in the
    joint sequence; ``sample_ids [S]`` the sample of every row; ``cu_seqlens [n+1]`` (int32) the
    sample boundaries. Per sample: ``text_lengths``, ``grids`` (video token grid ``(t, h, w)``),
    ``latent_shapes`` (``(T, C, H, W)`` before padding) and ``latent_pads``; ``indices`` are the
    dataset indices, ``skipped`` the samples the dataset could not load.
    """

    latent_tokens: torch.Tensor
    text_embeds: torch.Tensor
    text_positions: torch.Tensor
    video_positions: torch.Tensor
    sample_ids: torch.Tensor
    cu_seqlens: torch.Tensor
    text_lengths: tuple[int, ...]
    grids: tuple[tuple[int, int, int], ...]
    latent_shapes: tuple[tuple[int, int, int, int], ...]
    latent_pads: tuple[int, ...]
    patch_size: int
    patch_size_t: int | None
    indices: tuple[int | None, ...]
    skipped: tuple[SkippedSample, ...] = ()

    @property
    def num_samples(self) -> int:
        return len(self.text_lengths)

    @property
    def seq_len(self) -> int:
        return int(self.sample_ids.shape[0])

    @property
    def max_seqlen(self) -> int:
        """Longest sample (text + video), the ``max_seqlen`` of variable-length kernels."""
        return int((self.cu_seqlens[1:] - self.cu_seqlens[:-1]).max())

    def video_lengths(self) -> tuple[int, ...]:
        return tuple(t * h * w for t, h, w in self.grids)

    def attention_mask(self) -> torch.Tensor:
        """Block-diagonal boolean mask ``[S, S]``: True where query and key share a sample."""
        return self.sample_ids[:, None] == self.sample_ids[None, :]

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> PackedBatch:
        """Move every tensor to ``device``; ``dtype`` applies to the float tensors only."""
        changes = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                changes[f.name] = v.to(
                    device=device, dtype=dtype if v.is_floating_point() else None
                )
        return replace(self, **changes)


class PackCollator:
    """``collate_fn`` for a DataLoader driven by :class:`~cogvx.framepack.FramePackSampler`.

    Each dataset item is a mapping with ``latents`` (``[T, C, H, W]``, transformer layout of one
    sample), ``text_embeds`` (``[L, D_text]``) and optionally ``index``; or a
    :class:`SkippedSample`. All samples of a pack must share ``C``, ``D_text``, dtype and device.
    """

    def __init__(self, geometry: ModelGeometry) -> None:
        self.geometry = geometry

    def __call__(self, items: Sequence[Mapping[str, Any] | SkippedSample]) -> PackedBatch:
        return collate_packed(items, self.geometry)


def collate_packed(
    items: Sequence[Mapping[str, Any] | SkippedSample], geometry: ModelGeometry
) -> PackedBatch:
    """Pack dataset items into a :class:`PackedBatch` (see :class:`PackCollator`)."""
    skipped = tuple(x for x in items if isinstance(x, SkippedSample))
    samples = [x for x in items if not isinstance(x, SkippedSample)]
    if not samples:
        raise ValueError(
            f"every sample of this pack was skipped by the dataset: {list(skipped)}; "
            "nothing to train on in this step"
        )
    tokens, texts, text_pos, video_pos, ids = [], [], [], [], []
    text_lengths, grids, shapes, pads, indices = [], [], [], [], []
    offset = 0
    for i, item in enumerate(samples):
        for key in ("latents", "text_embeds"):
            if key not in item:
                raise ValueError(f"dataset item {i} has no {key!r} (keys: {sorted(item)})")
        lat, txt = item["latents"], item["text_embeds"]
        if txt.ndim != 2:
            raise ValueError(f"text_embeds of item {i} must be [L, D], got {tuple(txt.shape)}")
        tok, grid, pad = patchify(lat, geometry.patch_size, geometry.patch_size_t)
        n_text, n_video = txt.shape[0], tok.shape[0]
        tokens.append(tok)
        texts.append(txt)
        text_pos.append(torch.arange(offset, offset + n_text))
        video_pos.append(torch.arange(offset + n_text, offset + n_text + n_video))
        ids.append(torch.full((n_text + n_video,), i, dtype=torch.long))
        offset += n_text + n_video
        text_lengths.append(n_text)
        grids.append(grid)
        shapes.append(tuple(lat.shape))
        pads.append(pad)
        indices.append(item.get("index"))
    for name, parts in (("latents channels", tokens), ("text_embeds width", texts)):
        if len({p.shape[1] for p in parts}) > 1:
            raise ValueError(f"samples in one pack differ in {name}: {[p.shape[1] for p in parts]}")
    lengths = torch.tensor([t + g[0] * g[1] * g[2] for t, g in zip(text_lengths, grids)])
    cu = torch.zeros(len(samples) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(lengths, 0)
    return PackedBatch(
        latent_tokens=torch.cat(tokens),
        text_embeds=torch.cat(texts),
        text_positions=torch.cat(text_pos),
        video_positions=torch.cat(video_pos),
        sample_ids=torch.cat(ids),
        cu_seqlens=cu,
        text_lengths=tuple(text_lengths),
        grids=tuple(grids),
        latent_shapes=tuple(shapes),  # type: ignore[arg-type]
        latent_pads=tuple(pads),
        patch_size=geometry.patch_size,
        patch_size_t=geometry.patch_size_t,
        indices=tuple(indices),
        skipped=skipped,
    )


def unpack_video(tokens: torch.Tensor, batch: PackedBatch, channels: int) -> list[torch.Tensor]:
    """Split packed video tokens (e.g. a model output ``[N_video, C*pt*p*p]``) into per-sample
    latents ``[T, C, H, W]`` with the temporal pad removed."""
    if tokens.shape[0] != batch.latent_tokens.shape[0]:
        raise ValueError(
            f"tokens has {tokens.shape[0]} rows, the batch has {batch.latent_tokens.shape[0]} "
            "video tokens"
        )
    out = []
    for part, grid, pad in zip(
        tokens.split(list(batch.video_lengths())), batch.grids, batch.latent_pads
    ):
        out.append(unpatchify(part, grid, channels, batch.patch_size, batch.patch_size_t, pad))
    return out


def unpack(batch: PackedBatch) -> list[dict[str, torch.Tensor]]:
    """The samples of a batch again: ``[{"latents": [T, C, H, W], "text_embeds": [L, D]}, ...]``."""
    videos = unpack_video(batch.latent_tokens, batch, batch.latent_shapes[0][1])
    texts = batch.text_embeds.split(list(batch.text_lengths))
    return [{"latents": v, "text_embeds": t} for v, t in zip(videos, texts)]
