"""End-to-end parity with diffusers' CogVideoX pipelines on tiny random model folders.

Both sides open the same folder (written by diffusers), get the same seed and arguments, and must
produce the same frames in [0, 1] to max abs diff <= 1e-4 (docs/architecture.md §Exactness). The cases cover
DDIM and DPM-Solver++, constant and dynamic CFG, the sin-cos (2B), RoPE (5B), learned-position
(5B-I2V) and 1.5 (temporal patch, ofs, inverted image-latent scale) families, both tokenizer kinds,
a portrait size, batches with per-item generators, and the three tasks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cogvx.infer import TextToVideoPipeline

TOL = 1e-4


def compare(ref_frames: torch.Tensor, ours: torch.Tensor) -> float:
    assert ours.shape == ref_frames.shape
    assert ours.dtype == torch.float32
    assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0
    assert float(ref_frames.std()) > 1e-3  # a non-degenerate video
    diff = float((ours - ref_frames).abs().max())
    assert diff <= TOL, diff
    return diff


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


T2V_CASES = [
    # (spec, call overrides)
    (dict(name="t2v-sincos-ddim", sampler="ddim", tokenizer="spiece", snr_shift=3.0), {}),
    (
        dict(name="t2v-rope-dpm", rope=True, sampler="dpm", tokenizer="json", snr_shift=1.0),
        {"use_dynamic_cfg": True},
    ),
    (
        dict(name="t2v-v15-dpm", v15=True, sampler="dpm", tokenizer="json", snr_shift=1.0),
        {"use_dynamic_cfg": True, "num_frames": 17},
    ),
    (
        dict(name="t2v-rope-dpm", rope=True, sampler="dpm", tokenizer="json", snr_shift=1.0),
        {"height": 32, "width": 16, "negative_prompt": "blurry, dark"},
    ),  # portrait
]


@pytest.mark.parametrize(
    ("spec", "overrides"), T2V_CASES, ids=lambda x: x.get("name", "") if "name" in x else ""
)
def test_text_to_video_matches_reference(cached_pipelines, spec, overrides):
    ref_pipe, ours = cached_pipelines(spec, "t2v")
    kw = dict(
        prompt="a panda plays a guitar",
        height=16,
        width=32,
        num_frames=9,
        num_inference_steps=3,
        guidance_scale=6.0,
        max_sequence_length=12,
    )
    kw.update(overrides)
    ref = ref_pipe(**kw, generator=gen(), output_type="pt").frames
    compare(ref, ours(**kw, generator=gen(), progress=False).frames)


def test_text_to_video_batch_latents_and_no_guidance(make_folder):
    from diffusers import CogVideoXDPMScheduler, CogVideoXPipeline

    folder = make_folder(T2V_CASES[0][0])
    ref_pipe = CogVideoXPipeline.from_pretrained(folder)
    ref_pipe.set_progress_bar_config(disable=True)
    ours = TextToVideoPipeline.from_pretrained(folder, sampler="dpm")
    ref_pipe.scheduler = CogVideoXDPMScheduler.from_config(ref_pipe.scheduler.config)
    prompts = ["a red car at sunset", "a cat on a mat"]
    kw = dict(
        prompt=prompts,
        height=16,
        width=32,
        num_frames=9,
        num_inference_steps=3,
        max_sequence_length=12,
    )
    # Per-item generators.
    ref = ref_pipe(**kw, generator=[gen(1), gen(2)], output_type="pt").frames
    compare(ref, ours(**kw, generator=[gen(1), gen(2)], progress=False).frames)
    # Given initial latents and guidance off (one transformer pass per step).
    latents = torch.randn(2, 3, 4, 2, 4, generator=gen(5))
    ref = ref_pipe(
        **kw, latents=latents, guidance_scale=1.0, generator=gen(3), output_type="pt"
    ).frames
    compare(
        ref,
        ours(**kw, latents=latents, guidance_scale=1.0, generator=gen(3), progress=False).frames,
    )


def test_zero_unconditional_branch_matches_reference_given_zero_embeddings(cached_pipelines):
    ref_pipe, ours = cached_pipelines(T2V_CASES[0][0], "t2v")
    kw = dict(
        prompt="a panda",
        height=16,
        width=32,
        num_frames=9,
        num_inference_steps=2,
        max_sequence_length=12,
    )
    embeds, _ = ref_pipe.encode_prompt(
        "a panda", do_classifier_free_guidance=False, max_sequence_length=12
    )
    ref = ref_pipe(
        prompt_embeds=embeds,
        negative_prompt_embeds=torch.zeros_like(embeds),
        **{k: v for k, v in kw.items() if k != "prompt"},
        generator=gen(),
        output_type="pt",
    ).frames
    out = ours(**kw, unconditional="zeros", generator=gen(), progress=False).frames
    compare(ref, out)
    assert (out - ours(**kw, generator=gen(), progress=False).frames).abs().max() > 1e-3


def _image(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return Image.fromarray(base).resize((w, h), Image.BILINEAR)


I2V_CASES = [
    (
        dict(
            name="i2v-rope-dpm",
            task="i2v",
            rope=True,
            sampler="dpm",
            tokenizer="spiece",
            snr_shift=1.0,
        ),
        {"use_dynamic_cfg": True},
    ),
    (
        dict(
            name="i2v-v15-dpm", task="i2v", v15=True, sampler="dpm", tokenizer="json", snr_shift=1.0
        ),
        {"num_frames": 17},
    ),
    (
        dict(
            name="i2v-learned-ddim",
            task="i2v",
            learned_positions=True,
            sampler="ddim",
            tokenizer="spiece",
            snr_shift=1.0,
            transformer_overrides={"sample_height": 2, "sample_width": 4},
        ),
        {},
    ),
]


@pytest.mark.parametrize(
    ("spec", "overrides"), I2V_CASES, ids=lambda x: x.get("name", "") if "name" in x else ""
)
def test_image_to_video_matches_reference(cached_pipelines, spec, overrides):
    ref_pipe, ours = cached_pipelines(spec, "i2v")
    kw = dict(
        prompt="a panda",
        height=16,
        width=32,
        num_frames=9,
        num_inference_steps=3,
        guidance_scale=6.0,
        max_sequence_length=12,
    )
    kw.update(overrides)
    image = _image(kw["height"], kw["width"])
    ref = ref_pipe(image=image, **kw, generator=gen(), output_type="pt").frames
    compare(ref, ours(image, **kw, generator=gen(), progress=False).frames)


V2V_CASES = [
    (
        dict(name="v2v-sincos-ddim", task="v2v", sampler="ddim", tokenizer="spiece"),
        {"strength": 0.6, "num_inference_steps": 4},
    ),
    (
        dict(
            name="v2v-rope-dpm",
            task="v2v",
            rope=True,
            sampler="dpm",
            tokenizer="json",
            snr_shift=1.0,
        ),
        {"strength": 0.8, "num_inference_steps": 4, "use_dynamic_cfg": True},
    ),
]


@pytest.mark.parametrize(
    ("spec", "overrides"), V2V_CASES, ids=lambda x: x.get("name", "") if "name" in x else ""
)
def test_video_to_video_matches_reference(cached_pipelines, spec, overrides):
    ref_pipe, ours = cached_pipelines(spec, "v2v")
    video = [_image(16, 32, seed=i) for i in range(9)]
    kw = dict(prompt="a panda", height=16, width=32, guidance_scale=6.0, max_sequence_length=12)
    kw.update(overrides)
    ref = ref_pipe(video=video, **kw, generator=gen(), output_type="pt").frames
    compare(ref, ours(video, **kw, generator=gen(), progress=False).frames)
