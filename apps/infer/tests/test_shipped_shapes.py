"""The shipped "shapes" model (cogvx.infer.default_model_dir()): layout, size, diffusers parity and a
fast subset of the adherence check (apps/train/README.md, "Shapes model")."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cogvx.infer import TextToVideoPipeline, default_model_dir

FOLDER = default_model_dir()
STEPS, GUIDANCE = 25, 6.0  # the settings the model is shipped and evaluated with


def frames_of(out) -> torch.Tensor:
    return out.frames if hasattr(out, "frames") else out


def test_folder_is_a_small_safetensors_cogvideox_folder():
    index = json.loads((FOLDER / "model_index.json").read_text())
    assert index["_class_name"] == "CogVideoXPipeline"
    files = [p for p in FOLDER.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 20 * 2**20
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".ckpt")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)


def test_diffusers_gives_the_same_frames():
    from diffusers import CogVideoXPipeline

    kw = dict(
        prompt="a yellow square moves to the left",
        num_inference_steps=4,
        guidance_scale=GUIDANCE,
        max_sequence_length=16,
        height=64,
        width=64,
        num_frames=9,
    )
    ref = CogVideoXPipeline.from_pretrained(FOLDER)
    ref.set_progress_bar_config(disable=True)
    expected = ref(**kw, generator=torch.Generator().manual_seed(0), output_type="pt").frames
    ours = TextToVideoPipeline.from_pretrained(FOLDER)
    got = frames_of(ours(**kw, generator=torch.Generator().manual_seed(0), progress=False))
    assert got.shape == expected.shape == (1, 9, 3, 64, 64)
    assert float((got - expected).abs().max()) <= 1e-4


# Fixed prompts (seed 0): every measured dimension must be right. Colour and direction meet their
# targets on the held-out set (docs/shapes-model.md); shape does not yet, so a prompt whose shape
# the model gets wrong is marked, strictly: a model that gets it right must drop the mark.
SHAPE_MISSED = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,  # only a wrong shape counts, not a broken test
    reason="shape adherence is below its target (docs/shapes-model.md, Results)",
)
PROMPTS = {
    "a red circle moves to the right": (),
    "a cyan triangle rises": (),
    "a magenta square stays still": (),
    "a yellow square slides left": (SHAPE_MISSED,),
    "a blue triangle sinks": (),
}


def generate(prompt: str) -> np.ndarray:
    pipe = TextToVideoPipeline.from_pretrained(FOLDER)
    out = pipe(
        prompt=prompt,
        num_inference_steps=STEPS,
        guidance_scale=GUIDANCE,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        progress=False,
    )
    return np.rint(np.asarray(frames_of(out))[0] * 255).astype(np.uint8)


@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_generates_the_prompted_colour_and_motion(prompt):
    from cogvx.evals.shapes import score_video

    score = score_video(generate(prompt), prompt)
    assert score.color_correct, score.to_dict()
    assert score.motion_correct, score.to_dict()


@pytest.mark.parametrize("prompt", [pytest.param(p, marks=marks) for p, marks in PROMPTS.items()])
def test_generates_the_prompted_shape(prompt):
    from cogvx.evals.shapes import score_video

    score = score_video(generate(prompt), prompt)
    assert score.shape_correct, score.to_dict()
