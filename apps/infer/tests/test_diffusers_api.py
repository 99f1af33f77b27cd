"""A diffusers-style script runs against our pipelines, and matches diffusers where it has the feature.

The calls are written as a diffusers user writes them (``from_pretrained(..., torch_dtype=...)``,
``num_videos_per_prompt``, ``callback_on_step_end``, ``.frames``, ``return_dict=False``, ``to``,
``enable_model_cpu_offload``, ``pipe.vae.enable_tiling()``, ``set_progress_bar_config``,
``export_to_video``). diffusers' CogVideoX pipelines ignore ``num_videos_per_prompt`` (they reset it to
1), so ours with ``n`` videos is compared with theirs on the prompt repeated ``n`` times.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cogvx.infer import ImageToVideoPipeline, Residency, TextToVideoPipeline
from cogvx.videoio import export_to_video, read_video

TOL = 1e-4
T2V = dict(name="t2v-sincos-ddim", sampler="ddim", tokenizer="spiece", snr_shift=3.0)
DPM = dict(name="t2v-rope-dpm", rope=True, sampler="dpm", tokenizer="json", snr_shift=1.0)
I2V = dict(
    name="i2v-rope-dpm", task="i2v", rope=True, sampler="dpm", tokenizer="spiece", snr_shift=1.0
)
KW = dict(height=16, width=32, num_frames=9, num_inference_steps=3, max_sequence_length=12)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def close(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    diff = float((a - b).abs().max())
    assert diff <= TOL, diff
    return diff


def test_diffusers_style_script(make_folder, tmp_path):
    from diffusers import CogVideoXPipeline

    folder = make_folder(T2V)
    # --- the user's script ------------------------------------------------------------------
    pipe = TextToVideoPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_tiling()
    pipe.vae.enable_slicing()
    seen = []

    def on_step(p, step, timestep, callback_kwargs):
        seen.append((step, int(timestep), p.num_timesteps))
        return callback_kwargs

    out = pipe(
        prompt="a panda plays a guitar",
        num_videos_per_prompt=2,
        guidance_scale=6.0,
        generator=gen(0),
        callback_on_step_end=on_step,
        callback_on_step_end_tensor_inputs=["latents"],
        **KW,
    )
    video = out.frames[0]
    path = export_to_video(video, tmp_path / "output.mp4", fps=8)
    # --- the checks -------------------------------------------------------------------------
    assert out.frames.shape == (2, 9, 3, 16, 32)
    assert read_video(path).frames.shape == (9, 16, 32, 3)
    ref_pipe = CogVideoXPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    ref_pipe.set_progress_bar_config(disable=True)
    ref_seen = []

    def ref_step(p, step, timestep, callback_kwargs):
        ref_seen.append((step, int(timestep), p.num_timesteps))
        return callback_kwargs

    ref = ref_pipe(
        prompt=["a panda plays a guitar"] * 2,
        guidance_scale=6.0,
        generator=gen(0),
        callback_on_step_end=ref_step,
        callback_on_step_end_tensor_inputs=["latents"],
        output_type="pt",
        **KW,
    ).frames
    close(out.frames, ref)
    assert seen == ref_seen and len(seen) == 3
    assert float((out.frames[0] - out.frames[1]).abs().max()) > 1e-3  # two different videos
    (frames,) = pipe(prompt="a panda plays a guitar", generator=gen(0), return_dict=False, **KW)
    assert frames.shape == (1, 9, 3, 16, 32)
    np_frames = pipe(prompt="a cat", generator=gen(0), output_type="np", **KW).frames
    pil_frames = pipe(prompt="a cat", generator=gen(0), output_type="pil", **KW).frames
    assert np_frames.shape == (1, 9, 16, 32, 3) and isinstance(pil_frames[0][0], Image.Image)


@pytest.mark.parametrize("replace", ["latents", "prompt_embeds"])
def test_callback_tensors_replace_the_loops_like_diffusers(cached_pipelines, replace):
    ref_pipe, ours = cached_pipelines(DPM, "t2v")

    def edit(p, step, timestep, callback_kwargs):
        if step == 1:  # a real change mid-loop: the rest of the loop must use it
            callback_kwargs[replace] = callback_kwargs[replace] * 0.5
        return callback_kwargs

    kw = dict(KW, prompt="a red car", guidance_scale=6.0, callback_on_step_end=edit)
    kw["callback_on_step_end_tensor_inputs"] = [replace]
    ref = ref_pipe(**kw, generator=gen(2), output_type="pt").frames
    out = ours(**kw, generator=gen(2), progress=False).frames
    close(out, ref)
    plain = ours(**dict(kw, callback_on_step_end=None), generator=gen(2), progress=False).frames
    assert float((plain - out).abs().max()) > 1e-3  # the callback changed the result


def test_image_to_video_num_videos_per_prompt_matches_the_repeated_batch(cached_pipelines):
    ref_pipe, ours = cached_pipelines(I2V, "i2v")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (2, 4, 3), dtype=np.uint8)).resize((32, 16))
    kw = dict(KW, guidance_scale=6.0)
    out = ours(image, prompt="a panda", num_videos_per_prompt=2, generator=gen(), progress=False)
    ref = ref_pipe(
        image=[image, image], prompt=["a panda"] * 2, **kw, generator=gen(), output_type="pt"
    ).frames
    close(ours(image, prompt="a panda", num_videos_per_prompt=2, **kw, generator=gen()).frames, ref)
    assert out.frames.shape[0] == 2


def test_to_offload_and_staged_vae_switches(make_folder):
    folder = make_folder(DPM)
    pipe = TextToVideoPipeline.from_pretrained(folder)
    base = pipe(prompt="a cat", generator=gen(1), progress=False, **KW).frames
    pipe.enable_model_cpu_offload(device="cpu")
    assert all(
        c.residency is Residency.OFFLOAD for c in (pipe.text_encoder, pipe.transformer, pipe.vae)
    )
    close(pipe(prompt="a cat", generator=gen(1), progress=False, **KW).frames, base)
    assert pipe.to("cpu") is pipe
    pipe.to(torch.bfloat16)
    assert pipe.dtype == torch.bfloat16
    assert next(pipe.transformer.peek().parameters()).dtype == torch.bfloat16
    assert pipe.text_encoder.peek().dtype == torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="enable_model_cpu_offload: no CUDA device"):
            pipe.enable_model_cpu_offload()

    staged = TextToVideoPipeline.from_pretrained(folder, residency="staged")
    staged.vae.enable_tiling(tile_sample_min_height=16, tile_sample_min_width=16)
    tilings = []
    staged.vae.on_load.append(lambda vae: tilings.append(vae.runtime_options.tiling))
    staged(prompt="a cat", generator=gen(1), progress=False, **KW)
    assert tilings and tilings[0] is not None and staged.vae.peek() is None
    staged.vae.disable_tiling()
    staged(prompt="a cat", generator=gen(1), progress=False, **KW)
    assert tilings[-1] is None


def test_repo_id_resolves_from_the_local_cache_only(make_folder, tmp_path):
    folder = make_folder(T2V)
    cache = tmp_path / "hub"
    repo = cache / "models--THUDM--CogVideoX-tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    pipe = TextToVideoPipeline.from_pretrained("THUDM/CogVideoX-tiny", cache_dir=cache)
    assert pipe.transformer.peek() is not None
    with pytest.raises(FileNotFoundError) as err:
        TextToVideoPipeline.from_pretrained("THUDM/CogVideoX-absent", cache_dir=cache)
    message = str(err.value)
    assert "\n" not in message and str(cache) in message and "nothing is downloaded" in message
    with pytest.raises(ValueError, match="local_files_only=False: cogvx never downloads"):
        TextToVideoPipeline.from_pretrained(folder, local_files_only=False)


def test_image_pipeline_refuses_a_text_to_video_folder_before_loading(make_folder):
    with pytest.raises(ValueError, match=r"task='i2v'.*in_channels=4.*runs task 't2v' or 'v2v'"):
        ImageToVideoPipeline.from_pretrained(make_folder(T2V))
