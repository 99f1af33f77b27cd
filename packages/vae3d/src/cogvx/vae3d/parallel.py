"""Parallel decode of the CogVideoX VAE: horizontal bands of every frame on different ranks.

Each of the ``P`` ranks of a process group decodes one band of ``h / P`` latent rows (``8h / P``
pixel rows) of every frame, through the same time chunks and causal conv cache as
:meth:`CausalVAE3D.decode` (docs/vae.md §Decoder, §Chunking), and the bands are gathered at the
end of each chunk. Two things couple the bands, and both are exchanged so that the result equals
the single-device, untiled decode up to float rounding (not the tiled decode, whose overlapping
tiles have their own statistics):

* **halo rows**: a ``k x k`` convolution needs ``k // 2`` rows above and below its band. Before
  every spatial convolution a rank sends its first/last rows to the rank above/below and receives
  theirs (point-to-point); the bands at the top and bottom of the frame get the zero rows the
  reference pads with. The causal cache is per band (it holds the band's own last input frames,
  whose halo is exchanged again in the next chunk).
* **GroupNorm statistics**: the decoder's norms (``SpatialNorm3D``) normalise over
  ``(C/G, T, H, W)`` of a chunk, i.e. over all bands: each rank all-reduces its per-group sum,
  then its sum of squared deviations from the global mean (the two-pass variance).

Nearest upsampling and the 1x1x1 convolutions of ``SpatialNorm3D`` are per pixel, so they need
nothing (band boundaries stay aligned: every level's band height is the latent band times a power
of two). This is the plain, autograd-free form of the decoder layers of :mod:`cogvx.vae3d.model`,
written against the same modules and weights; ``tests`` in cogvx-infer compare it with
:meth:`CausalVAE3D.decode` on 2 and 4 ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .model import (
    DEFAULT,
    CacheStep,
    CausalCache,
    CausalConv3d,
    CausalVAE3D,
    Decoder3D,
    ResnetBlock3D,
    SpatialNorm3D,
    Upsample3D,
    _check_tensor,
    _Default,
    _split_nearest,
    _time_segments,
)
from .streaming import chunk_bounds

__all__ = ["BandGroup", "CommRecorder", "parallel_decode"]


class CommRecorder(Protocol):
    """Receives ``(operation, bytes this rank sends)`` for every collective."""

    def record(self, op: str, nbytes: int) -> None: ...


def _nbytes(t: Tensor) -> int:
    return t.numel() * t.element_size()


@dataclass(frozen=True)
class BandGroup:
    """The ranks that decode one video together (``group`` None: the default group); rank ``r``
    holds band ``r`` from the top."""

    group: dist.ProcessGroup | None = None
    recorder: CommRecorder | None = None

    @property
    def size(self) -> int:
        return dist.get_world_size(self.group)

    @property
    def rank(self) -> int:
        return dist.get_rank(self.group)

    def _record(self, op: str, nbytes: int) -> None:
        if self.recorder is not None:
            self.recorder.record(op, nbytes)

    def _peer(self, index: int) -> int:
        return index if self.group is None else dist.get_global_rank(self.group, index)

    def halo(self, x: Tensor, rows: int) -> Tensor:
        """``x [B, C, T, h, W]`` (this band) -> ``[B, C, T, rows + h + rows, W]`` with the
        neighbours' edge rows (zeros at the top and bottom of the frame)."""
        rank, size = self.rank, self.size
        above = x.new_zeros(*x.shape[:3], rows, x.shape[4])
        below = torch.zeros_like(above)
        ops = []
        if rank > 0:
            ops += [
                dist.P2POp(dist.isend, x[..., :rows, :].contiguous(), self._peer(rank - 1)),
                dist.P2POp(dist.irecv, above, self._peer(rank - 1)),
            ]
        if rank < size - 1:
            ops += [
                dist.P2POp(dist.isend, x[..., -rows:, :].contiguous(), self._peer(rank + 1)),
                dist.P2POp(dist.irecv, below, self._peer(rank + 1)),
            ]
        if ops:
            for request in dist.batch_isend_irecv(ops):
                request.wait()
            self._record("halo", _nbytes(above) * (len(ops) // 2))
        return torch.cat([above, x, below], dim=3)

    def all_reduce(self, x: Tensor) -> Tensor:
        """Sum over the ranks (in place, returned)."""
        dist.all_reduce(x, group=self.group)
        self._record("all_reduce", _nbytes(x) * (self.size - 1))
        return x

    def all_gather(self, x: Tensor, dim: int) -> Tensor:
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(self.size)]
        dist.all_gather(parts, x, group=self.group)
        self._record("all_gather", _nbytes(x) * (self.size - 1))
        return torch.cat(parts, dim=dim)


# ------------------------------------------------------------------------------- layers
def _conv(conv: CausalConv3d, x: Tensor, step: CacheStep, band: BandGroup) -> Tensor:
    """:class:`CausalConv3d` on a band: causal time padding from the cache, halo rows in H."""
    p = conv.time_pad
    if p:
        cached = None if step.prev is None else step.prev.get(conv.cache_key)
        if cached is None and not step.first:
            raise KeyError(f"causal conv cache has no entry for {conv.cache_key!r}")
        front = x[:, :, :1].expand(-1, -1, p, -1, -1) if cached is None else cached
        x = torch.cat([front, x], dim=2)  # [B, C, p + T, h, W]
        step.new[conv.cache_key] = x[:, :, -p:].clone()
    rows, cols = int(conv.conv.padding[1]), int(conv.conv.padding[2])  # ints: set by the model
    if rows:
        x = band.halo(x, rows)
    return F.conv3d(x, conv.conv.weight, conv.conv.bias, padding=(0, 0, cols))


def _group_norm(x: Tensor, norm: nn.GroupNorm, band: BandGroup) -> Tensor:
    """GroupNorm over ``(C/G, T, H, W)`` of the whole frame from per-band partial sums."""
    b, c = x.shape[:2]
    groups = norm.num_groups
    xg = x.float().reshape(b, groups, -1)  # [B, G, C/G * T*h*W]
    count = xg.shape[-1] * band.size  # equal bands
    mean = band.all_reduce(xg.sum(dim=-1)) / count  # [B, G]
    centred = xg - mean[..., None]
    var = band.all_reduce(centred.square().sum(dim=-1)) / count  # [B, G]
    y = (centred * torch.rsqrt(var + norm.eps)[..., None]).reshape(x.shape)
    if norm.weight is not None:
        view = (1, c, 1, 1, 1)
        y = y * norm.weight.float().view(view) + norm.bias.float().view(view)
    return y.to(x.dtype)


def _spatial_norm(sn: SpatialNorm3D, f: Tensor, zq: Tensor, first: bool, band: BandGroup) -> Tensor:
    """:class:`SpatialNorm3D`: distributed GroupNorm(f) * conv_y(zq) + conv_b(zq)."""
    y = _conv(sn.conv_y, zq, CacheStep(None), band)  # 1x1x1 at latent resolution: per pixel
    b = _conv(sn.conv_b, zq, CacheStep(None), band)
    h = _group_norm(f, sn.norm_layer, band)
    parts = []
    for (f_part, y_part), (_, b_part) in zip(
        _time_segments(h, y, first), _time_segments(h, b, first)
    ):
        h_v, y_v = _split_nearest(f_part, y_part)
        _, b_v = _split_nearest(f_part, b_part)
        parts.append((h_v * y_v + b_v).view(f_part.shape))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


def _resnet(
    block: ResnetBlock3D, x: Tensor, step: CacheStep, zq: Tensor, band: BandGroup
) -> Tensor:
    norm1, norm2 = block.norm1, block.norm2
    assert isinstance(norm1, SpatialNorm3D) and isinstance(norm2, SpatialNorm3D)  # decoder
    h = _conv(block.conv1, F.silu(_spatial_norm(norm1, x, zq, step.first, band)), step, band)
    h = _conv(block.conv2, F.silu(_spatial_norm(norm2, h, zq, step.first, band)), step, band)
    sc = block.conv_shortcut
    return h + (x if sc is None else F.conv3d(x, sc.weight, sc.bias))


def _upsample(up: Upsample3D, x: Tensor, first: bool, band: BandGroup) -> Tensor:
    """:class:`Upsample3D`: nearest 2x (time too, except frame 0 of a clip) and a 3x3 conv."""
    t = x.shape[2]
    keep = min((1 if first else 0) if up.compress_time else t, t)
    space = x.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)  # [B, C, T, 2h, 2W]
    x = torch.cat([space[:, :, :keep], space[:, :, keep:].repeat_interleave(2, dim=2)], dim=2)
    x = band.halo(x, 1)
    return F.conv3d(x, up.conv.weight.unsqueeze(2), up.conv.bias, padding=(0, 0, 1))


def _decoder(decoder: Decoder3D, z: Tensor, step: CacheStep, band: BandGroup) -> Tensor:
    h = _conv(decoder.conv_in, z, step, band)
    for resnet in decoder.mid_block.resnets:
        h = _resnet(resnet, h, step, z, band)
    for block in decoder.up_blocks:
        for resnet in cast(Iterable[ResnetBlock3D], block.resnets):
            h = _resnet(resnet, h, step, z, band)
        if block.upsamplers is not None:
            upsamplers = cast(Sequence[Upsample3D], block.upsamplers)
            h = _upsample(upsamplers[0], h, step.first, band)
    h = F.silu(_spatial_norm(decoder.norm_out, h, z, step.first, band))
    return _conv(decoder.conv_out, h, step, band)


# ------------------------------------------------------------------------------- driver
def parallel_decode(
    vae: CausalVAE3D,
    z: Tensor,
    *,
    band: BandGroup,
    latent_frames_per_chunk: int | _Default | None = DEFAULT,
    progress: Callable[[int, int], None] | None = None,
) -> Tensor:
    """:meth:`CausalVAE3D.decode` of unscaled latents ``z [B, C_lat, t, h, w]`` on the ranks of
    ``band``: every rank passes the same ``z`` and returns the same whole video
    ``[B, 3, 4(t-1)+1, 8h, 8w]``. ``P = band.size`` must divide ``h``; spatial tiling must be
    off (this is exact to the untiled decode). Chunks as :meth:`CausalVAE3D.decode`."""
    if not isinstance(vae, CausalVAE3D):
        raise TypeError(f"vae must be a CausalVAE3D, got {type(vae).__name__}")
    decoder = vae.decoder
    if decoder is None:
        raise RuntimeError(f"this VAE was built with parts={vae.parts}; decoder is not loaded")
    cfg = vae.config
    z = _check_tensor(
        "latents", z, channels=cfg.latent_channels, dtype=vae.dtype, what="[B, C_lat, t, h, w]"
    )
    if vae.use_tiling:
        raise ValueError(
            "vae.tiling=true: the parallel VAE decode (parallel.vae > 1) is exact to the untiled "
            "decode and splits frames into bands itself; turn tiling off"
        )
    p, r = band.size, band.rank
    h = z.shape[3]
    if h % p:
        valid = [d for d in range(1, h + 1) if h % d == 0]
        raise ValueError(
            f"parallel.vae={p} must divide the latent height h={h} (pixel height "
            f"{h * cfg.spatial_compression}); valid: {valid}"
        )
    chunk = vae._resolve("decode_latent_frames", latent_frames_per_chunk)
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ValueError(
            f"latent_frames_per_chunk={chunk!r} must be a positive int or None (whole clip)"
        )
    rows = h // p
    zb = z[..., r * rows : (r + 1) * rows, :]  # [B, C, t, h/P, w]: this rank's band
    if vae.post_quant_conv is not None:
        zb = vae.post_quant_conv(zb)  # 1x1x1: per pixel
    bounds = chunk_bounds(z.shape[2], chunk)
    s = cfg.spatial_compression
    out = z.new_empty(
        z.shape[0], cfg.out_channels, cfg.pixel_frames(z.shape[2]), h * s, z.shape[4] * s
    )
    cache: CausalCache | None = None
    t_out = 0
    with torch.no_grad():
        for i, (t0, t1) in enumerate(bounds):
            step = CacheStep(cache)
            y = _decoder(decoder, zb[:, :, t0:t1], step, band)  # [B, 3, T, 8h/P, 8w]
            cache = step.new
            frames = y.shape[2]
            out[:, :, t_out : t_out + frames] = band.all_gather(y, dim=3)
            t_out += frames
            if progress is not None:
                progress(i + 1, len(bounds))
    return out
