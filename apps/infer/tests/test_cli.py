"""``cogvx generate``: config composition (every config), the command, the dispatcher, batch mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cogvx.infer.cli import compose_config, main

T2V = dict(name="t2v-rope-dpm", rope=True, sampler="dpm", tokenizer="json", snr_shift=1.0)
I2V = dict(
    name="i2v-rope-dpm", task="i2v", rope=True, sampler="dpm", tokenizer="spiece", snr_shift=1.0
)
SMALL = [
    "--frames",
    "9",
    "--height",
    "16",
    "--width",
    "32",
    "--steps",
    "2",
    "sampling.max_sequence_length=12",
    "--no-progress",
]


@pytest.mark.parametrize("preset", [None, "cogvideox_2b", "cogvideox_5b", "cogvideox1_5_5b"])
def test_every_config_composes_and_instantiates(make_folder, preset):
    folder = make_folder(T2V)
    overrides = [f"pipeline.model={folder}"] + ([f"preset={preset}"] if preset else [])
    cfg = compose_config(overrides)
    assert cfg.pipeline._target_ == "cogvx.infer.build_pipeline"
    if preset == "cogvideox_5b":
        assert cfg.pipeline.sampler == "dpm" and cfg.sampling.guidance_schedule == "dynamic"
    if preset == "cogvideox1_5_5b":
        assert (cfg.sampling.height, cfg.sampling.width, cfg.output.fps) == (768, 1360, 16)
    pipe = instantiate(cfg.pipeline)
    assert pipe.task == "t2v"
    assert pipe.scheduler.sampler == (cfg.pipeline.sampler or "dpm")
    OmegaConf.to_object(cfg)  # the schema accepts the composed values


def test_typos_and_bad_types_fail_at_compose_time():
    with pytest.raises(ConfigCompositionException):
        compose_config(["pipeline.model=x", "sampling.stepz=3"])
    with pytest.raises(ConfigCompositionException):
        compose_config(["pipeline.model=x", "sampling.steps=many"])
    with pytest.raises(ValueError, match=r"pipeline\.model"):
        compose_config([])


def test_generate_writes_the_video_and_reports_stages(make_folder, tmp_path, capsys):
    from cogvx.videoio import probe_video

    folder = make_folder(T2V)
    out = tmp_path / "out.mp4"
    code = main(
        [
            "a panda, playing = guitar",
            "--model",
            str(folder),
            "--seed",
            "1",
            "--output",
            str(out),
            "--dynamic-cfg",
            *SMALL,
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    for stage in ("text encoding", "denoising", "decoding", "peak RSS"):
        assert stage in captured.err
    info = probe_video(out)
    assert (info.num_frames, info.height, info.width) == (9, 16, 32)
    assert info.fps == pytest.approx(8.0)  # CogVideoX 1.0 family rate


def test_generate_through_the_dispatcher_and_its_errors(make_folder, tmp_path, capsys):
    from cogvx.cli.main import main as cogvx_main

    folder = make_folder(T2V)
    out = tmp_path / "d.gif"
    assert (
        cogvx_main(
            [
                "generate",
                "a cat",
                "--model",
                str(folder),
                "--output",
                str(out),
                "--staged",
                "--sampler",
                "ddim",
                *SMALL,
            ]
        )
        == 0
    )
    assert out.is_file()
    capsys.readouterr()
    assert (
        cogvx_main(
            [
                "generate",
                "a cat",
                "--model",
                str(folder),
                "--output",
                str(out),
                "--frames",
                "10",
                "--height",
                "16",
                "--width",
                "32",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nearest valid value is 9" in err[0]
    assert cogvx_main(["generate", "a cat", "--model", str(tmp_path / "none")]) == 1
    assert "model folder not found" in capsys.readouterr().err


def test_image_to_video_command(make_folder, tmp_path, capsys):
    from cogvx.videoio import probe_video, write_image

    folder = make_folder(I2V)
    image = tmp_path / "first.png"
    write_image(image, np.random.default_rng(0).integers(0, 255, (16, 32, 3), dtype=np.uint8))
    out = tmp_path / "i2v.mp4"
    assert (
        main(["a cat", "--model", str(folder), "--image", str(image), "--output", str(out), *SMALL])
        == 0
    )
    assert probe_video(out).num_frames == 9
    with pytest.raises(ValueError, match="needs --image"):
        main(["a cat", "--model", str(folder), "--output", str(out), *SMALL])


def test_prompt_file_batch_with_lightning_on_cpu(make_folder, tmp_path, capsys):
    from cogvx.videoio import probe_video

    folder = make_folder(T2V)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"prompt": "a red car"},
                {"prompt": "a cat", "seed": 7, "negative_prompt": "blurry"},
            ]
        )
    )
    out_dir = tmp_path / "batch"
    code = main(
        [
            "--prompt-file",
            str(prompts),
            "--model",
            str(folder),
            "--output",
            str(out_dir),
            "batch.accelerator=cpu",
            "batch.devices=1",
            *SMALL,
        ]
    )
    assert code == 0
    written = capsys.readouterr().out.split()
    assert written == [str(out_dir / "0000.mp4"), str(out_dir / "0001.mp4")]
    assert all(probe_video(p).num_frames == 9 for p in written)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n{"text": "y"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        main(["--prompt-file", str(bad), "--model", str(folder), *SMALL])


def test_video_to_video_command(make_folder, tmp_path):
    from cogvx.videoio import probe_video, write_video

    folder = make_folder(
        dict(name="v2v-sincos-ddim", task="v2v", sampler="ddim", tokenizer="spiece")
    )
    source = tmp_path / "in.mp4"
    rng = np.random.default_rng(1)
    write_video(source, rng.integers(0, 255, (9, 16, 32, 3), dtype=np.uint8), 8)
    out = tmp_path / "v2v.mp4"
    assert (
        main(
            [
                "a cat",
                "--model",
                str(folder),
                "--video",
                str(source),
                "--strength",
                "0.5",
                "--output",
                str(out),
                "--height",
                "16",
                "--width",
                "32",
                "--steps",
                "4",
                "sampling.max_sequence_length=12",
                "--no-progress",
            ]
        )
        == 0
    )
    assert probe_video(out).num_frames == 9
