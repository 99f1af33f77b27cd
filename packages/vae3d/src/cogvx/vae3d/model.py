"""Layers of the CogVideoX 3D causal VAE, read top-down: causal conv, norms, resnet, resampling.

Each layer matches a class of the reference (diffusers 0.42.1,
`models/autoencoders/autoencoder_kl_cogvideox.py`, `models/downsampling.py`,
`models/upsampling.py`) and keeps its parameter names, so a diffusers state dict loads as is.
docs/vae.md describes the behaviour matched.

Two code paths compute the same function:

- the *plain* path (used whenever autograd is recording) is written out-of-place and is the
  readable reference;
- the *fused* path (used under `torch.no_grad()` / inference mode) writes each normalisation +
  SiLU straight into the causally padded input buffer of the next convolution, folds the
  GroupNorm affine and the SpatialNorm3D modulation into one multiply-add, and computes the
  SpatialNorm3D 1x1x1 convs at latent resolution (a pointwise conv commutes with nearest
  upsampling). This saves one or two full-size activations per layer and several memory passes.
  `tests/test_streaming.py` compares the two paths.
- the *fast kernels* (`RuntimeOptions.fast_kernels`, off by default; `CacheStep.fast`) keep the
  activations channels-last (NDHWC) and run the causal 3x3x3 convs as temporal-Winograd 2D convs
  and the upsampling convs in sub-pixel form (`cogvx.vae3d.kernels`); under autograd only the
  causal conv changes (it is differentiable). `tests/test_fast_path.py` compares fast and
  reference kernels, outputs and gradients.

Streaming state ("conv cache"): every causal conv with a temporal kernel > 1 needs the last
`k_t - 1` input frames of the previous chunk. `CacheStep` carries the caches of the previous
chunk (`prev`, None for the first chunk of a clip) and collects the new ones (`new`), keyed by
the conv's module path. The first chunk of a clip is also where the reference's first-frame
special cases apply (see `Downsample3D`, `Upsample3D`, `SpatialNorm3D`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cogvx.modelio import (
    find_weights,
    load_checked,
    read_state_dict,
    resolve_model_folder,
    write_config,
    write_state_dict,
)

from .config import CONFIG_NAME, VAEConfig
from .kernels import causal_conv3d_winograd, channels_last, upsample2x_conv
from .streaming import Tiling, blend_edge_, chunk_bounds, plan_axis

__all__ = [
    "CacheStep",
    "CausalConv3d",
    "CausalVAE3D",
    "Decoder3D",
    "DiagonalGaussian",
    "Downsample3D",
    "Encoder3D",
    "GroupNorm3D",
    "ResnetBlock3D",
    "RuntimeOptions",
    "SpatialNorm3D",
    "Upsample3D",
]

CausalCache = dict[str, Tensor]  # conv module path -> its last k_t-1 input frames


def _fused_ok(*tensors: Tensor) -> bool:
    """The fused in-place path is used only where autograd is not recording."""
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def _conv3d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: tuple[int, int, int] = (1, 1, 1),
    padding: tuple[int, int, int] = (0, 0, 0),
) -> Tensor:
    """F.conv3d, routed to oneDNN for CPU inference.

    - fp32: PyTorch picks the oneDNN (mkldnn) kernel only when N*C*T*H > 20480 and otherwise
      falls back to `slow_conv3d` (im2col + GEMM), 2-6x slower here; small tiles,
      latent-resolution layers and test-size models hit that fallback.
    - bf16 / fp16: on CPUs without oneDNN's low-precision conv support (this machine), PyTorch
      runs `slow_conv3d` in bf16, which is 5-20x slower than fp32. Here the conv runs in fp32
      on a few output frames at a time (bounded fp32 temporaries) and is rounded once to the
      input dtype (fp32 accumulation, like a native bf16 kernel).
    Same convolution, different kernel: `tests/test_streaming.py` compares against F.conv3d.
    """
    if (
        x.device.type != "cpu"
        or not torch.backends.mkldnn.is_available()
        or not _fused_ok(x, weight)
    ):
        return F.conv3d(x, weight, bias, stride=stride, padding=padding)

    # A channels-last input stays channels-last (oneDNN then reads it without reorders).
    fmt = (
        torch.channels_last_3d
        if x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous()
        else torch.contiguous_format
    )

    def onednn(inp: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return torch.ops.aten.mkldnn_convolution(
            inp.contiguous(memory_format=fmt), w, b, list(padding), list(stride), [1, 1, 1], 1
        )

    if x.dtype == torch.float32:
        return onednn(x, weight.contiguous(memory_format=fmt), bias)
    if x.dtype not in (torch.bfloat16, torch.float16) or stride[0] != 1:
        return F.conv3d(x, weight, bias, stride=stride, padding=padding)
    w32 = weight.float().contiguous()
    b32 = None if bias is None else bias.float()
    kt = weight.shape[2]
    t_out = x.shape[2] - kt + 1
    first = onednn(x[:, :, :kt].float(), w32, b32)  # one output frame, gives the output shape
    out = x.new_empty(first.shape[0], first.shape[1], t_out, *first.shape[3:])
    out[:, :, :1] = first
    step = 2  # output frames per fp32 slice
    for a in range(1, t_out, step):
        b_ = min(a + step, t_out)
        out[:, :, a:b_] = onednn(x[:, :, a : b_ + kt - 1].float(), w32, b32)
    return out


@dataclass
class CacheStep:
    """The causal conv caches for one time chunk.

    `prev` maps a conv's module path to the last `k_t - 1` frames of the input it saw in the
    previous chunk ([B, C, k_t-1, H, W]); `None` means this chunk starts the clip. `new` collects
    the caches this chunk leaves for the next one (returned to the caller). `fast` selects the
    fast kernels (`RuntimeOptions.fast_kernels`) for this chunk; off, every layer runs its
    reference code.
    """

    prev: Mapping[str, Tensor] | None
    new: dict[str, Tensor] = field(default_factory=dict)
    fast: bool = False

    @property
    def first(self) -> bool:
        return self.prev is None


# ---------------------------------------------------------------------------------------------
# Causal convolution
# ---------------------------------------------------------------------------------------------


# Frames x pixels per call below which the temporal Winograd conv is not used: its weight
# transform is per call and costs as much as the whole conv on small inputs (official-width
# decode, 512 channels at 3x8x8: 0.17-0.28 s against 0.08-0.10 s direct; at 256 channels and
# 5x16x16 it is already 0.8x the direct conv; benchmarks/results/vae3d.md).
_WINOGRAD_MIN_PIXELS = 1024


class CausalConv3d(nn.Module):
    """3D conv, causal in time (`CogVideoXCausalConv3d`, SAT `ContextParallelCausalConv3d`).

    Time is padded with `k_t - 1` frames in front only: copies of the first frame at the start of
    a clip ("first" pad mode), otherwise the cached last `k_t - 1` input frames of the previous
    chunk. H and W are zero-padded by `k // 2` inside the conv. Stride 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.time_pad = kernel_size - 1
        self.conv = nn.Conv3d(
            in_channels, out_channels, kernel_size, padding=(0, kernel_size // 2, kernel_size // 2)
        )
        self.cache_key = ""  # module path, set by the model so caches are addressable by name

    def new_input(self, like: Tensor, frames: int | None = None) -> tuple[Tensor, Tensor]:
        """An uninitialised padded input buffer and its body view (where the input goes).

        buffer: [B, C_in, k_t-1 + T, H, W]; body = buffer[:, :, k_t-1:] ([B, C_in, T, H, W]).
        """
        b, _, t, h, w = like.shape
        t = t if frames is None else frames
        buf = like.new_empty(b, self.conv.in_channels, self.time_pad + t, h, w)
        return buf, buf[:, :, self.time_pad :]

    def forward_padded(self, buf: Tensor, step: CacheStep) -> Tensor:
        """Convolve a buffer from `new_input` whose body has been filled in."""
        p = self.time_pad
        if p:
            front = buf[:, :, :p]
            cached = None if step.prev is None else step.prev.get(self.cache_key)
            if cached is None:
                if not step.first:
                    raise KeyError(f"causal conv cache has no entry for {self.cache_key!r}")
                front.copy_(buf[:, :, p : p + 1].expand_as(front))
            else:
                if cached.shape != front.shape:
                    raise ValueError(
                        f"causal conv cache for {self.cache_key!r} has shape {tuple(cached.shape)}; "
                        f"this chunk needs {tuple(front.shape)}"
                    )
                front.copy_(cached)
            step.new[self.cache_key] = buf[:, :, -p:].clone()
        return _conv3d(buf, self.conv.weight, self.conv.bias, padding=self.conv.padding)

    def forward(self, x: Tensor, step: CacheStep) -> Tensor:
        """x [B, C_in, T, H, W] -> [B, C_out, T, H, W]; records this conv's cache in `step.new`."""
        if not self.time_pad:
            return _conv3d(x, self.conv.weight, self.conv.bias, padding=self.conv.padding)
        if (
            step.fast
            and self.time_pad == 2
            and x.dtype == torch.float32
            and x.shape[2] * x.shape[3] * x.shape[4] >= _WINOGRAD_MIN_PIXELS
        ):
            return self._forward_winograd(x, step)
        if not _fused_ok(x, self.conv.weight):
            # Plain, differentiable path: concatenate the front padding.
            cached = None if step.prev is None else step.prev.get(self.cache_key)
            front = x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1) if cached is None else cached
            padded = torch.cat([front, x], dim=2)
            step.new[self.cache_key] = padded[:, :, -self.time_pad :].detach().clone()
            return self.conv(padded)
        buf, body = self.new_input(x)
        body.copy_(x)
        return self.forward_padded(buf, step)

    def _forward_winograd(self, x: Tensor, step: CacheStep) -> Tensor:
        """Fast kernel: the front frames (cache, or the first frame replicated) are passed
        beside x to `causal_conv3d_winograd`; no padded input is built."""
        p = self.time_pad
        cached = None if step.prev is None else step.prev.get(self.cache_key)
        if cached is None:
            if not step.first:
                raise KeyError(f"causal conv cache has no entry for {self.cache_key!r}")
            front = x[:, :, :1].expand(-1, -1, p, -1, -1)  # a view: no copies of frame 0
        else:
            want = (*x.shape[:2], p, *x.shape[3:])
            if tuple(cached.shape) != want:
                raise ValueError(
                    f"causal conv cache for {self.cache_key!r} has shape {tuple(cached.shape)}; "
                    f"this chunk needs {want}"
                )
            front = cached
        # The cache for the next chunk: the last p frames of [front; x].
        tail = x[:, :, -p:] if x.shape[2] >= p else torch.cat([front[:, :, x.shape[2] :], x], 2)
        step.new[self.cache_key] = tail.detach().clone()
        return causal_conv3d_winograd(x, front, self.conv.weight, self.conv.bias)


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------


def _group_stats(x: Tensor, groups: int, eps: float) -> tuple[Tensor, Tensor]:
    """Per-(batch, group) mean and 1/std of x [B, C, ...] in float32: ([B, G], [B, G])."""
    b, c = x.shape[:2]
    if x.dtype == torch.float32 and x.ndim == 5 and not x.is_contiguous():
        # Channels-last: reduce the physical [B, T*H*W, G, C/G] view (no NCDHW copy).
        xl = x.permute(0, 2, 3, 4, 1).reshape(b, -1, groups, c // groups)
        var, mean = torch.var_mean(xl, dim=(1, 3), correction=0)
        return mean, torch.rsqrt(var + eps)
    xg = x.reshape(b, groups, -1)  # [B, G, C/G * T*H*W]
    if x.dtype == torch.float32:
        var, mean = torch.var_mean(xg, dim=-1, correction=0)
    else:
        # Low-precision input: statistics in float32 one group at a time (no full fp32 copy).
        var = x.new_empty((b, groups), dtype=torch.float32)
        mean = torch.empty_like(var)
        for g in range(groups):
            v, m = torch.var_mean(xg[:, g].float(), dim=-1, correction=0)
            var[:, g], mean[:, g] = v, m
    return mean, torch.rsqrt(var + eps)


def _channel_affine(
    x: Tensor, groups: int, eps: float, weight: Tensor, bias: Tensor
) -> tuple[Tensor, Tensor]:
    """GroupNorm folded into y = x * a + c: a, c of shape [B, C] (float32)."""
    c = x.shape[1]
    mean, rstd = _group_stats(x, groups, eps)
    a = rstd.repeat_interleave(c // groups, dim=1) * weight.float()  # [B, C]
    shift = bias.float() - mean.repeat_interleave(c // groups, dim=1) * a
    return a, shift


class GroupNorm3D(nn.GroupNorm):
    """GroupNorm over (C/G, T, H, W) of a chunk; the fused path writes into a given buffer."""

    def forward(self, x: Tensor, out: Tensor | None = None) -> Tensor:  # type: ignore[override]
        if out is None or not _fused_ok(x, self.weight):
            y = F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
            return y if out is None else out.copy_(y)
        a, shift = _channel_affine(x, self.num_groups, self.eps, self.weight, self.bias)
        view = (*a.shape, 1, 1, 1)  # [B, C, 1, 1, 1]
        return torch.addcmul(shift.to(x.dtype).view(view), x, a.to(x.dtype).view(view), out=out)


def _split_nearest(big: Tensor, small: Tensor) -> tuple[Tensor, Tensor]:
    """Views of big [B,C,T,H,W] and small [B,C,t,h,w] that broadcast as nearest upsampling.

    T, H, W must be integer multiples of t, h, w: big -> [B,C,t,T/t,h,H/h,w,W/w] and
    small -> [B,C,t,1,h,1,w,1].
    """
    b, c, t_big, h_big, w_big = big.shape
    t, h, w = small.shape[2:]
    if t_big % t or h_big % h or w_big % w:
        raise ValueError(
            f"cannot upsample {tuple(small.shape)} to {tuple(big.shape)} by integer factors"
        )
    big_v = big.view(b, c, t, t_big // t, h, h_big // h, w, w_big // w)
    small_v = small.reshape(small.shape[0], small.shape[1], t, 1, h, 1, w, 1)
    return big_v, small_v


def _time_segments(f: Tensor, zq: Tensor, first: bool) -> list[tuple[Tensor, Tensor]]:
    """Pairs (f part, zq part) that map by nearest upsampling.

    At the start of a clip the first frame maps to the first latent frame on its own and the
    rest maps to the rest (the reference splits frame 0 when T is odd; docs/vae.md §Upsampling).
    """
    if first and f.shape[2] > 1 and zq.shape[2] > 1:
        return [(f[:, :, :1], zq[:, :, :1]), (f[:, :, 1:], zq[:, :, 1:])]
    return [(f, zq)]


class SpatialNorm3D(nn.Module):
    """GroupNorm(f) * conv_y(zq) + conv_b(zq), zq nearest-resized to f (`CogVideoXSpatialNorm3D`).

    Decoder only; zq is the decoder's latent input. conv_y / conv_b are 1x1x1 causal convs
    (no temporal padding). The GroupNorm eps is 1e-6 as hard-coded by the reference.
    """

    def __init__(self, f_channels: int, zq_channels: int, groups: int) -> None:
        super().__init__()
        self.norm_layer = nn.GroupNorm(groups, f_channels, eps=1e-6)
        self.conv_y = CausalConv3d(zq_channels, f_channels, kernel_size=1)
        self.conv_b = CausalConv3d(zq_channels, f_channels, kernel_size=1)

    def forward(self, f: Tensor, zq: Tensor, *, first: bool, out: Tensor | None = None) -> Tensor:
        """f [B, C, T, H, W], zq [B, C_z, t, h, w] -> [B, C, T, H, W] (into `out` when given)."""
        # A pointwise conv commutes with nearest upsampling: apply it at latent resolution.
        y = self.conv_y(zq, CacheStep(None))  # [B, C, t, h, w] (1x1x1: no cache)
        b = self.conv_b(zq, CacheStep(None))
        norm = self.norm_layer
        if out is None or not _fused_ok(f, norm.weight, y):
            h = F.group_norm(f, norm.num_groups, norm.weight, norm.bias, norm.eps)
            parts = []
            for (f_part, y_part), (_, b_part) in zip(
                _time_segments(h, y, first), _time_segments(h, b, first)
            ):
                h_v, y_v = _split_nearest(f_part, y_part)
                _, b_v = _split_nearest(f_part, b_part)
                parts.append((h_v * y_v + b_v).view(f_part.shape))
            result = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
            return result if out is None else out.copy_(result)
        # Fused: out = f * (a*y) + ((c)*y + b) with GroupNorm folded into (a, c) per channel.
        a, c = _channel_affine(f, norm.num_groups, norm.eps, norm.weight, norm.bias)
        a, c = a[:, :, None, None, None], c[:, :, None, None, None]  # [B, C, 1, 1, 1]
        scale = (y.float() * a).to(f.dtype)  # [B, C, t, h, w]
        shift = torch.addcmul(b.float(), y.float(), c).to(f.dtype)
        for (f_part, s_part), (o_part, t_part) in zip(
            _time_segments(f, scale, first), _time_segments(out, shift, first)
        ):
            f_v, s_v = _split_nearest(f_part, s_part)
            o_v, t_v = _split_nearest(o_part, t_part)
            torch.addcmul(t_v, f_v, s_v, out=o_v)
        return out


# ---------------------------------------------------------------------------------------------
# Resnet block
# ---------------------------------------------------------------------------------------------


class ResnetBlock3D(nn.Module):
    """norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, plus a (1x1x1 conv) shortcut.

    `CogVideoXResnetBlock3D` with temb_channels=0 and dropout 0 (the released configs).
    Norms are GroupNorm in the encoder and SpatialNorm3D (conditioned on zq) in the decoder.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        groups: int,
        eps: float,
        zq_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1: GroupNorm3D | SpatialNorm3D
        self.norm2: GroupNorm3D | SpatialNorm3D
        if zq_channels is None:
            self.norm1 = GroupNorm3D(groups, in_channels, eps=eps)
            self.norm2 = GroupNorm3D(groups, out_channels, eps=eps)
        else:
            self.norm1 = SpatialNorm3D(in_channels, zq_channels, groups)
            self.norm2 = SpatialNorm3D(out_channels, zq_channels, groups)
        self.conv1 = CausalConv3d(in_channels, out_channels)
        self.conv2 = CausalConv3d(out_channels, out_channels)
        self.conv_shortcut = (
            nn.Conv3d(in_channels, out_channels, kernel_size=1)
            if in_channels != out_channels
            else None
        )

    def _norm(self, norm: nn.Module, x: Tensor, zq: Tensor | None, first: bool, out=None) -> Tensor:
        if isinstance(norm, SpatialNorm3D):
            assert zq is not None
            return norm(x, zq, first=first, out=out)
        return norm(x, out=out)

    def forward(self, x: Tensor, step: CacheStep, zq: Tensor | None = None) -> Tensor:
        """x [B, C_in, T, H, W] -> [B, C_out, T, H, W]."""
        if not _fused_ok(x, self.conv1.conv.weight):
            h = F.silu(self._norm(self.norm1, x, zq, step.first))
            h = self.conv1(h, step)
            h = F.silu(self._norm(self.norm2, h, zq, step.first))
            h = self.conv2(h, step)
            shortcut = x if self.conv_shortcut is None else self.conv_shortcut(x)
            return h + shortcut
        if step.fast and x.dtype == torch.float32:
            return self._forward_fast(x, step, zq)
        # Fused: each norm + SiLU is written straight into the next conv's padded buffer.
        buf, body = self.conv1.new_input(x)
        F.silu(self._norm(self.norm1, x, zq, step.first, out=body), inplace=True)
        h = self.conv1.forward_padded(buf, step)
        del buf, body
        buf, body = self.conv2.new_input(h)
        F.silu(self._norm(self.norm2, h, zq, step.first, out=body), inplace=True)
        del h
        h = self.conv2.forward_padded(buf, step)
        del buf, body
        sc = self.conv_shortcut
        return h.add_(x if sc is None else _conv3d(x, sc.weight, sc.bias))

    def _forward_fast(self, x: Tensor, step: CacheStep, zq: Tensor | None) -> Tensor:
        """Inference with the fast kernels on channels-last activations: norm + SiLU into a
        fresh NDHWC tensor, Winograd causal convs, and the 1x1x1 shortcut as one in-place GEMM
        into the output (no shortcut tensor)."""
        x = channels_last(x)
        h = torch.empty_like(x)
        F.silu(self._norm(self.norm1, x, zq, step.first, out=h), inplace=True)
        h = self.conv1(h, step)
        h2 = torch.empty_like(h)
        F.silu(self._norm(self.norm2, h, zq, step.first, out=h2), inplace=True)
        del h
        out = channels_last(self.conv2(h2, step))
        del h2
        sc = self.conv_shortcut
        if sc is None:
            return out.add_(x)
        flat = out.permute(0, 2, 3, 4, 1).view(-1, self.out_channels)  # [B*T*H*W, C_out]
        x_flat = x.permute(0, 2, 3, 4, 1).view(-1, self.in_channels)  # [B*T*H*W, C_in]
        flat.addmm_(x_flat, sc.weight.view(self.out_channels, self.in_channels).t())
        flat.add_(sc.bias)
        return out


# ---------------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------------


class Downsample3D(nn.Module):
    """Optional 2x time average, then a stride-2 3x3 conv per frame (`CogVideoXDownsample3D`).

    Time (when `compress_time`): at the start of a clip frame 0 is kept and the remaining frames
    are averaged in pairs (T -> 1 + (T-1)/2); in later chunks all frames are paired (T -> T/2).
    Space: zero pad 1 on the right and bottom, then Conv2d(k=3, stride=2, pad=0) per frame,
    here as a (1, 3, 3) Conv3d on the weight [C, C, 3, 3] (no layout permutes).
    """

    def __init__(self, channels: int, *, compress_time: bool) -> None:
        super().__init__()
        self.compress_time = compress_time
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: Tensor, *, first: bool, step_fast: bool = False) -> Tensor:
        """x [B, C, T, H, W] -> [B, C, T', H/2, W/2]; `step_fast`: the fast kernels (NDHWC
        buffer and one 2D conv over all frames)."""
        b, c, t, h, w = x.shape
        keep = 1 if first else 0  # frames copied through at the start of a clip
        if self.compress_time and (t - keep) % 2:
            raise ValueError(
                f"Downsample3D: a {'first' if first else 'later'} chunk needs "
                f"{'an odd' if first else 'an even'} frame count here, got {t}"
            )
        t_out = keep + (t - keep) // 2 if self.compress_time else t
        fast = step_fast and x.dtype == torch.float32 and _fused_ok(x, self.conv.weight)
        if fast:
            x = channels_last(x)
        if not _fused_ok(x, self.conv.weight):
            if self.compress_time:
                rest = x[:, :, keep:]
                pairs = (rest[:, :, 0::2] + rest[:, :, 1::2]) * 0.5
                x = torch.cat([x[:, :, :keep], pairs], dim=2)
            x = F.pad(x, (0, 1, 0, 1))
        else:
            # Average (or copy) straight into the right/bottom zero-padded buffer.
            buf = (
                x.new_empty(b, t_out, h + 1, w + 1, c).permute(0, 4, 1, 2, 3)  # NDHWC memory
                if fast
                else x.new_empty(b, c, t_out, h + 1, w + 1)
            )
            buf[..., h, :].zero_()
            buf[..., :h, w].zero_()
            body = buf[..., :h, :w]
            if self.compress_time:
                body[:, :, :keep].copy_(x[:, :, :keep])
                rest = x[:, :, keep:]
                torch.add(rest[:, :, 0::2], rest[:, :, 1::2], out=body[:, :, keep:]).mul_(0.5)
            else:
                body.copy_(x)
            x = buf
        if fast:
            # [B, C, T', H+1, W+1] -> frames [B*T', C, H+1, W+1] (a view of the NDHWC buffer)
            frames = x.permute(0, 2, 1, 3, 4).reshape(b * t_out, c, h + 1, w + 1)
            y = F.conv2d(
                frames,
                self.conv.weight.contiguous(memory_format=torch.channels_last),
                self.conv.bias,
                stride=2,
            )  # [B*T', C, H/2, W/2], channels-last
            return y.view(b, t_out, *y.shape[1:]).permute(0, 2, 1, 3, 4)
        weight = self.conv.weight.unsqueeze(2)  # [C, C, 1, 3, 3]
        return _conv3d(x, weight, self.conv.bias, stride=(1, 2, 2))


class Upsample3D(nn.Module):
    """Nearest 2x upsampling (time too when `compress_time`), then a 3x3 conv per frame.

    `CogVideoXUpsample3D`. With `compress_time`, at the start of a clip frame 0 is upsampled in
    space only and the rest in time and space (T -> 1 + 2(T-1)); in later chunks every frame
    is doubled (T -> 2T). The reference decides by "T odd" instead of "first chunk"; the two
    agree for the reference's own chunking (see the package README).
    """

    def __init__(self, channels: int, *, compress_time: bool) -> None:
        super().__init__()
        self.compress_time = compress_time
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: Tensor, *, first: bool, step_fast: bool = False) -> Tensor:
        """x [B, C, T, H, W] -> [B, C, T', 2H, 2W]; `step_fast`: the sub-pixel kernel
        (`upsample2x_conv`: no upsampled tensor, time-doubled frames convolved once)."""
        b, c, t, h, w = x.shape
        keep = (1 if first else 0) if self.compress_time else t  # frames doubled in space only
        keep = min(keep, t)
        if step_fast and x.dtype == torch.float32 and _fused_ok(x, self.conv.weight):
            return upsample2x_conv(channels_last(x), self.conv.weight, self.conv.bias, keep=keep)
        rest = t - keep
        up = x.new_empty(b, c, keep + 2 * rest, 2 * h, 2 * w)
        if keep:
            # [B, C, keep, H, W] -> [B, C, keep, H, 2, W, 2] (broadcast copy = nearest 2x)
            up[:, :, :keep].view(b, c, keep, h, 2, w, 2).copy_(
                x[:, :, :keep].reshape(b, c, keep, h, 1, w, 1).expand(-1, -1, -1, -1, 2, -1, 2)
            )
        if rest:
            # [B, C, rest, H, W] -> [B, C, rest, 2, H, 2, W, 2]
            up[:, :, keep:].view(b, c, rest, 2, h, 2, w, 2).copy_(
                x[:, :, keep:]
                .reshape(b, c, rest, 1, h, 1, w, 1)
                .expand(-1, -1, -1, 2, -1, 2, -1, 2)
            )
        weight = self.conv.weight.unsqueeze(2)  # [C, C, 1, 3, 3]
        return _conv3d(up, weight, self.conv.bias, padding=(0, 1, 1))


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------


class DownBlock3D(nn.Module):
    """`CogVideoXDownBlock3D`: resnets, then an optional Downsample3D (`downsamplers.0`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_layers: int,
        groups: int,
        eps: float,
        add_downsample: bool,
        compress_time: bool,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock3D(
                in_channels if i == 0 else out_channels, out_channels, groups=groups, eps=eps
            )
            for i in range(num_layers)
        )
        self.downsamplers = (
            nn.ModuleList([Downsample3D(out_channels, compress_time=compress_time)])
            if add_downsample
            else None
        )

    def forward(self, x: Tensor, step: CacheStep) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x, step)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x, first=step.first, step_fast=step.fast)
        return x


class MidBlock3D(nn.Module):
    """`CogVideoXMidBlock3D`: two resnets at the lowest resolution (`mid_block.resnets.{0,1}`)."""

    def __init__(
        self, channels: int, *, groups: int, eps: float, zq_channels: int | None = None
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock3D(channels, channels, groups=groups, eps=eps, zq_channels=zq_channels)
            for _ in range(2)
        )

    def forward(self, x: Tensor, step: CacheStep, zq: Tensor | None = None) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x, step, zq)
        return x


class UpBlock3D(nn.Module):
    """`CogVideoXUpBlock3D`: SpatialNorm3D resnets, then an optional Upsample3D (`upsamplers.0`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_layers: int,
        groups: int,
        eps: float,
        zq_channels: int,
        add_upsample: bool,
        compress_time: bool,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock3D(
                in_channels if i == 0 else out_channels,
                out_channels,
                groups=groups,
                eps=eps,
                zq_channels=zq_channels,
            )
            for i in range(num_layers)
        )
        self.upsamplers = (
            nn.ModuleList([Upsample3D(out_channels, compress_time=compress_time)])
            if add_upsample
            else None
        )

    def forward(self, x: Tensor, step: CacheStep, zq: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x, step, zq)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, first=step.first, step_fast=step.fast)
        return x


# ---------------------------------------------------------------------------------------------
# Encoder and decoder
# ---------------------------------------------------------------------------------------------


class Encoder3D(nn.Module):
    """`CogVideoXEncoder3D` (docs/vae.md §Encoder): video [B,3,F,H,W] -> moments [B, 2*C_lat, F', H/8, W/8].

    conv_in -> down_blocks (the first log2(temporal ratio) levels also halve time; the last
    level has no downsampler) -> mid_block -> GroupNorm(eps 1e-6) -> SiLU -> conv_out.
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        ch = config.block_out_channels
        groups, eps = config.norm_num_groups, config.norm_eps
        self.conv_in = CausalConv3d(config.in_channels, ch[0])
        self.down_blocks = nn.ModuleList(
            DownBlock3D(
                ch[max(i - 1, 0)],
                ch[i],
                num_layers=config.layers_per_block,
                groups=groups,
                eps=eps,
                add_downsample=i < len(ch) - 1,
                compress_time=i < config.temporal_levels,
            )
            for i in range(len(ch))
        )
        self.mid_block = MidBlock3D(ch[-1], groups=groups, eps=eps)
        self.norm_out = GroupNorm3D(groups, ch[-1], eps=1e-6)
        self.conv_out = CausalConv3d(ch[-1], 2 * config.latent_channels)

    def forward(self, x: Tensor, step: CacheStep) -> Tensor:
        fast = step.fast and _fused_ok(x, self.conv_in.conv.weight)
        h = self.conv_in(channels_last(x) if fast else x, step)
        for block in self.down_blocks:
            h = block(h, step)
        h = self.mid_block(h, step)
        if not _fused_ok(h, self.conv_out.conv.weight):
            return self.conv_out(F.silu(self.norm_out(h)), step)
        if fast:
            h2 = torch.empty_like(h)
            F.silu(self.norm_out(h, out=h2), inplace=True)
            del h
            return self.conv_out(h2, step)
        buf, body = self.conv_out.new_input(h)
        F.silu(self.norm_out(h, out=body), inplace=True)
        del h
        return self.conv_out.forward_padded(buf, step)


class Decoder3D(nn.Module):
    """`CogVideoXDecoder3D` (docs/vae.md §Decoder): latents [B, C_lat, t, h, w] -> video [B, 3, T, 8h, 8w].

    conv_in -> mid_block -> up_blocks (channels reversed, layers_per_block + 1 resnets, the first
    log2(temporal ratio) levels also double time) -> SpatialNorm3D -> SiLU -> conv_out. Every
    norm is a SpatialNorm3D conditioned on the decoder input zq.
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        ch = tuple(reversed(config.block_out_channels))
        groups, eps, zq = config.norm_num_groups, config.norm_eps, config.latent_channels
        self.conv_in = CausalConv3d(zq, ch[0])
        self.mid_block = MidBlock3D(ch[0], groups=groups, eps=eps, zq_channels=zq)
        self.up_blocks = nn.ModuleList(
            UpBlock3D(
                ch[max(i - 1, 0)],
                ch[i],
                num_layers=config.layers_per_block + 1,
                groups=groups,
                eps=eps,
                zq_channels=zq,
                add_upsample=i < len(ch) - 1,
                compress_time=i < config.temporal_levels,
            )
            for i in range(len(ch))
        )
        self.norm_out = SpatialNorm3D(ch[-1], zq, groups)
        self.conv_out = CausalConv3d(ch[-1], config.out_channels)

    def forward(self, z: Tensor, step: CacheStep) -> Tensor:
        fast = step.fast and _fused_ok(z, self.conv_in.conv.weight)
        if fast:
            z = channels_last(z)
        h = self.conv_in(z, step)
        h = self.mid_block(h, step, z)
        for block in self.up_blocks:
            h = block(h, step, z)
        if not _fused_ok(h, self.conv_out.conv.weight):
            return self.conv_out(F.silu(self.norm_out(h, z, first=step.first)), step)
        if fast:
            h2 = torch.empty_like(h)
            F.silu(self.norm_out(h, z, first=step.first, out=h2), inplace=True)
            del h
            return self.conv_out(h2, step)
        buf, body = self.conv_out.new_input(h)
        F.silu(self.norm_out(h, z, first=step.first, out=body), inplace=True)
        del h
        return self.conv_out.forward_padded(buf, step)


# ---------------------------------------------------------------------------------------------
# Posterior
# ---------------------------------------------------------------------------------------------


class DiagonalGaussian:
    """Diagonal Gaussian posterior from the encoder moments (`DiagonalGaussianDistribution`).

    moments [B, 2*C, ...] = [mean; logvar] along dim 1; logvar is clamped to [-30, 20] as in the
    reference. `kl()` and `nll()` sum over every non-batch dim (the reference sums dims 1..3
    only, which for 5D video latents leaves W unsummed; pass `dims` to choose).
    """

    def __init__(self, moments: Tensor) -> None:
        self.moments = moments
        self.mean, logvar = torch.chunk(moments, 2, dim=1)
        self.logvar = torch.clamp(logvar, -30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def mode(self) -> Tensor:
        """The mean: unscaled latents [B, C, t, h, w]."""
        return self.mean

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """mean + std * eps with eps ~ N(0, I) drawn like diffusers' `randn_tensor`."""
        device = self.mean.device
        rand_device = device
        if generator is not None and generator.device.type != device.type:
            if generator.device.type != "cpu":
                raise ValueError(
                    f"generator is on {generator.device}; use a CPU generator or one on {device}"
                )
            rand_device = torch.device("cpu")
        eps = torch.randn(
            self.mean.shape, generator=generator, device=rand_device, dtype=self.mean.dtype
        )
        return self.mean + self.std * eps.to(device)

    def _dims(self, dims: tuple[int, ...] | None) -> tuple[int, ...]:
        return tuple(range(1, self.mean.ndim)) if dims is None else tuple(dims)

    def kl(
        self, other: DiagonalGaussian | None = None, dims: tuple[int, ...] | None = None
    ) -> Tensor:
        """KL(self || other), other defaulting to N(0, I); one value per batch item."""
        d = self._dims(dims)
        if other is None:
            return 0.5 * torch.sum(self.mean.pow(2) + self.var - 1.0 - self.logvar, dim=d)
        return 0.5 * torch.sum(
            (self.mean - other.mean).pow(2) / other.var
            + self.var / other.var
            - 1.0
            - self.logvar
            + other.logvar,
            dim=d,
        )

    def nll(self, sample: Tensor, dims: tuple[int, ...] | None = None) -> Tensor:
        """Negative log-likelihood of `sample`; one value per batch item."""
        return 0.5 * torch.sum(
            math.log(2.0 * math.pi) + self.logvar + (sample - self.mean).pow(2) / self.var,
            dim=self._dims(dims),
        )


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()  # "take the value from the active RuntimeOptions"


@dataclass(frozen=True)
class RuntimeOptions:
    """Memory/runtime switches of encode/decode (never saved in the config).

    encode_frames: video frames per encode chunk (None: whole clip); a multiple of the temporal
        compression (4). Reference default 8.
    decode_latent_frames: latent frames per decode chunk (None: whole clip). Reference default 2.
    tiling: spatial tiling (`Tiling`), True for the reference's default tiles, None/False: off.
    batch_chunk: batch items per pass (None: whole batch; 1 is the reference's `enable_slicing`).
    fast_kernels: channels-last activations, temporal-Winograd causal convs and sub-pixel
        upsampling convs (`cogvx.vae3d.kernels`; fp32 and autograd: only the causal conv). Same
        function as the reference kernels up to rounding order; False runs the reference
        kernels (`tests/test_fast_path.py` compares the two). Off by default: on the
        official-width 9x128x128 case they take 0.73x (decode) / 0.89x (encode) of the
        reference kernels' CPU time (BENCHMARKS.md), but they are measured on that width only.
    """

    encode_frames: int | None = 8
    decode_latent_frames: int | None = 2
    tiling: Tiling | bool | None = None
    batch_chunk: int | None = None
    fast_kernels: bool = False


Progress = Callable[[int, int], None]  # (steps done, steps total)


def _check_tensor(name: str, x: object, *, channels: int, dtype: torch.dtype, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {what}, got {type(x).__name__}")
    if x.ndim != 5:
        raise ValueError(f"{name} must have 5 dims {what}, got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(
            f"{name} has {x.shape[1]} channels (dim 1, shape {tuple(x.shape)}); this VAE needs {channels} "
            f"{what}"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} has dtype {x.dtype}; it must be floating point (use cogvx.videoio.frames_to_tensor "
            "for uint8 frames)"
        )
    if x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the VAE weights are {dtype}; pass {name}.to({dtype})"
        )
    if min(x.shape) == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


#: How far outside [-1, 1] a video value may lie (rounding of resampled or half-precision frames).
RANGE_TOLERANCE = 1e-2


def _check_unit_range(video: Tensor) -> None:
    """The encoder's contract: pixel values in [-1, 1] (diffusers pipelines' `2x - 1` frames)."""
    low, high = torch.aminmax(video)
    low, high = float(low), float(high)
    if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(
            f"video has values in [{low:.4g}, {high:.4g}]; the VAE encodes pixels in [-1, 1] "
            "(map uint8 frames with cogvx.videoio.frames_to_tensor, or 2 * x - 1 for [0, 1])"
        )


class CausalVAE3D(nn.Module):
    """The CogVideoX 3D causal VAE (`AutoencoderKLCogVideoX`, docs/vae.md).

    `encode(video)` -> `DiagonalGaussian` over unscaled latents; `decode(z)` -> video. Both run
    in time chunks with an explicit causal conv cache (exact across chunks except for GroupNorm,
    whose statistics are per chunk as in the reference), optionally in spatial tiles and batch
    slices (`RuntimeOptions`). Parameter names are the diffusers checkpoint keys.
    """

    def __init__(self, config: VAEConfig, *, parts: Sequence[str] = ("encoder", "decoder")) -> None:
        super().__init__()
        bad = sorted(set(parts) - {"encoder", "decoder"})
        if bad or not parts:
            raise ValueError(f"parts={tuple(parts)!r}: choose from ('encoder', 'decoder')")
        self.config = config
        self.parts = tuple(p for p in ("encoder", "decoder") if p in parts)
        lat = config.latent_channels
        self.encoder = Encoder3D(config) if "encoder" in parts else None
        self.decoder = Decoder3D(config) if "decoder" in parts else None
        # The reference sizes these by out_channels (2*3, 3), which cannot run on the 2*C_lat /
        # C_lat channel latents; the released configs disable both. Sized by latent channels here.
        self.quant_conv = (
            nn.Conv3d(2 * lat, 2 * lat, 1)
            if config.use_quant_conv and self.encoder is not None
            else None
        )
        self.post_quant_conv = (
            nn.Conv3d(lat, lat, 1)
            if config.use_post_quant_conv and self.decoder is not None
            else None
        )
        for name, module in self.named_modules():
            if isinstance(module, CausalConv3d):
                module.cache_key = name
        self._options = RuntimeOptions()

    # ------------------------------------------------------------------ properties
    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ runtime options
    @contextmanager
    def runtime(self, **options: object) -> Iterator[RuntimeOptions]:
        """Set default `RuntimeOptions` for encode/decode calls inside the block."""
        previous = self._options
        self._options = replace(previous, **options)  # type: ignore[arg-type]
        try:
            yield self._options
        finally:
            self._options = previous

    @property
    def runtime_options(self) -> RuntimeOptions:
        """The defaults encode/decode use now (set by the methods below or :meth:`runtime`)."""
        return self._options

    def enable_tiling(
        self,
        tile_sample_min_height: int | None = None,
        tile_sample_min_width: int | None = None,
        tile_overlap_factor_height: float | None = None,
        tile_overlap_factor_width: float | None = None,
    ) -> None:
        """Encode/decode in overlapping spatial tiles from now on (diffusers `enable_tiling`).

        Tile size in pixels (None: half the config's sample size) and overlap factors (None: the
        reference's 1/6 and 1/5). Runtime state only: never written to `config.json`.
        """
        defaults = Tiling()
        for name, value in (
            ("tile_overlap_factor_height", tile_overlap_factor_height),
            ("tile_overlap_factor_width", tile_overlap_factor_width),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1
            ):
                raise ValueError(f"{name}={value!r}: expected a number in [0, 1) or None")
        for name, value in (
            ("tile_sample_min_height", tile_sample_min_height),
            ("tile_sample_min_width", tile_sample_min_width),
        ):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < self.config.spatial_compression
            ):
                raise ValueError(
                    f"{name}={value!r}: expected None or an int >= "
                    f"{self.config.spatial_compression} (pixels)"
                )
        tiling = Tiling(
            tile_sample_min_height,
            tile_sample_min_width,
            defaults.overlap_height
            if tile_overlap_factor_height is None
            else float(tile_overlap_factor_height),
            defaults.overlap_width
            if tile_overlap_factor_width is None
            else float(tile_overlap_factor_width),
        )
        self._options = replace(self._options, tiling=tiling)

    def disable_tiling(self) -> None:
        """Encode/decode whole frames again (diffusers `disable_tiling`)."""
        self._options = replace(self._options, tiling=None)

    def enable_slicing(self) -> None:
        """Encode/decode one batch item at a time (diffusers `enable_slicing`: `batch_chunk=1`)."""
        self._options = replace(self._options, batch_chunk=1)

    def disable_slicing(self) -> None:
        """Encode/decode the whole batch at once again (diffusers `disable_slicing`)."""
        self._options = replace(self._options, batch_chunk=None)

    @property
    def use_tiling(self) -> bool:
        """Whether tiling is on by default (diffusers attribute name)."""
        return self._options.tiling not in (None, False)

    @property
    def use_slicing(self) -> bool:
        """Whether slicing is on by default (diffusers attribute name)."""
        return self._options.batch_chunk == 1

    def _resolve(self, name: str, value: object) -> object:
        return getattr(self._options, name) if value is DEFAULT else value

    def _tiling(self, tiling: object) -> Tiling | None:
        if tiling is None or tiling is False:
            return None
        if tiling is True:
            return Tiling()
        if not isinstance(tiling, Tiling):
            raise TypeError(f"tiling must be a Tiling, True, False or None, got {tiling!r}")
        return tiling

    def _tile_latents(self, tiling: Tiling) -> tuple[int, int]:
        s = self.config.spatial_compression
        th = (
            tiling.sample_height
            if tiling.sample_height is not None
            else self.config.sample_height // 2
        )
        tw = (
            tiling.sample_width
            if tiling.sample_width is not None
            else self.config.sample_width // 2
        )
        if th < s or tw < s:
            raise ValueError(f"tile size {th}x{tw} pixels is too small: each side must be >= {s}")
        return th // s, tw // s

    def _require(self, part: str) -> nn.Module:
        module = getattr(self, part)
        if module is None:
            raise RuntimeError(f"this VAE was built with parts={self.parts}; {part} is not loaded")
        return module

    # ------------------------------------------------------------------ single steps
    def encode_step(
        self, video: Tensor, cache: CausalCache | None = None
    ) -> tuple[Tensor, CausalCache]:
        """Encode one time chunk: video [B,3,T,H,W] -> moments [B, 2*C_lat, T', H/8, W/8].

        `cache` is None for the first chunk of a clip (T = 4k+1) and the returned cache for the
        following chunks (T a multiple of 4). Returns (moments, cache for the next chunk).
        """
        encoder = self._require("encoder")
        step = CacheStep(cache, fast=self._options.fast_kernels)
        moments = encoder(video, step)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return moments, step.new

    def decode_step(
        self, z: Tensor, cache: CausalCache | None = None
    ) -> tuple[Tensor, CausalCache]:
        """Decode one chunk of unscaled latents [B, C_lat, t, h, w] -> video [B, 3, T, 8h, 8w].

        T = 4t - 3 for the first chunk of a clip (`cache` None), 4t for later chunks.
        """
        decoder = self._require("decoder")
        step = CacheStep(cache, fast=self._options.fast_kernels)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return decoder(z, step), step.new

    # ------------------------------------------------------------------ chunked / tiled driver
    def _run(
        self,
        fn: Callable[[Tensor, CausalCache | None], tuple[Tensor, CausalCache]],
        x: Tensor,
        *,
        bounds: list[tuple[int, int]],
        out_frames: int,
        out_channels: int,
        in_mult: int,
        out_mult: int,
        tiling: Tiling | None,
        batch_chunk: int | None,
        progress: Progress | None,
    ) -> Tensor:
        """Run `fn` over batch slices x spatial tiles x time chunks; tiles blended in place."""
        b, _, _, h_in, w_in = x.shape
        grid_h, grid_w = h_in // in_mult, w_in // in_mult  # the latent grid
        if tiling is None:
            rows, cols = plan_axis(grid_h, grid_h, 0.0), plan_axis(grid_w, grid_w, 0.0)
        else:
            tile_h, tile_w = self._tile_latents(tiling)
            rows = plan_axis(grid_h, tile_h, tiling.overlap_height)
            cols = plan_axis(grid_w, tile_w, tiling.overlap_width)
        if batch_chunk is not None and batch_chunk < 1:
            raise ValueError(f"batch_chunk must be >= 1 or None, got {batch_chunk}")
        step_b = b if batch_chunk is None else batch_chunk
        out = x.new_empty(b, out_channels, out_frames, grid_h * out_mult, grid_w * out_mult)
        total = -(-b // step_b) * len(rows.starts) * len(cols.starts) * len(bounds)
        done = 0
        single = len(rows.starts) == 1 and len(cols.starts) == 1
        for b0 in range(0, b, step_b):
            xb, ob = x[b0 : b0 + step_b], out[b0 : b0 + step_b]
            bottom: list[Tensor | None] = [None] * len(cols.starts)
            for i, r0 in enumerate(rows.starts):
                right: Tensor | None = None
                last_row = i == len(rows.starts) - 1
                r1 = min(r0 + rows.tile, grid_h)
                for j, c0 in enumerate(cols.starts):
                    last_col = j == len(cols.starts) - 1
                    c1 = min(c0 + cols.tile, grid_w)
                    tile_in = xb[..., r0 * in_mult : r1 * in_mult, c0 * in_mult : c1 * in_mult]
                    tile = (
                        ob
                        if single
                        else ob.new_empty(*ob.shape[:3], (r1 - r0) * out_mult, (c1 - c0) * out_mult)
                    )
                    cache, t_out = None, 0
                    for t0, t1 in bounds:
                        y, cache = fn(tile_in[:, :, t0:t1], cache)
                        tile[:, :, t_out : t_out + y.shape[2]] = y
                        t_out += y.shape[2]
                        del y
                        done += 1
                        if progress is not None:
                            progress(done, total)
                    del cache
                    if t_out != out_frames:  # guards the chunk rules; cannot happen for valid input
                        raise RuntimeError(f"produced {t_out} frames, expected {out_frames}")
                    if single:
                        continue
                    band_h, band_w = rows.overlap * out_mult, cols.overlap * out_mult
                    if i > 0 and bottom[j] is not None:
                        blend_edge_(bottom[j], tile, 3, band_h)
                    if j > 0 and right is not None:
                        blend_edge_(right, tile, 4, band_w)
                    keep_h = tile.shape[3] if last_row else rows.stride * out_mult
                    keep_w = tile.shape[4] if last_col else cols.stride * out_mult
                    bottom[j] = None if last_row else tile[..., keep_h:, :].clone()
                    right = None if last_col else tile[..., :, keep_w:].clone()
                    y0, x0 = r0 * out_mult, c0 * out_mult
                    ob[..., y0 : y0 + keep_h, x0 : x0 + keep_w] = tile[..., :keep_h, :keep_w]
                    del tile
        return out

    # ------------------------------------------------------------------ public encode / decode
    def encode(
        self,
        video: Tensor,
        *,
        frames_per_chunk: int | _Default | None = DEFAULT,
        tiling: Tiling | bool | _Default | None = DEFAULT,
        batch_chunk: int | _Default | None = DEFAULT,
        pad_frames: bool = False,
        pad_spatial: bool = False,
        progress: Progress | None = None,
    ) -> DiagonalGaussian:
        """Encode video [B, 3, F, H, W] in [-1, 1] (F = 4k+1, H and W multiples of 8).

        Returns the posterior over unscaled latents [B, C_lat, (F-1)/4+1, H/8, W/8].
        `pad_frames=True` replicates the last frame up to the next valid F; `pad_spatial=True`
        replicates the bottom row / right column up to multiples of 8 (the latents then describe
        the padded video). Chunking and tiling default to the active `RuntimeOptions`.
        """
        self._require("encoder")
        cfg = self.config
        video = _check_tensor(
            "video",
            video,
            channels=cfg.in_channels,
            dtype=self.dtype,
            what="[B, C, F, H, W] in [-1, 1]",
        )
        _check_unit_range(video)
        _, _, f, h, w = video.shape
        tc, s = cfg.temporal_compression, cfg.spatial_compression
        if (f - 1) % tc:
            valid = f"{f - (f - 1) % tc} or {f - (f - 1) % tc + tc}"
            if not pad_frames:
                raise ValueError(
                    f"video has {f} frames; the VAE needs {tc}k+1 frames (nearest: {valid}); "
                    "pass pad_frames=True to repeat the last frame"
                )
            extra = tc - (f - 1) % tc
            video = torch.cat([video, video[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)
            f += extra
        if h % s or w % s:
            if not pad_spatial:
                raise ValueError(
                    f"video is {h}x{w} (HxW); height and width must be multiples of {s} "
                    f"(e.g. {h - h % s or s}x{w - w % s or s}); pass pad_spatial=True to pad"
                )
            video = F.pad(video.flatten(1, 2), (0, -w % s, 0, -h % s), mode="replicate").view(
                *video.shape[:3], h + (-h % s), w + (-w % s)
            )
        chunk = self._resolve("encode_frames", frames_per_chunk)
        if chunk is not None and (not isinstance(chunk, int) or chunk < tc or chunk % tc):
            raise ValueError(
                f"frames_per_chunk={chunk!r} must be a positive multiple of the temporal compression "
                f"({tc}) or None (whole clip)"
            )
        moments = self._run(
            self.encode_step,
            video,
            bounds=chunk_bounds(f, chunk),
            out_frames=cfg.latent_frames(f),
            out_channels=2 * cfg.latent_channels,
            in_mult=s,
            out_mult=1,
            tiling=self._tiling(self._resolve("tiling", tiling)),
            batch_chunk=self._resolve("batch_chunk", batch_chunk),
            progress=progress,  # type: ignore[arg-type]
        )
        return DiagonalGaussian(moments)

    def decode(
        self,
        z: Tensor,
        *,
        latent_frames_per_chunk: int | _Default | None = DEFAULT,
        tiling: Tiling | bool | _Default | None = DEFAULT,
        batch_chunk: int | _Default | None = DEFAULT,
        progress: Progress | None = None,
    ) -> Tensor:
        """Decode unscaled latents [B, C_lat, t, h, w] -> video [B, 3, 4(t-1)+1, 8h, 8w] in ~[-1, 1].

        Any chunk size works (each chunk after the first yields 4 frames per latent frame).
        """
        self._require("decoder")
        cfg = self.config
        z = _check_tensor(
            "latents",
            z,
            channels=cfg.latent_channels,
            dtype=self.dtype,
            what="[B, C_lat, t, h, w] (unscaled)",
        )
        chunk = self._resolve("decode_latent_frames", latent_frames_per_chunk)
        if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
            raise ValueError(
                f"latent_frames_per_chunk={chunk!r} must be a positive int or None (whole clip)"
            )
        return self._run(
            self.decode_step,
            z,
            bounds=chunk_bounds(z.shape[2], chunk),
            out_frames=cfg.pixel_frames(z.shape[2]),
            out_channels=cfg.out_channels,
            in_mult=1,
            out_mult=cfg.spatial_compression,
            tiling=self._tiling(self._resolve("tiling", tiling)),
            batch_chunk=self._resolve("batch_chunk", batch_chunk),
            progress=progress,  # type: ignore[arg-type]
        )

    def forward(
        self,
        video: Tensor,
        sample_posterior: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Round trip: encode, take the posterior mode (or a sample), decode."""
        posterior = self.encode(video)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        torch_dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
        parts: Sequence[str] = ("encoder", "decoder"),
        variant: str | None = None,
        subfolder: str | None = None,
    ) -> CausalVAE3D:
        """Load a diffusers-layout folder (`config.json` + safetensors, sharded or not).

        As diffusers `ModelMixin.from_pretrained`: `torch_dtype` casts the floating weights
        (stored dtype when None), `subfolder="vae"` selects a pipeline component; a pipeline
        folder without `subfolder` falls back to its `vae/`. `parts=("decoder",)` loads only the
        decoder weights (about 57% of the model), for pipelines that only decode. The model is
        built on the meta device and the checkpoint tensors are assigned, so weights are held in
        memory once. Errors name the file (`cogvx.modelio`).
        """
        if torch_dtype is not None and not isinstance(torch_dtype, torch.dtype):
            raise TypeError(f"torch_dtype={torch_dtype!r}: expected a torch.dtype or None")
        folder = resolve_model_folder(path, subfolder, default_subfolder="vae")
        config = VAEConfig.from_json_file(folder / CONFIG_NAME)
        weights = find_weights(folder, variant)
        with torch.device("meta"):
            model = cls(config, parts=parts)
        prefixes = tuple(f"{p}." for p in model.parts) + tuple(
            f"{n}." for n in ("quant_conv", "post_quant_conv") if getattr(model, n) is not None
        )
        all_prefixes = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
        state = read_state_dict(
            weights,
            dtype=torch_dtype,
            keep=lambda k: k.startswith(prefixes) or not k.startswith(all_prefixes),
        )
        model.load_checked(state, source=str(weights))
        return model.to(device)

    def load_checked(self, state: Mapping[str, Tensor], *, source: str = "state dict") -> None:
        """Strict `load_state_dict` with one readable error for missing, unexpected or mis-shaped
        keys (`cogvx.modelio.load_checked`); works on a model built on the meta device."""
        load_checked(self, state, source=source)

    def save_pretrained(
        self,
        path: str | os.PathLike[str],
        *,
        max_shard_size: int | str | None = None,
        variant: str | None = None,
    ) -> None:
        """Write `config.json` and `diffusion_pytorch_model.safetensors` (sharded above
        `max_shard_size`, with `diffusion_pytorch_model.safetensors.index.json`), atomically."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        write_state_dict(folder, self.state_dict(), max_shard_size=max_shard_size, variant=variant)
        write_config(folder / CONFIG_NAME, self.config.to_dict())
