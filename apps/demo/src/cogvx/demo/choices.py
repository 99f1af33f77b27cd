"""What a loaded model folder can do, as the choices the page offers (no torch, no gradio).

The page never asks for free-text sizes that fail later: the frame counts and sizes it offers are
the ones :class:`cogvx.infer.shapes.ShapeRules` accepts for the folder (docs/pipelines.md §Shape
rules): frames ``8N + 1`` (1.0) or ``16N + 1`` (1.5), height and width multiples of the VAE factor
times the patch size (16), and exactly the native size for a model with a learned position table.
The tabs shown are the tasks the transformer can run (docs/pipelines.md; the image-to-video
transformer has twice the VAE's latent channels, :func:`cogvx.infer.tasks.tasks_for_channels`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cogvx.infer import DEFAULT_MODEL_STEPS
from cogvx.infer.model_folder import ModelFolder
from cogvx.infer.shapes import ShapeRules
from cogvx.infer.tasks import TASKS, Task, tasks_for_channels

__all__ = [
    "SHAPES_GUIDANCE",
    "SHAPES_STEPS",
    "ModelChoices",
    "format_size",
    "frame_choices",
    "model_choices",
    "parse_size",
    "size_choices",
]

#: Sampling defaults of the shipped shapes model (docs/shapes-model.md §Model: 25 steps,
#: guidance 6); other folders get the reference's 50 steps and guidance 6.
SHAPES_STEPS = DEFAULT_MODEL_STEPS
SHAPES_GUIDANCE = 6.0
REFERENCE_STEPS = 50
REFERENCE_GUIDANCE = 6.0

# scales of the default size offered besides it (each rounded to the size multiple)
_SIZE_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def format_size(height: int, width: int) -> str:
    """``"HxW"`` (height first, as the pipelines' ``height, width`` arguments)."""
    return f"{height}x{width}"


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` -> ``(height, width)``; a ValueError names the value and the form."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"size={text!r}: expected HEIGHTxWIDTH, e.g. 480x720")
    return int(parts[0]), int(parts[1])


def frame_choices(rules: ShapeRules, max_frames: int | None = None) -> list[int]:
    """The frame counts the model was trained on (``step * N + 1``), from the smallest up to
    ``max_frames`` (default: twice the family default, at least 49) and always including the
    default; a fixed-size model offers its one count."""
    default = rules.defaults().num_frames
    if rules.fixed_size is not None:
        return [rules.fixed_size[0]]
    cap = max(2 * default, 49) if max_frames is None else max_frames
    if cap < 1 + rules.frame_step:
        raise ValueError(
            f"max_frames={max_frames}: this model's smallest frame count is {1 + rules.frame_step}"
        )
    out = list(range(1 + rules.frame_step, cap + 1, rules.frame_step))
    if default not in out and default <= cap:
        out.append(default)
    return sorted(out)


def size_choices(rules: ShapeRules) -> list[tuple[int, int]]:
    """(height, width) pairs: the default, scaled by 0.5-2x (rounded to the size multiple) and its
    transpose; a fixed-size model offers its native size only. Sorted by area."""
    if rules.fixed_size is not None:
        return [rules.fixed_size[1:]]
    d = rules.defaults()
    m = rules.size_multiple
    out: set[tuple[int, int]] = set()
    for s in _SIZE_SCALES:
        h = max(m, round(d.height * s / m) * m)
        w = max(m, round(d.width * s / m) * m)
        out.add((h, w))
    out.add((d.width, d.height))
    for h, w in out:  # every choice must pass the model's own check
        rules.check(rules.defaults().num_frames, h, w)
    return sorted(out, key=lambda hw: (hw[0] * hw[1], hw))


@dataclass(frozen=True)
class ModelChoices:
    """A model folder's tasks, shape choices and sampling defaults for the page."""

    root: Path
    tasks: tuple[Task, ...]
    rules: ShapeRules
    frames: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]
    default_frames: int
    default_size: tuple[int, int]
    fps: int
    steps: int
    guidance: float
    shipped: bool

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)


def model_choices(
    model: str | os.PathLike[str], *, max_frames: int | None = None, shipped: bool = False
) -> ModelChoices:
    """Read ``model``'s configs (no weights) and list what the page offers. ``shipped``: the folder
    is the shipped shapes model (its own sampling defaults)."""
    folder = ModelFolder.open(model)
    config = folder.transformer_config
    tasks = tasks_for_channels(config.in_channels, folder.vae_info.latent_channels)
    if not tasks:
        raise ValueError(
            f"model={str(model)!r}: its transformer (in_channels={config.in_channels}) runs none "
            f"of the tasks {', '.join(TASKS)}"
        )
    rules = folder.shape_rules()
    d = rules.defaults()
    return ModelChoices(
        root=folder.root,
        tasks=tuple(tasks),
        rules=rules,
        frames=tuple(frame_choices(rules, max_frames)),
        sizes=tuple(size_choices(rules)),
        default_frames=d.num_frames,
        default_size=(d.height, d.width),
        fps=d.fps,
        steps=SHAPES_STEPS if shipped else REFERENCE_STEPS,
        guidance=SHAPES_GUIDANCE if shipped else REFERENCE_GUIDANCE,
        shipped=shipped,
    )
