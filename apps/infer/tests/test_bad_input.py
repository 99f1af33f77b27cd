"""Bad pipeline and API inputs are refused before any work, with the exact error type and a message
that names the parameter (docs/reliability.md §Python APIs, §Model folders, §Memory).

Call-level cases run on *staged* pipelines: every model is loaded only when its stage starts, so
"no model was loaded" proves that the refusal came before any work (no text encoding, no VAE
encode, no denoising step).
"""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cogvx.infer import (
    ImageToVideoPipeline,
    MemoryEstimateError,
    TextToVideoPipeline,
    VideoToVideoPipeline,
)

T2V = dict(name="t2v-rope-dpm", rope=True, sampler="dpm", tokenizer="json", snr_shift=1.0)
I2V = dict(
    name="i2v-rope-dpm", task="i2v", rope=True, sampler="dpm", tokenizer="spiece", snr_shift=1.0
)
V2V = dict(name="v2v-sincos-ddim", task="v2v", sampler="ddim", tokenizer="spiece")
BASE = dict(height=16, width=32, num_inference_steps=2, max_sequence_length=12, progress=False)
PIPES = {"t2v": (TextToVideoPipeline, T2V), "i2v": (ImageToVideoPipeline, I2V)}
PIPES["v2v"] = (VideoToVideoPipeline, V2V)


def _image(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (16, 32, 3), dtype=np.uint8))


def _f_image(value: float) -> Image.Image:
    return Image.fromarray(np.full((16, 32), value, dtype=np.float32), mode="F")


GOOD_LATENTS = torch.zeros(1, 3, 4, 2, 4)  # [B, F', C, h, w] for 9 frames at 16x32
EMBEDS = torch.zeros(1, 12, 32)

# (id, task, call keywords (replacing the defaults), exception type, parameter the message names)
CASES = [
    ("guidance-nan", "t2v", dict(guidance_scale=math.nan), ValueError, "guidance_scale=nan"),
    ("guidance-inf", "t2v", dict(guidance_scale=math.inf), ValueError, "guidance_scale=inf"),
    ("guidance-negative", "t2v", dict(guidance_scale=-1.0), ValueError, "guidance_scale=-1.0"),
    ("guidance-str", "t2v", dict(guidance_scale="6"), TypeError, "guidance_scale='6'"),
    ("guidance-bool", "t2v", dict(guidance_scale=True), TypeError, "guidance_scale=True"),
    ("steps-zero", "t2v", dict(num_inference_steps=0), ValueError, "num_inference_steps=0"),
    ("steps-negative", "t2v", dict(num_inference_steps=-3), ValueError, "num_inference_steps=-3"),
    ("steps-float", "t2v", dict(num_inference_steps=2.5), TypeError, "num_inference_steps=2.5"),
    ("frames-zero", "t2v", dict(num_frames=0), ValueError, "num_frames=0"),
    ("frames-not-8n+1", "t2v", dict(num_frames=10), ValueError, "num_frames=10"),
    ("height-zero", "t2v", dict(height=0), ValueError, "height=0"),
    ("width-negative", "t2v", dict(width=-16), ValueError, "width=-16"),
    ("height-float", "t2v", dict(height=16.0), TypeError, "height=16.0"),
    ("width-not-multiple", "t2v", dict(width=33), ValueError, "width=33"),
    ("videos-zero", "t2v", dict(num_videos_per_prompt=0), ValueError, "num_videos_per_prompt=0"),
    ("videos-float", "t2v", dict(num_videos_per_prompt=1.5), TypeError, "num_videos_per_prompt"),
    ("seq-len-zero", "t2v", dict(max_sequence_length=0), ValueError, "max_sequence_length=0"),
    (
        "seq-len-memory",
        "t2v",
        dict(max_sequence_length=10**6),
        MemoryEstimateError,
        r"max_sequence_length=1000000: .*needs about .* GiB \(estimate\) but cpu has .* GiB",
    ),
    (
        "size-memory",
        "t2v",
        dict(height=16384, width=16384, num_frames=4001),
        MemoryEstimateError,
        r"height, width, num_frames=\(16384, 16384, 4001\): .*GiB \(estimate\)",
    ),
    ("output-type", "t2v", dict(output_type="video"), ValueError, "output_type='video'"),
    ("prompt-int", "t2v", dict(prompt=123), TypeError, "prompt=123"),
    ("prompt-empty-list", "t2v", dict(prompt=[]), TypeError, r"prompt=\[\]"),
    ("prompt-mixed-list", "t2v", dict(prompt=["a", 3]), TypeError, "prompt="),
    ("prompt-missing", "t2v", dict(prompt=None), ValueError, "prompt=None"),
    ("prompt-and-embeds", "t2v", dict(prompt_embeds=EMBEDS), ValueError, "prompt='a cat'"),
    (
        "negative-list-for-str",
        "t2v",
        dict(negative_prompt=["a", "b"]),
        TypeError,
        "negative_prompt=",
    ),
    (
        "negative-length",
        "t2v",
        dict(prompt=["a", "b"], negative_prompt=["x"]),
        ValueError,
        "negative_prompt=",
    ),
    ("negative-int", "t2v", dict(negative_prompt=5), TypeError, "negative_prompt=5"),
    ("generator-str", "t2v", dict(generator="seed"), TypeError, "generator='seed'"),
    (
        "generator-count",
        "t2v",
        dict(generator=[torch.Generator(), torch.Generator()]),
        ValueError,
        "generator=.*expected one per video: 1",
    ),
    ("latents-shape", "t2v", dict(latents=torch.zeros(1, 2, 4, 2, 4)), ValueError, "latents="),
    (
        "latents-nan",
        "t2v",
        dict(latents=torch.full_like(GOOD_LATENTS, math.nan)),
        ValueError,
        "latents=.*finite",
    ),
    ("latents-array", "t2v", dict(latents=np.zeros((1, 3, 4, 2, 4))), TypeError, "latents="),
    (
        "embeds-width",
        "t2v",
        dict(prompt=None, prompt_embeds=torch.zeros(1, 12, 7)),
        ValueError,
        "prompt_embeds=",
    ),
    (
        "embeds-nan",
        "t2v",
        dict(prompt=None, prompt_embeds=torch.full((1, 12, 32), math.nan)),
        ValueError,
        "prompt_embeds=.*finite",
    ),
    (
        "negative-embeds-shape",
        "t2v",
        dict(prompt=None, prompt_embeds=EMBEDS, negative_prompt_embeds=torch.zeros(2, 12, 32)),
        ValueError,
        "negative_prompt_embeds=",
    ),
    (
        "callback-not-callable",
        "t2v",
        dict(callback_on_step_end="f"),
        TypeError,
        "callback_on_step_end='f'",
    ),
    (
        "callback-inputs-unknown",
        "t2v",
        dict(callback_on_step_end_tensor_inputs=["noise"]),
        ValueError,
        "callback_on_step_end_tensor_inputs=",
    ),
    (
        "callback-inputs-str",
        "t2v",
        dict(callback_on_step_end_tensor_inputs="latents"),
        TypeError,
        "callback_on_step_end_tensor_inputs='latents'",
    ),
    ("dynamic-cfg-str", "t2v", dict(use_dynamic_cfg="yes"), TypeError, "use_dynamic_cfg='yes'"),
    ("schedule-unknown", "t2v", dict(guidance_schedule="cosine"), ValueError, "guidance_schedule"),
    (
        "schedule-contradiction",
        "t2v",
        dict(guidance_schedule="constant", use_dynamic_cfg=True),
        ValueError,
        "guidance_schedule='constant'",
    ),
    ("unconditional-unknown", "t2v", dict(unconditional="none"), ValueError, "unconditional"),
    (
        "zeros-with-negative",
        "t2v",
        dict(unconditional="zeros", negative_prompt="blurry"),
        ValueError,
        "negative_prompt='blurry'",
    ),
    ("return-dict-str", "t2v", dict(return_dict="no"), TypeError, "return_dict='no'"),
    ("snap-int", "t2v", dict(snap=1), TypeError, "snap=1"),
    ("unknown-keyword", "t2v", dict(eta=0.0), TypeError, "'eta'"),
    ("image-none", "i2v", dict(image=None), ValueError, "image=None"),
    ("image-path-str", "i2v", dict(image="cat.png"), TypeError, "image='cat.png'"),
    (
        "image-float-0-255",
        "i2v",
        dict(image=np.full((16, 32, 3), 200.0, dtype=np.float32)),
        ValueError,
        r"image=.*must be in \[0, 1\]",
    ),
    (
        "image-rgba-array",
        "i2v",
        dict(image=np.zeros((16, 32, 4), np.uint8)),
        ValueError,
        r"image=.*\[H, W, 3\]",
    ),
    (
        "image-tensor-range",
        "i2v",
        dict(image=torch.full((3, 16, 32), 2.0)),
        ValueError,
        r"image=.*\[0, 1\]",
    ),
    (
        "image-tensor-uint8",
        "i2v",
        dict(image=torch.zeros(3, 16, 32, dtype=torch.uint8)),
        TypeError,
        "image=",
    ),
    ("image-pil-float-range", "i2v", dict(image=_f_image(5.0)), ValueError, r"image=<PIL F"),
    ("image-count", "i2v", dict(image=[_image(0)] * 3), ValueError, "image=<3 images>"),
    (
        "image-array-nan",
        "i2v",
        dict(image=np.full((16, 32, 3), math.nan, dtype=np.float32)),
        ValueError,
        "image=.*finite",
    ),
    ("image-empty-list", "i2v", dict(image=[]), ValueError, r"image=\[\]"),
    ("strength-above-1", "v2v", dict(strength=1.5), ValueError, "strength=1.5"),
    ("strength-zero", "v2v", dict(strength=0), ValueError, "strength=0"),
    ("strength-nan", "v2v", dict(strength=math.nan), ValueError, "strength=nan"),
    ("strength-no-step", "v2v", dict(strength=0.1), ValueError, "strength=0.1.*no step runs"),
    ("v2v-num-frames", "v2v", dict(num_frames=9), ValueError, "num_frames=9"),
    ("video-empty", "v2v", dict(video=[]), ValueError, r"video=\[\]"),
    ("video-length", "v2v", dict(video=[_image(0)] * 10), ValueError, "num_frames=10"),
    (
        "video-and-latents",
        "v2v",
        dict(latents=GOOD_LATENTS),
        ValueError,
        "video=<list>: pass exactly one of video or latents",
    ),
    (
        "video-frame-range",
        "v2v",
        dict(video=[np.full((16, 32, 3), 3.0, np.float32)] * 9),
        ValueError,
        r"video\[0\]=",
    ),
    ("video-int", "v2v", dict(video=5), TypeError, "video=5"),
]


@pytest.fixture(scope="module")
def staged(make_folder):
    """One staged pipeline per task; ``loads`` records every model load."""
    pipes, loads = {}, []
    for task, (cls, spec) in PIPES.items():
        pipe = cls.from_pretrained(make_folder(spec), residency="staged")
        for comp in (pipe.text_encoder, pipe.transformer, pipe.vae):
            comp.on_load.append(lambda m, name=comp.name: loads.append(name))
        pipes[task] = pipe
    return pipes, loads


def _call(pipe, task: str, overrides: dict):
    kw = dict(BASE, prompt="a cat")
    if task == "t2v":
        kw["num_frames"] = 9
    if task == "i2v":
        kw.update(num_frames=9, image=_image())
    if task == "v2v":
        kw.update(video=[_image(i) for i in range(9)], strength=0.8)
    kw.update(overrides)
    return pipe(**kw)


@pytest.mark.parametrize(
    ("task", "overrides", "error", "names"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_call_is_refused_before_any_work(staged, task, overrides, error, names):
    pipes, loads = staged
    loads.clear()
    with pytest.raises(Exception) as info:
        _call(pipes[task], task, overrides)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert re.search(names, message), message
    assert "\n" not in message
    assert loads == [], f"work was done before the refusal: loaded {loads}"


def test_at_least_thirty_distinct_cases():
    assert len({c[0] for c in CASES}) == len(CASES) >= 30


def test_callback_returning_no_dict_names_the_callback(staged):
    pipes, _ = staged
    with pytest.raises(
        TypeError, match=r"callback_on_step_end=.*must return a dict, returned NoneType"
    ):
        _call(pipes["t2v"], "t2v", dict(callback_on_step_end=lambda *a: None))
    with pytest.raises(ValueError, match=r"callback_on_step_end=.*returned key\(s\) \['noise'\]"):
        _call(pipes["t2v"], "t2v", dict(callback_on_step_end=lambda p, i, t, kw: {"noise": 1}))


# ---- construction and folders ----------------------------------------------------------------


def _copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "model")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt(tmp_path, folder, how: str):
    root = _copy(folder, tmp_path)
    if how == "no-text-encoder-config":
        (root / "text_encoder" / "config.json").unlink()
    elif how == "truncated-transformer":
        _truncate(root / "transformer" / "diffusion_pytorch_model.safetensors")
    elif how == "truncated-text-encoder":
        _truncate(root / "text_encoder" / "model.safetensors")
    elif how == "garbage-vae-weights":
        (root / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"\xff" * 64)
    elif how == "bad-transformer-json":
        (root / "transformer" / "config.json").write_text("{not json")
    elif how == "no-scheduler-config":
        (root / "scheduler" / "scheduler_config.json").unlink()
    elif how == "no-tokenizer":
        for f in (root / "tokenizer").iterdir():
            f.unlink()
    elif how == "bin-weights-only":
        (root / "vae" / "diffusion_pytorch_model.safetensors").rename(
            root / "vae" / "diffusion_pytorch_model.bin"
        )
    elif how == "unknown-class":
        index = json.loads((root / "model_index.json").read_text())
        index["_class_name"] = "StableDiffusionPipeline"
        (root / "model_index.json").write_text(json.dumps(index))
    return root


FOLDER_CASES = [
    ("no-text-encoder-config", FileNotFoundError, r"text_encoder/config\.json: file not found"),
    (
        "truncated-transformer",
        ValueError,
        r"transformer/diffusion_pytorch_model\.safetensors: truncated safetensors",
    ),
    ("truncated-text-encoder", ValueError, r"text_encoder/model\.safetensors: truncated"),
    ("garbage-vae-weights", ValueError, r"vae/diffusion_pytorch_model\.safetensors: corrupt"),
    ("bad-transformer-json", ValueError, r"transformer/config\.json: not valid JSON"),
    ("no-scheduler-config", FileNotFoundError, r"scheduler/scheduler_config\.json: file not found"),
    ("no-tokenizer", FileNotFoundError, r"tokenizer: no tokenizer"),
    (
        "bin-weights-only",
        FileNotFoundError,
        r"vae/diffusion_pytorch_model\.safetensors: no weights.*\.bin",
    ),
    ("unknown-class", ValueError, r"_class_name='StableDiffusionPipeline'"),
]


@pytest.mark.parametrize(("how", "error", "names"), FOLDER_CASES, ids=[c[0] for c in FOLDER_CASES])
def test_bad_folder_is_named_with_its_path(make_folder, tmp_path, how, error, names):
    root = _corrupt(tmp_path, make_folder(T2V), how)
    with pytest.raises(Exception) as info:
        TextToVideoPipeline.from_pretrained(root)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert re.search(names, str(info.value)), str(info.value)


API_CASES = [
    ("torch-dtype-name", dict(torch_dtype="fp8"), ValueError, "torch_dtype='fp8'"),
    ("torch-dtype-int", dict(torch_dtype=torch.int8), ValueError, "torch_dtype=torch.int8"),
    ("torch-dtype-number", dict(torch_dtype=5), ValueError, "torch_dtype=5"),
    ("residency", dict(residency="gpu"), ValueError, "residency='gpu'"),
    ("sampler", dict(sampler="euler"), ValueError, "sampler='euler'"),
    ("device", dict(device="tpu0"), ValueError, "device='tpu0'"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "names"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_bad_from_pretrained_arguments(make_folder, kwargs, error, names):
    with pytest.raises(Exception) as info:
        TextToVideoPipeline.from_pretrained(make_folder(T2V), **kwargs)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert re.search(names, str(info.value)), str(info.value)


def test_wrong_task_for_the_folder_names_folder_channels_and_valid_task(make_folder):
    folder = make_folder(I2V)
    with pytest.raises(ValueError) as info:
        TextToVideoPipeline.from_pretrained(folder)
    message = str(info.value)
    assert f"task='t2v': {folder} holds a transformer with in_channels=8" in message
    assert "runs task 'i2v'" in message and "needs in_channels=4" in message


def test_missing_folder_and_absent_repo_id(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="model='/nonexistent/model': model folder not found"
    ):
        TextToVideoPipeline.from_pretrained("/nonexistent/model")
    with pytest.raises(FileNotFoundError, match=r"model='org/absent': not a local folder.*cache"):
        TextToVideoPipeline.from_pretrained("org/absent", cache_dir=tmp_path)


def test_bad_pipeline_method_arguments(staged, tmp_path):
    pipes, _ = staged
    pipe = pipes["t2v"]
    frames = torch.zeros(1, 9, 3, 16, 32)
    with pytest.raises(ValueError, match="device='tpu0'"):
        pipe.to("tpu0")
    with pytest.raises(TypeError, match="to=5"):
        pipe.to(5)
    with pytest.raises(ValueError, match=r"path='.*x\.avi': the output must end in \.mp4 or \.gif"):
        pipe.save_video(frames, tmp_path / "x.avi")
    with pytest.raises(ValueError, match=r"fps=0: expected a finite number > 0"):
        pipe.save_video(frames, tmp_path / "x.mp4", fps=0)
    with pytest.raises(ValueError, match="option='foo'"):
        pipe.set_vae_runtime(foo=1)
    with pytest.raises(FileNotFoundError, match="LoRA weights not found"):
        pipe.load_lora_weights(tmp_path / "missing")
    assert not any(tmp_path.iterdir())  # nothing was written


def test_image_modes_are_converted_by_bit_depth_not_clipped():
    from cogvx.infer.pipelines.processing import image_to_unit

    sixteen = Image.fromarray(np.full((16, 32), 32768, dtype=np.uint16))  # mode I;16
    assert sixteen.mode.startswith("I")
    x = image_to_unit(sixteen, 16, 32)
    assert x.shape == (3, 16, 32) and abs(float(x.mean()) - 32768 / 65535) < 1e-4  # not white
    half = image_to_unit(Image.fromarray(np.full((16, 32, 3), 128, np.uint8)).convert("P"), 16, 32)
    assert abs(float(half.mean()) - 128 / 255) < 2 / 255  # palette -> RGB
    la = Image.fromarray(np.full((16, 32, 2), 64, np.uint8), mode="LA")
    assert abs(float(image_to_unit(la, 16, 32).mean()) - 64 / 255) < 1e-6
    cmyk = Image.new("CMYK", (32, 16), (0, 0, 0, 0))  # no ink: white
    assert float(image_to_unit(cmyk, 16, 32).min()) == 1.0
    stored = np.zeros((32, 16, 3), np.uint8)  # stored portrait: top half white
    stored[:16] = 255
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees clockwise to display
    shown = image_to_unit(Image.open(_saved_jpeg(Image.fromarray(stored), exif)), 16, 32)
    # displayed landscape: the white half is on the right (not squashed into the top rows)
    assert float(shown[:, :, 20:].mean()) > 0.9 and float(shown[:, :, :12].mean()) < 0.1


def _saved_jpeg(image, exif):
    import io

    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    buf.seek(0)
    return buf
