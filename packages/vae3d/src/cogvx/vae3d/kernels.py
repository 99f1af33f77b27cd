"""Fast CPU convolutions of the 3D causal VAE, on channels-last (NDHWC) activations.

The VAE's cost is its 3x3x3 causal convolutions (docs/vae.md). Two exact reformulations cut their
multiply count and run the remaining work as 2D oneDNN convolutions over frames, which read
NDHWC memory directly (no layout reorders, no im2col scratch):

- `causal_conv3d_winograd`: the temporal kernel of 3 taps by Winograd's minimal filtering
  F(2, 3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks", §4): two
  output frames from four input frames with 4 instead of 6 spatial 2D convolutions (1.5x fewer
  multiply-adds). The causal front frames (cached or replicated first frame) enter only through
  the frame transform, so no padded or concatenated input is built.
- `upsample2x_conv`: nearest 2x upsampling followed by a 3x3 conv equals four 2x2 convs on the
  low-resolution frames, one per output phase ("sub-pixel" form; 2.25x fewer multiply-adds, no
  upsampled tensor); frames that nearest upsampling only duplicates in time are convolved once.

Both are exact up to floating-point rounding order (weight sums; `tests/test_fast_path.py`
compares them against `F.conv3d` in float64). Tensors here are logical [B, C, T, H, W] with
`torch.channels_last_3d` strides; "physical" views are [B, T, H, W, C].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["causal_conv3d_winograd", "channels_last", "upsample2x_conv"]

CL3 = torch.channels_last_3d
CL2 = torch.channels_last

# Output pixels per 2D conv call below which frames are batched (oneDNN needs work per call).
_MIN_PIXELS = 8192


def channels_last(x: Tensor) -> Tensor:
    """x [B, C, T, H, W] with NDHWC strides (a no-op when it already has them)."""
    return x.contiguous(memory_format=CL3)


def _phys(x: Tensor) -> Tensor:
    """Logical [B, C, T, H, W] -> physical view [B, T, H, W, C]."""
    return x.permute(0, 2, 3, 4, 1)


def _conv_frames(
    v: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]
) -> Tensor:
    """2D conv of every frame: v [B, n, H, W, C] (physical) -> [B, n, H', W', C_out] (physical)."""
    b, n = v.shape[:2]
    frames = v.reshape(b * n, *v.shape[2:]).permute(0, 3, 1, 2)  # [B*n, C, H, W], channels-last
    y = F.conv2d(frames, weight, bias, padding=padding)  # [B*n, C_out, H', W'], channels-last
    return y.permute(0, 2, 3, 1).reshape(b, n, *y.shape[2:4], y.shape[1])


def _temporal_winograd_weights(weight: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """G g for F(2, 3) along time: weight [Co, Ci, 3, kh, kw] -> four [Co, Ci, kh, kw] (NHWC)."""
    g0, g1, g2 = weight.unbind(2)
    u = (g0, (g0 + g1 + g2) * 0.5, (g0 - g1 + g2) * 0.5, g2)
    return tuple(t.contiguous(memory_format=CL2) for t in u)  # type: ignore[return-value]


def causal_conv3d_winograd(x: Tensor, front: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The causal conv of `CausalConv3d` on [front; x] without building that concatenation.

    x [B, Ci, T, H, W], front [B, Ci, 2, H, W] (the causal pad: cached or replicated frames),
    weight [Co, Ci, 3, kh, kw] (odd kh, kw; spatial zero padding kh//2, kw//2; stride 1) ->
    [B, Co, T, H, W] with channels-last strides.

    With P = [front; x] (T + 2 frames), output frames 2m and 2m+1 are, for F(2, 3):
        V = (P[2m] - P[2m+2], P[2m+1] + P[2m+2], P[2m+2] - P[2m+1], P[2m+1] - P[2m+3])
        M_j = conv2d(V_j, U_j),  U = (g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2)
        y[2m] = M_0 + M_1 + M_2,  y[2m+1] = M_1 - M_2 - M_3
    An odd last frame is the direct sum of three 2D convs. Differentiable when autograd records
    (then built out of place); otherwise each M_j is accumulated into the output in place, so at
    most one transformed group and one conv result are alive beside the output.
    """
    if weight.shape[2] != 3 or front.shape[2] != 2:
        raise ValueError(
            f"causal_conv3d_winograd needs a temporal kernel of 3 and 2 front frames, got weight "
            f"{tuple(weight.shape)} and front {tuple(front.shape)}"
        )
    b, _, t, h, w = x.shape
    pad = (weight.shape[3] // 2, weight.shape[4] // 2)
    u = _temporal_winograd_weights(weight)
    xp, fp = _phys(x), _phys(front)  # [B, T, H, W, Ci], [B, 2, H, W, Ci]
    grad = torch.is_grad_enabled() and any(
        a is not None and a.requires_grad for a in (x, front, weight, bias)
    )

    def frames(a: int, m0: int, m1: int) -> Tensor:
        """P[2m + a] for m in [m0, m1): [B, m1-m0, H, W, Ci]."""
        f0 = 2 * m0 + a
        if f0 < 2:  # only the first pair reads front frames (one frame each)
            return fp[:, f0 : f0 + 1]
        return xp[:, f0 - 2 : 2 * m1 + a - 2 : 2]

    pairs = t // 2
    per_call = max(1, -(-_MIN_PIXELS // (h * w)))  # pairs per conv call
    groups = [(0, min(1, pairs))] if pairs else []  # pair 0 alone (it reads the front frames)
    groups += [(m, min(m + per_call, pairs)) for m in range(1, pairs, per_call)]
    c_out = weight.shape[0]
    out = None if grad else x.new_empty(b, t, h, w, c_out)  # physical
    pieces: list[Tensor] = []
    for m0, m1 in groups:
        d = [frames(a, m0, m1) for a in range(4)]
        if grad:
            mm = [
                _conv_frames(v, u[j], bias if j == 1 else None, pad)
                for j, v in enumerate((d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]))
            ]
            even, odd = mm[0] + mm[1] + mm[2], mm[1] - mm[2] - mm[3]
            pieces.append(torch.stack([even, odd], dim=2).flatten(1, 2))  # [B, 2n, H, W, Co]
            continue
        assert out is not None
        even, odd = out[:, 2 * m0 : 2 * m1 : 2], out[:, 2 * m0 + 1 : 2 * m1 : 2]
        m = _conv_frames(d[1] + d[2], u[1], bias, pad)
        even.copy_(m)
        odd.copy_(m)
        m = _conv_frames(d[0] - d[2], u[0], None, pad)
        even.add_(m)
        m = _conv_frames(d[2] - d[1], u[2], None, pad)
        even.add_(m)
        odd.sub_(m)
        m = _conv_frames(d[1] - d[3], u[3], None, pad)
        odd.sub_(m)
        del m
    if t % 2:  # the last frame directly: sum_k conv2d(P[t-1+k], g_k)
        src = [frames(a, pairs, pairs + 1) for a in range(3)]  # P[t-1], P[t], P[t+1]
        g = weight.unbind(2)
        last = _conv_frames(src[0], g[0].contiguous(memory_format=CL2), bias, pad)
        last = last + _conv_frames(src[1], g[1].contiguous(memory_format=CL2), None, pad)
        last = last + _conv_frames(src[2], g[2].contiguous(memory_format=CL2), None, pad)
        if grad:
            pieces.append(last)
        else:
            assert out is not None
            out[:, t - 1 : t] = last
    if grad:
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
    assert out is not None
    return out.permute(0, 4, 1, 2, 3)  # [B, Co, T, H, W], channels-last strides


def _subpixel_weights(weight: Tensor) -> list[list[Tensor]]:
    """3x3 kernel on a 2x nearest-upsampled grid -> 2x2 kernels per output phase (r, s).

    Output row 2i+r reads upsampled rows 2i+r-1 .. 2i+r+1, i.e. low-res rows (i-1, i, i) for
    r = 0 and (i, i+1, i+1) for r = 1: taps (k0 | k1+k2) and (k0+k1 | k2). Same for columns.
    """
    k0, k1, k2 = weight.unbind(2)  # rows: [Co, Ci, 3(kw)] each
    rows = (torch.stack([k0, k1 + k2], dim=2), torch.stack([k0 + k1, k2], dim=2))
    out = []
    for r in rows:  # [Co, Ci, 2, 3]
        c0, c1, c2 = r.unbind(3)
        cols = (torch.stack([c0, c1 + c2], dim=3), torch.stack([c0 + c1, c2], dim=3))
        out.append([c.contiguous(memory_format=CL2) for c in cols])
    return out


def upsample2x_conv(x: Tensor, weight: Tensor, bias: Tensor | None, *, keep: int) -> Tensor:
    """conv2d_3x3(nearest_upsample(x)) per frame, as `Upsample3D` computes it, without the
    upsampled tensor.

    x [B, C, T, H, W]; the first `keep` frames are upsampled in space only, the others also
    doubled in time (T_out = keep + 2 (T - keep)); weight [Co, C, 3, 3], padding 1 ->
    [B, Co, T_out, 2H, 2W] with channels-last strides. Inference only (no autograd).
    """
    if weight.shape[2:] != (3, 3):
        raise ValueError(f"upsample2x_conv needs a 3x3 kernel, got weight {tuple(weight.shape)}")
    b, _, t, h, w = x.shape
    c_out = weight.shape[0]
    subs = _subpixel_weights(weight)
    xp = _phys(x)  # [B, T, H, W, C]
    t_out = keep + 2 * (t - keep)
    out = x.new_empty(b, t_out, 2 * h, 2 * w, c_out)  # physical
    per_call = max(1, -(-_MIN_PIXELS // (h * w)))

    def targets(f0: int, f1: int) -> list[Tensor]:
        """Output frames of input frames [f0, f1) (all kept or all doubled)."""
        if f0 < keep:
            return [out[:, f0:f1]]
        o0, o1 = keep + 2 * (f0 - keep), keep + 2 * (f1 - keep)
        return [out[:, o0:o1:2], out[:, o0 + 1 : o1 : 2]]  # each frame twice (nearest in time)

    spans = [(a, min(a + per_call, keep)) for a in range(0, keep, per_call)]
    spans += [(a, min(a + per_call, t)) for a in range(keep, t, per_call)]
    for f0, f1 in spans:
        src = xp[:, f0:f1]
        dst = targets(f0, f1)
        for r in range(2):
            for s in range(2):
                # padding 1 on a 2x2 kernel gives (H+1) x (W+1) outputs; phase (r, s) is the
                # window starting at (r, s) (output i of phase 0 reads rows i-1, i; phase 1 i, i+1).
                m = _conv_frames(src, subs[r][s], bias, (1, 1))[:, :, r : r + h, s : s + w]
                for o in dst:
                    o[:, :, r::2, s::2] = m
    return out.permute(0, 4, 1, 2, 3)
