"""Position tables of the expert transformer: 3D sin-cos (2B) and 3D RoPE (5B, 1.5).

Everything here is a pure function of the token grid ``(frames, height, width)`` after patching
and of the config; :class:`PositionCache` memoises the tables per shape/device/dtype.

- 3D sin-cos (docs/transformer.md §Sin-cos), diffusers ``get_3d_sincos_pos_embed`` / SAT
  ``Basic3DPositionEmbeddingMixin``: per token ``[time D/4 | w 3D/8 | h 3D/8]``, each part
  ``[sin(pos*w_i) | cos(pos*w_i)]`` with ``w_i = 10000^(-i/(n/2))`` in float64, spatial positions
  divided by ``spatial_interpolation_scale`` (1.875), time by ``temporal_interpolation_scale``.
- 3D RoPE (docs/transformer.md §RoPE), diffusers ``get_3d_rotary_pos_embed``: the head dim splits
  ``d/4 | 3d/8 | 3d/8`` over t/h/w; per axis ``freqs = theta^(-arange(0, n, 2)/n)``, angles
  ``pos x freqs``, each cos/sin value repeated twice (adjacent channel pairs). Two position grids:

  * ``linspace`` (1.0, interpolating): the token grid is mapped into the native grid's
    resize-crop box (``get_resize_crop_region_for_grid``), so other resolutions reuse the trained
    position range;
  * ``slice`` (1.5, extrapolating): integer positions ``0..n-1`` on every axis.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from enum import StrEnum

import torch
from torch import Tensor

from .config import DiTConfig
from .geometry import ModelGeometry

__all__ = [
    "PositionCache",
    "RopeGrid",
    "resize_crop_region",
    "rope_3d",
    "rope_tables",
    "sincos_1d",
    "sincos_3d",
    "sincos_table",
    "token_grid",
]

ROPE_THETA = 10000.0


class RopeGrid(StrEnum):
    """How RoPE positions are laid on the token grid (see module docstring)."""

    LINSPACE = "linspace"
    SLICE = "slice"


def parse_rope_grid(grid: RopeGrid | str) -> RopeGrid:
    try:
        return RopeGrid(grid)
    except ValueError:
        valid = ", ".join(repr(g.value) for g in RopeGrid)
        raise ValueError(f"rope_grid must be one of {valid}, got {grid!r}") from None


def token_grid(config: DiTConfig, frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Token grid ``(T, Hp, Wp)`` of a latent video ``[F, C, H, W]`` (F already divisible by pt),
    from the one geometry source :class:`cogvx.expert_dit.geometry.ModelGeometry`."""
    return ModelGeometry.from_config(config).token_grid(frames, height, width)


# --------------------------------------------------------------------------------- 3D sin-cos
def sincos_1d(dim: int, pos: Tensor) -> Tensor:
    """``[sin(pos*w) | cos(pos*w)]`` of width ``dim`` for positions ``pos [M]`` -> ``[M, dim]`` f64."""
    if dim % 2:
        raise ValueError(f"sin-cos width must be even, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # [dim/2]
    angles = torch.outer(pos.reshape(-1).double(), omega)  # [M, dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_3d(
    dim: int,
    frames: int,
    height: int,
    width: int,
    *,
    spatial_scale: float = 1.0,
    temporal_scale: float = 1.0,
    device: torch.device | str | None = None,
) -> Tensor:
    """3D sin-cos table ``[frames * height * width, dim]`` (float64), tokens in (t, h, w) order.

    Channels: ``[time (dim/4) | w (3dim/8) | h (3dim/8)]``. Grid coordinates are computed in
    float32 (``arange / scale``) and the trigonometry in float64, as the reference does.
    """
    if dim % 16:
        raise ValueError(f"3D sin-cos needs a width divisible by 16, got {dim}")
    dim_t, dim_s = dim // 4, 3 * dim // 4
    h_pos = torch.arange(height, dtype=torch.float32, device=device) / spatial_scale
    w_pos = torch.arange(width, dtype=torch.float32, device=device) / spatial_scale
    t_pos = torch.arange(frames, dtype=torch.float32, device=device) / temporal_scale
    emb_w = sincos_1d(dim_s // 2, w_pos)  # [W, 3D/8]
    emb_h = sincos_1d(dim_s // 2, h_pos)  # [H, 3D/8]
    emb_t = sincos_1d(dim_t, t_pos)  # [T, D/4]
    # Broadcast every axis onto the [T, H, W] grid, then flatten (t, h, w) row-major.
    table = torch.cat(
        [
            emb_t[:, None, None, :].expand(frames, height, width, dim_t),
            emb_w[None, None, :, :].expand(frames, height, width, dim_s // 2),
            emb_h[None, :, None, :].expand(frames, height, width, dim_s // 2),
        ],
        dim=-1,
    )  # [T, H, W, D]
    return table.reshape(frames * height * width, dim)


def sincos_table(
    config: DiTConfig,
    frames: int,
    height: int,
    width: int,
    device: torch.device | str | None = None,
) -> Tensor:
    """The 2B table for a token grid ``(frames, height, width)``: ``[N_video, D]`` float64.

    Text tokens get no absolute position (the reference's zero text rows), so only video rows are
    returned; the model adds them to the video part of the joint sequence.
    """
    return sincos_3d(
        config.inner_dim,
        frames,
        height,
        width,
        spatial_scale=config.spatial_interpolation_scale,
        temporal_scale=config.temporal_interpolation_scale,
        device=device,
    )


def learned_table_init(config: DiTConfig) -> Tensor:
    """Initial value of the 5B-I2V learned table ``[1, L_text + N_native, D]`` (float32).

    The reference initialises the buffer with the sin-cos table of the native size and zero
    text rows; checkpoints overwrite it.
    """
    frames = config.sample_latent_frames
    grid = token_grid(config, frames * config.patch_t, config.sample_height, config.sample_width)
    video = sincos_table(config, *grid).float()
    text = video.new_zeros(config.max_text_seq_length, config.inner_dim)
    return torch.cat([text, video], dim=0)[None]


# --------------------------------------------------------------------------------- 3D RoPE
def resize_crop_region(
    grid: tuple[int, int], base_width: int, base_height: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Box ``((top, left), (bottom, right))`` of a ``grid=(h, w)`` resized into a base grid.

    The grid is scaled to fit the ``base_height x base_width`` box keeping its aspect ratio (the
    side that is relatively longer fills the box) and centred. Same result as the reference
    pipeline's ``get_resize_crop_region_for_grid`` (Python ``round``, i.e. half to even).
    """
    h, w = grid
    if h / w > base_height / base_width:
        resize_h, resize_w = base_height, round(base_height / h * w)
    else:
        resize_h, resize_w = round(base_width / w * h), base_width
    top = round((base_height - resize_h) / 2.0)
    left = round((base_width - resize_w) / 2.0)
    return (top, left), (top + resize_h, left + resize_w)


def _rope_axis(dim: int, pos: Tensor, theta: float) -> tuple[Tensor, Tensor]:
    """cos, sin ``[M, dim]`` of one axis: each frequency's value repeated for a channel pair."""
    freqs = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=pos.device) / dim)
    angles = torch.outer(pos, freqs)  # [M, dim/2]
    return angles.cos().repeat_interleave(2, dim=1), angles.sin().repeat_interleave(2, dim=1)


def rope_3d(
    head_dim: int,
    t_pos: Tensor,
    h_pos: Tensor,
    w_pos: Tensor,
    *,
    theta: float = ROPE_THETA,
) -> tuple[Tensor, Tensor]:
    """cos, sin ``[T*H*W, head_dim]`` (float32) for axis positions, tokens in (t, h, w) order."""
    dim_t, dim_hw = head_dim // 4, head_dim // 8 * 3
    if dim_t + 2 * dim_hw != head_dim or dim_t % 2 or dim_hw % 2:
        raise ValueError(f"3D RoPE needs a head dim divisible by 16, got {head_dim}")
    axes = [
        _rope_axis(dim_t, t_pos, theta),
        _rope_axis(dim_hw, h_pos, theta),
        _rope_axis(dim_hw, w_pos, theta),
    ]
    sizes = (t_pos.numel(), h_pos.numel(), w_pos.numel())
    out = []
    for part in (0, 1):  # cos, then sin
        t, h, w = (a[part] for a in axes)
        table = torch.cat(
            [
                t[:, None, None, :].expand(*sizes, dim_t),
                h[None, :, None, :].expand(*sizes, dim_hw),
                w[None, None, :, :].expand(*sizes, dim_hw),
            ],
            dim=-1,
        )  # [T, H, W, head_dim]
        out.append(table.reshape(-1, head_dim))
    return out[0], out[1]


def rope_positions(
    config: DiTConfig, frames: int, height: int, width: int, grid: RopeGrid | str
) -> tuple[Tensor, Tensor, Tensor]:
    """Axis positions ``(t, h, w)`` (float32) of a token grid ``(frames, height, width)``."""
    grid = parse_rope_grid(grid)
    if grid is RopeGrid.SLICE:
        t, h, w = (torch.arange(n, dtype=torch.float32) for n in (frames, height, width))
        return t, h, w
    base_w = config.sample_width // config.patch_size
    base_h = config.sample_height // config.patch_size
    (top, left), (bottom, right) = resize_crop_region((height, width), base_w, base_h)
    # linspace from the box start to just before its end: n points spaced (end - start)/n apart
    # when start is 0 (the reference's endpoint expression, kept for identical rounding).
    h_pos = torch.linspace(top, bottom * (height - 1) / height, height, dtype=torch.float32)
    w_pos = torch.linspace(left, right * (width - 1) / width, width, dtype=torch.float32)
    t_pos = torch.linspace(0, frames * (frames - 1) / frames, frames, dtype=torch.float32)
    return t_pos, h_pos, w_pos


def rope_tables(
    config: DiTConfig,
    frames: int,
    height: int,
    width: int,
    grid: RopeGrid | str,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """RoPE cos, sin ``[frames*height*width, head_dim]`` float32 for a token grid.

    ``frames, height, width`` count *tokens* (after patching), e.g. ``(13, 30, 45)`` at
    480x720x49 for 1.0 and ``(11, 48, 85)`` at 768x1360x81 for 1.5.
    """
    t_pos, h_pos, w_pos = rope_positions(config, frames, height, width, grid)
    cos, sin = rope_3d(config.attention_head_dim, t_pos, h_pos, w_pos)
    return cos.to(device), sin.to(device)


# --------------------------------------------------------------------------------- cache
class PositionCache:
    """A small LRU of computed tables, keyed by the caller (shape, grid, device, dtype).

    Owned by a model instance (not module state). Tables are constants: they are built under
    ``torch.no_grad`` and never require grad.
    """

    def __init__(self, max_entries: int = 8) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], object]) -> object:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        with torch.no_grad():
            value = build()
        self._entries[key] = value
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
