"""Planning for bounded-memory VAE runs: time chunks, spatial tiles, and tile blending.

Pure functions over sizes (plus the blend), used by `CausalVAE3D.encode/decode`.

Time chunks follow the reference rule (docs/vae.md §Chunking): `n = max(total // size, 1)` chunks, the first
one takes the remainder, `[0, size + rem)`, then `[size*i + rem, size*(i+1) + rem)`.

Tiles (docs/vae.md §Tiling) are planned on the *latent* grid so that every tile edge falls on a latent
pixel: a tile of `t` latents advances by `s = int(t * (1 - overlap))` latents (at least 1), the
overlap band is `t - s` latents (`8 * (t - s)` pixels), a tile is cropped to `s` (the last one
keeps what is left), and the next tile's first rows are linearly blended with the previous
tile's overlap band. This agrees with the reference whenever the reference is self-consistent
(e.g. its default 240x360 pixel tiles). The reference computes the pixel stride, blend width and
crop separately (`int(240*(1-1/6))`, `int(240/6)`, ...); for other tile sizes they disagree, so it
blends misaligned rows and returns a video of the wrong size (e.g. 128x128 tiles on 192x256
gives 195 rows). It also keeps tiles that are wholly inside the previous one; here they are
skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["AxisTiles", "Tiling", "blend_edge_", "chunk_bounds", "plan_axis"]


def chunk_bounds(total: int, size: int | None) -> list[tuple[int, int]]:
    """Time chunks [(start, end)] over `total` frames, `size` per chunk (None: one chunk).

    The first chunk takes the remainder, as the reference's frame batching does.
    """
    if total < 1:
        raise ValueError(f"chunk_bounds: total must be >= 1 frame, got {total}")
    if size is None or size >= total:
        return [(0, total)]
    if size < 1:
        raise ValueError(f"chunk size must be >= 1 frame, got {size}")
    n, rem = max(total // size, 1), total % size
    return [(0 if i == 0 else size * i + rem, size * (i + 1) + rem) for i in range(n)]


@dataclass(frozen=True)
class AxisTiles:
    """Tiles along one axis of the latent grid: `tile` latents long, starting at `starts`."""

    size: int
    tile: int
    stride: int
    starts: tuple[int, ...]

    @property
    def overlap(self) -> int:
        """Latents shared by neighbouring tiles (0 with a single tile)."""
        return self.tile - self.stride if len(self.starts) > 1 else 0


def plan_axis(size: int, tile: int, overlap: float) -> AxisTiles:
    """Tiles covering `size` latents with `tile`-latent tiles overlapping by `overlap` (0..1)."""
    if tile < 1:
        raise ValueError(f"tile size must be >= 1 latent pixel (8 video pixels), got {tile}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"tile overlap factor must be in [0, 1), got {overlap}")
    stride = max(1, int(tile * (1 - overlap)))
    if size <= tile:
        return AxisTiles(size, tile, stride, (0,))
    # Stop once a tile reaches the end: a further start would lie inside the previous tile.
    return AxisTiles(size, tile, stride, tuple(range(0, size - (tile - stride), stride)))


@dataclass(frozen=True)
class Tiling:
    """Spatial tiling of encode/decode (a runtime option, never saved in the config).

    `sample_height/width`: tile size in video pixels (None: the reference's default, half the
    config's `sample_height/width`); any value >= 8 works (it is floored to a multiple of the
    spatial compression). `overlap_height/width`: the overlap factors (reference 1/6 and 1/5).
    """

    sample_height: int | None = None
    sample_width: int | None = None
    overlap_height: float = 1 / 6
    overlap_width: float = 1 / 5


def blend_edge_(prev_band: Tensor, tile: Tensor, dim: int, extent: int) -> None:
    """Blend the first rows of `tile` along `dim` with the previous tile's overlap band, in place.

    Row y (0 <= y < min(extent, tile rows)) becomes band[y] * (1 - y/extent) + tile[y] * y/extent,
    the reference's `blend_v` / `blend_h` weights, but with the band aligned to the tile.
    """
    n = min(extent, tile.shape[dim], prev_band.shape[dim])
    if n <= 0:
        return
    shape = [1] * tile.ndim
    shape[dim] = n
    ramp = [y / extent for y in range(n)]  # Python floats, as the reference's scalars
    w = torch.tensor(ramp, dtype=tile.dtype, device=tile.device).view(shape)
    w_prev = torch.tensor([1 - r for r in ramp], dtype=tile.dtype, device=tile.device).view(shape)
    head = tile.narrow(dim, 0, n)
    head.copy_(prev_band.narrow(dim, 0, n) * w_prev + head * w)
