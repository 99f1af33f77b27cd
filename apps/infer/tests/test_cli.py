"""``cogvx generate``: config composition (every config), the command, the dispatcher, batch mode,
multirun, outputs and their records, the default model, start-up imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Lightning adds a StreamHandler bound to the sys.stderr of the moment it is first imported; import
# it at collection time, not inside a test whose captured stderr is closed afterwards.
import lightning  # noqa: F401
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cogvx.cli.usage import UsageError
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
    cases = {
        "sampling.stepz=3": r"^sampling\.stepz=3: .*valid keys under sampling: seed",
        "sampling.steps=many": r"^sampling\.steps=many: .*could not be converted to Integer",
        "+sampling.foo=1": r"^sampling\.foo=1: 'sampling' has no such key",
        "+sampling.sampler=dpm": r"^sampling\.sampler=dpm: 'sampling' has no such key",
        "+extra=1": r"^extra=1: the config has no such key",
        "preset=nonexistent": r"^preset=nonexistent: choose from .*cogvideox_2b",
        "sampling.num_frames=0": r"^sampling\.num_frames=0: an integer >= 1",
        "sampling.guidance_scale=nan": r"^sampling\.guidance_scale=nan: a finite number",
        "pipeline.sampler=euler": r"^pipeline\.sampler=euler: choose from ddim, dpm",
    }
    for override, pattern in cases.items():
        with pytest.raises(UsageError, match=pattern):
            compose_config([override])
    assert compose_config([]).pipeline.model is None  # None: the shipped default model


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
    files = [out, out.with_suffix(".gif"), out.with_suffix(".png"), tmp_path / "generation.json"]
    assert captured.out.split() == [str(p) for p in files]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)
    for stage in ("text encoding", "denoising", "decoding", "peak RSS"):
        assert stage in captured.err
    info = probe_video(out)
    assert (info.num_frames, info.height, info.width) == (9, 16, 32)
    assert info.fps == pytest.approx(8.0)  # CogVideoX 1.0 family rate
    assert probe_video(out.with_suffix(".gif")).num_frames == 9
    record = json.loads((tmp_path / "generation.json").read_text())["out.mp4"]
    assert record["prompt"] == "a panda, playing = guitar" and record["seed"] == 1
    assert (record["steps"], record["sampler"], record["guidance_scale"]) == (2, "dpm", 6.0)
    assert record["guidance_schedule"] == "dynamic" and record["negative_prompt"] is None
    assert Path(record["model"]) == folder.resolve() and "cogvx-infer" in record["versions"]

    from cogvx.cli.main import main as cogvx_main

    before = {p: p.stat().st_mtime_ns for p in files}
    argv = ["generate", "a dog", "--model", str(folder), "--output", str(out), *SMALL]
    assert cogvx_main(argv) == 2  # an earlier output is never replaced silently
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pass --overwrite" in err[0] and str(out) in err[0]
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert cogvx_main([*argv, "--overwrite"]) == 0
    assert json.loads((tmp_path / "generation.json").read_text())["out.mp4"]["prompt"] == "a dog"
    # a second video in the same folder adds its own entry; the first one's stays
    argv = ["generate", "a cow", "--model", str(folder), "--output", str(tmp_path / "b.mp4")]
    assert cogvx_main([*argv, *SMALL]) == 0
    entries = json.loads((tmp_path / "generation.json").read_text())
    assert {k: v["prompt"] for k, v in entries.items()} == {"out.mp4": "a dog", "b.mp4": "a cow"}


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
                str(tmp_path / "e.gif"),
                "--frames",
                "10",
                "--height",
                "16",
                "--width",
                "32",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cogvx generate: error: --frames=10: ")
    assert "nearest valid value is 9" in err[0]
    assert cogvx_main(["generate", "a cat", "--model", str(tmp_path / "none")]) == 2
    assert "--model=" in capsys.readouterr().err


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
    with pytest.raises(UsageError, match="--image: required"):
        main(["a cat", "--model", str(folder), "--output", str(tmp_path / "o.mp4"), *SMALL])


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
    assert json.loads((out_dir / "0001.json").read_text())["seed"] == 7
    # a rerun skips the complete videos (resume): nothing is generated or rewritten
    before = {p: p.stat().st_mtime_ns for p in out_dir.iterdir()}
    argv = ["--prompt-file", str(prompts), "--model", str(folder), "--output", str(out_dir)]
    assert main([*argv, "batch.accelerator=cpu", "batch.devices=1", *SMALL]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "skipping 2 complete video(s)" in captured.err
    assert {p: p.stat().st_mtime_ns for p in out_dir.iterdir()} == before
    # other settings for the same folder would replace them: refused
    with pytest.raises(UsageError, match=r"0000\.mp4 exists and was made with another"):
        main([*argv, *SMALL, "--steps", "3"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n{"text": "y"}\n')
    with pytest.raises(UsageError, match=r"bad.jsonl:2"):
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


def test_multirun_over_seeds_one_folder_per_job(make_folder, tmp_path, capsys):
    folder = make_folder(T2V)
    sweep = tmp_path / "sweep"
    argv = ["a cat", "--model", str(folder), "--seed", "1,2", f"hydra.sweep.dir={sweep}", *SMALL]
    assert main(argv) == 0
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    for job, seed in zip(jobs, (1, 2), strict=True):
        assert (job / "video.mp4").is_file() and (job / ".hydra" / "config.yaml").is_file()
        record = json.loads((job / "generation.json").read_text())["video.mp4"]
        assert record["seed"] == seed and record["prompt"] == "a cat"
    assert str(jobs[1] / "video.mp4") in capsys.readouterr().out
    # every job is checked before the first runs: a bad value in job 2 leaves nothing behind
    bad = tmp_path / "bad"
    with pytest.raises(UsageError, match=r"sampling\.steps=0"):
        main(
            ["a cat", "--model", str(folder), "-m", "sampling.steps=2,0", f"hydra.sweep.dir={bad}"]
        )
    assert not bad.exists()


def test_default_model_is_the_shipped_folder(make_folder, tmp_path, monkeypatch, capsys):
    import cogvx.infer
    from cogvx.cli.main import main as cogvx_main

    assert (
        cogvx.infer.default_model_dir() == Path(cogvx.infer.__file__).parent / "models" / "shapes"
    )
    monkeypatch.setattr(cogvx.infer, "default_model_dir", lambda: tmp_path / "absent")
    assert cogvx_main(["generate", "a cat", "-o", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "default shapes model is missing" in err[0] and "--model" in err[0]
    assert list(tmp_path.iterdir()) == []
    folder = make_folder(T2V)
    monkeypatch.setattr(cogvx.infer, "default_model_dir", lambda: folder)
    assert cogvx_main(["generate", "a cat", "-o", str(tmp_path / "x.mp4"), *SMALL]) == 0
    assert (tmp_path / "x.mp4").is_file()
    # Without --steps: the shipped model samples with the steps it was measured at (25), a
    # --model folder with the reference's 50.
    no_steps = [a for a in SMALL if a not in ("--steps", "2")]
    for extra, name, want in [([], "d.mp4", 25), (["--model", str(folder)], "m.mp4", 50)]:
        argv = ["generate", "a cat", "-o", str(tmp_path / name), *extra, *no_steps]
        assert cogvx_main(argv) == 0
        record = json.loads((tmp_path / "generation.json").read_text())[name]
        assert record["steps"] == want
    assert cogvx.infer.DEFAULT_MODEL_STEPS == 25


def test_generate_help_imports_no_heavy_module():
    """``cogvx generate --help`` must not import torch, transformers, peft or lightning."""
    code = (
        "import sys\n"
        "from cogvx.cli.main import main\n"
        "assert main(['generate', '--help']) == 0\n"
        "heavy = ('torch', 'transformers', 'peft', 'lightning', 'diffusers', 'hydra')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: cogvx generate" in out.stdout
    assert out.stderr.strip() == "[]"


def test_generate_run_imports_no_compiler_or_transformers_modeling(tmp_path):
    """A whole ``cogvx generate`` run on the shipped model stays off transformers' modeling code
    and torch's compiler stack (about 11 s of the README command's start-up; docs/pipelines.md
    §Text encoder)."""
    code = (
        "import sys\n"
        "from cogvx.cli.main import main\n"
        f"argv = ['generate', 'a red circle moves up', '--steps', '2', '-o', {str(tmp_path / 'v.mp4')!r}]\n"
        "assert main([*argv, '--no-progress']) == 0\n"
        "heavy = ('torch._dynamo', 'torch._inductor', 'sympy', 'transformers.modeling_utils')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (tmp_path / "v.mp4").is_file()
    assert out.stderr.strip().splitlines()[-1] == "[]"
