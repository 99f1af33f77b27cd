"""The demo's model without the page: a run folder per request, refusals, prompt upsampling, CLI."""

from __future__ import annotations

import json

import pytest

from cogvx.captioner import PromptUpsampler
from cogvx.cli.main import main as cogvx
from cogvx.demo.generation import DemoModel, GenerationRequest, RequestError
from cogvx.infer import default_model_dir
from cogvx.videoio import read_video

REPLY = (
    "A small red circle sits on a plain grey background and slides steadily from the left edge of "
    "the frame towards the right edge, keeping its size and colour, while the camera stays still "
    "and nothing else in the scene moves."
)


class FixedReply:
    """A chat backend standing in for an endpoint: always the same description."""

    name = "fixed-reply"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, conversations, *, max_new_tokens, temperature, top_p):
        self.calls += 1
        return [REPLY for _ in conversations]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    backend = FixedReply()
    m = DemoModel(
        default_model_dir(),
        tmp_path_factory.mktemp("out"),
        shipped=True,
        upsampler=PromptUpsampler(backend),
    )
    m.backend = backend
    return m


def test_a_request_writes_one_complete_run_folder(model) -> None:
    steps_seen = []

    class Job:  # the worker's job interface: step() and stage()
        def step(self, done, total):
            steps_seen.append((done, total))

        def stage(self, text):
            pass

    request = GenerationRequest(task="t2v", prompt="a red circle moves to the right", seed=5,
                                steps=4, num_frames=17, size="64x64")  # fmt: skip
    result = model.run(request, Job())
    assert steps_seen == [(1, 4), (2, 4), (3, 4), (4, 4)]  # one progress event per step
    assert read_video(result.video).num_frames == 17
    assert read_video(result.gif).num_frames == 17
    entry = json.loads(result.record_file.read_text())["video.mp4"]
    assert entry == result.record
    assert (entry["seed"], entry["steps"], entry["num_frames"], entry["task"]) == (5, 4, 17, "t2v")
    assert entry["original_prompt"] is None
    assert result.folder.parent == model.output_dir


def test_upsampling_rewrites_the_prompt_and_keeps_the_original(model) -> None:
    request = GenerationRequest(task="t2v", prompt="a red circle moves to the right", seed=1,
                                steps=2, upsample=True)  # fmt: skip
    calls = model.backend.calls
    result = model.run(request)
    assert model.backend.calls == calls + 1
    assert result.record["prompt"] == REPLY
    assert result.record["original_prompt"] == "a red circle moves to the right"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_frames": 10}, "frames=10: one of 9, 17"),
        ({"size": "60x60"}, "size='60x60': one of"),
        ({"prompt": "  "}, "prompt: required"),
        ({"steps": 0}, r"steps=0: an integer in \[1, 200\]"),
        ({"seed": -1}, "seed=-1"),
        ({"guidance_scale": float("nan")}, "guidance=nan"),
        ({"task": "i2v"}, "task='i2v': this model runs t2v, v2v"),
        ({"task": "v2v"}, "video: required for v2v"),
    ],
)
def test_bad_requests_are_refused_by_name_before_any_work(model, change, message) -> None:
    before = sorted(model.output_dir.iterdir())
    request = GenerationRequest(**{"task": "t2v", "prompt": "a blue square sinks", **change})
    with pytest.raises(RequestError, match=message):
        model.run(request)
    assert sorted(model.output_dir.iterdir()) == before


def test_cli_usage_errors_are_one_line_exit_2(tmp_path, capsys) -> None:
    cases = [
        (["--model", str(tmp_path / "missing")], "--model="),
        (["--port", "0"], "--port=0: expected an integer in [1, 65535]"),
        (["--queue-size", "-1"], "--queue-size=-1"),
        (["--upsample-endpoint", "ftp://x"], "--upsample-endpoint=ftp://x: a URL starting"),
        (["--output-dir", str(tmp_path / "f")], "--output-dir="),
    ]
    (tmp_path / "f").write_text("a file")
    cases.append((["--upsample-model", str(tmp_path)], "a folder with config.json"))
    for args, expected in cases:
        out = ["--output-dir", str(tmp_path / "out")] if "--output-dir" not in args else []
        assert cogvx(["demo", *out, *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("cogvx demo: error: ") and expected in err[0]
    assert not (tmp_path / "out").exists()  # refused before anything was written


def _tab_ids(app) -> set[str]:
    import gradio as gr

    return {block.id for block in app.blocks.values() if isinstance(block, gr.Tab)}


def test_the_page_has_a_tab_per_task_the_model_runs(model) -> None:
    from cogvx.demo.app import build_app
    from cogvx.demo.worker import GenerationQueue

    q = GenerationQueue(0)
    assert _tab_ids(build_app(model, q)) == {"t2v", "v2v"}
    q.close(5)


def test_an_image_to_video_model_gets_the_image_tab_and_checks_its_upload(
    make_folder, tmp_path
) -> None:
    import numpy as np

    from cogvx.demo.app import build_app
    from cogvx.demo.uploads import UploadError
    from cogvx.demo.worker import GenerationQueue
    from cogvx.videoio import write_image

    folder = make_folder({"name": "demo-i2v", "task": "i2v"})
    m = DemoModel(folder, tmp_path / "out")
    assert m.tasks == ("i2v",)
    q = GenerationQueue(0)
    assert _tab_ids(build_app(m, q)) == {"i2v"}
    q.close(5)
    image = write_image(tmp_path / "first.png", np.full((40, 56, 3), 200, np.uint8))
    frames = m.choices.default_frames
    result = m.run(GenerationRequest(task="i2v", prompt="a cat", image=str(image), steps=2))
    assert read_video(result.video).num_frames == frames
    assert result.record["image"] == "first.png" and result.record["task"] == "i2v"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(UploadError, match=r"'broken\.png' could not be decoded"):
        m.run(GenerationRequest(task="i2v", prompt="a cat", image=str(broken), steps=2))
    assert len([p for p in (tmp_path / "out").iterdir()]) == 1  # the refused one wrote nothing
