import json

import numpy as np
import pytest

from cogvx.captioner.chat import LocalChatModel
from cogvx.captioner.dense import DenseCaptioner, Summarizer, TransformersImageCaptioner
from cogvx.captioner.filters import ClipFilter, FilterConfig
from cogvx.captioner.pipeline import (
    CaptionConfig,
    CaptionPipeline,
    RunPaths,
    build_report,
    merge_parts,
    shard,
)
from cogvx.evals.flow import DISFlow
from cogvx.videoio import read_manifest, write_image

MOVING = {f"clips/move{i}.mp4" for i in range(4)}
FCFG = FilterConfig(min_motion=1.0, max_text=0.15, min_seconds=1.0)


class FakeImageCaptioner:
    name = "fake-image"

    def __init__(self, fail_on_bright=False):
        self.frames_seen = 0
        self.fail_on_bright = fail_on_bright

    def __call__(self, images):
        self.frames_seen += len(images)
        if self.fail_on_bright and any(im.mean() > 150 for im in images):
            raise RuntimeError("model blew up on a bright frame")
        return [
            f"a square moves right over a {'light' if im.mean() > 100 else 'dark'} background"
            for im in images
        ]


class Interrupt:
    """An image captioner that dies (like Ctrl-C or a kill) on its n-th call."""

    name = "interrupting"

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, images):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return ["a square moves"] * len(images)


def _pipeline(image_captioner, *, summarizer=None, batch=2, workers=1):
    return CaptionPipeline(
        ClipFilter(FCFG, flow=DISFlow()),
        DenseCaptioner(image_captioner, summarizer),
        CaptionConfig(clips_per_batch=batch, workers=workers),
    )


def _lines(path):
    return (
        [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    )


def test_end_to_end_with_tiny_models(clip_folder, tmp_path, captioner_dir, chat_lm_dir):
    image = TransformersImageCaptioner(captioner_dir, batch_size=4, max_new_tokens=6)
    summarizer = Summarizer(LocalChatModel(chat_lm_dir, batch_size=4), max_new_tokens=20)
    pipe = _pipeline(image, summarizer=summarizer, batch=3, workers=2)
    out = tmp_path / "manifest.jsonl"
    report = pipe.run(clip_folder, out, progress=False)

    records = read_manifest(out)  # validates the schema
    assert {r.path for r in records} == MOVING
    for r in records:
        assert r.type == "video" and (r.frames, r.height, r.width, r.fps) == (24, 96, 128, 8.0)
        assert 1 <= len(r.caption.split()) <= 100 and not r.caption.lower().startswith("the video")
        assert set(r.scores) >= {"motion", "motion_top", "text", "cuts", "seconds"}
        assert r.scores["motion_top"] > 1.0
        assert sorted(r.extra["frame_captions"]) == ["0", "2"]  # 3 s clip, a frame every 2 s

    rejects = {x["path"]: x for x in _lines(RunPaths.for_output(out).rejects)}
    assert (
        rejects["clips/still.mp4"]["kind"] == "filtered"
        and "low_motion" in rejects["clips/still.mp4"]["failed"]
    )
    assert "text" in rejects["clips/page.mp4"]["failed"]
    for bad in ("clips/corrupt.mp4", "clips/empty.mp4"):
        assert (
            rejects[bad]["kind"] == "error"
            and rejects[bad]["stage"] == "read"
            and rejects[bad]["reason"]
        )

    assert report["accepted"] == 4 and report["filtered"] == 2 and report["errors"] == 2
    assert (
        report["removed_by_filter"]["low_motion"] >= 1 and report["removed_by_filter"]["text"] == 1
    )
    assert report["errors_by_stage"] == {"read": 2}
    assert report["this_run"]["skipped"] == 0
    assert json.loads(RunPaths.for_output(out).report.read_text())["accepted"] == 4

    # a second run has nothing to do
    again = pipe.run(clip_folder, out, progress=False)
    assert again["this_run"]["skipped"] == 8 and again["this_run"]["accepted"] == 0
    assert len(read_manifest(out)) == 4


def test_resume_after_crash_loses_nothing_and_redoes_nothing(clip_folder, tmp_path):
    out = tmp_path / "m.jsonl"
    with pytest.raises(KeyboardInterrupt):
        _pipeline(Interrupt(2), batch=2).run(clip_folder, out, progress=False)
    first = read_manifest(out)
    assert len(first) == 2  # the first batch was written before the crash
    # a crash in the middle of a line leaves a partial line: it must not count or break the resume
    with out.open("a") as f:
        f.write('{"path": "clips/move3.mp4", "capt')
    fake = FakeImageCaptioner()
    report = _pipeline(fake, batch=2).run(clip_folder, out, progress=False)
    records = read_manifest(out)
    assert [r.path for r in records[:2]] == [r.path for r in first]  # kept as they were
    assert {r.path for r in records} == MOVING and len(records) == 4
    assert fake.frames_seen == 2 * 2  # only the two clips not done before, two frames each
    assert report["accepted"] == 4 and report["this_run"]["accepted"] == 2


def test_caption_errors_are_isolated_per_clip(clip_folder, tmp_path):
    out = tmp_path / "m.jsonl"
    (clip_folder / "corrupt.mp4").unlink()
    (clip_folder / "empty.mp4").unlink()
    write_image(
        clip_folder / "bright.png", np.full((64, 96, 3), 230, np.uint8)
    )  # an image, kept by the filters
    report = _pipeline(FakeImageCaptioner(fail_on_bright=True), batch=8).run(
        clip_folder, out, progress=False
    )
    rejects = {x["path"]: x for x in _lines(RunPaths.for_output(out).rejects)}
    assert rejects["clips/bright.png"]["stage"] == "caption"
    assert "blew up" in rejects["clips/bright.png"]["reason"]
    assert {r.path for r in read_manifest(out)} == MOVING  # the rest of the batch went through
    assert report["errors_by_stage"] == {"caption": 1}


def test_images_and_empty_and_long_outputs(tmp_path, synth):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_image(folder / "photo.png", synth.moving(1)[0])
    synth.write(folder / "a.mp4", synth.moving(24, speed=3))
    synth.write(folder / "b.mp4", synth.moving(24, speed=4, seed=5))

    class Backend:
        name = "scripted"

        def complete(self, conversations, **kw):
            out = []
            for c in conversations:
                notes = c[-1]["content"]
                out.append(
                    ""
                    if '"2"' not in notes
                    else "The video shows " + "a square moving right. " * 50
                )
            return out

    pipe = CaptionPipeline(
        ClipFilter(FCFG, flow=DISFlow()),
        DenseCaptioner(FakeImageCaptioner(), Summarizer(Backend())),
        CaptionConfig(clips_per_batch=4),
    )
    out = tmp_path / "m.jsonl"
    report = pipe.run(folder, out, progress=False)
    records = {r.path: r for r in read_manifest(out)}
    assert set(records) == {"clips/a.mp4", "clips/b.mp4"}
    r = records["clips/a.mp4"]
    assert "caption_truncated" in r.tags and r.extra["caption_notes"]["removed_opener"] is True
    assert len(r.caption.split()) <= 100 and r.caption.startswith("A square")
    rejects = {x["path"]: x for x in _lines(RunPaths.for_output(out).rejects)}
    assert rejects["clips/photo.png"]["reason"] == "summarizer returned empty text"
    assert report["captions_truncated"] == 2 and report["openers_removed"] == 2


def test_image_records(tmp_path, synth):
    folder = tmp_path / "imgs"
    folder.mkdir()
    write_image(folder / "x.png", synth.moving(1, h=64, w=80)[0])
    out = tmp_path / "m.jsonl"
    _pipeline(FakeImageCaptioner()).run(folder, out, progress=False)
    [rec] = read_manifest(out)
    assert (rec.type, rec.frames, rec.height, rec.width, rec.fps) == ("image", 1, 64, 80, None)
    assert "motion" not in rec.scores and "seconds" not in rec.scores


def test_retry_errors(clip_folder, tmp_path, synth):
    out = tmp_path / "m.jsonl"
    pipe = _pipeline(FakeImageCaptioner())
    pipe.run(clip_folder, out, progress=False)
    synth.write(
        clip_folder / "corrupt.mp4", synth.moving(24, speed=5, seed=9)
    )  # the file got fixed
    assert (
        pipe.run(clip_folder, out, progress=False)["this_run"]["accepted"] == 0
    )  # errors are done by default
    report = pipe.run(clip_folder, out, progress=False, retry_errors=True)
    assert (
        report["this_run"]["accepted"] == 1 and report["this_run"]["errors"] == 1
    )  # empty.mp4 fails again
    assert report["accepted"] == 5 and report["errors"] == 1  # latest status per clip


def test_sharded_runs_and_merge(clip_folder, tmp_path):
    single = tmp_path / "single" / "m.jsonl"
    _pipeline(FakeImageCaptioner()).run(clip_folder, single, progress=False)
    out = tmp_path / "sharded" / "m.jsonl"
    seen = []
    for rank in (0, 1):
        rep = _pipeline(FakeImageCaptioner()).run(
            clip_folder, out, rank=rank, world_size=2, progress=False
        )
        seen.append(
            rep["this_run"]["accepted"] + rep["this_run"]["filtered"] + rep["this_run"]["errors"]
        )
    assert seen == [4, 4]
    parts = RunPaths.for_output(out, 1, 2)
    assert parts.manifest.name == "m.part-00001-of-00002.jsonl" and parts.manifest.exists()
    assert build_report(out)["accepted"] == 4  # the report already sees all parts
    merged = merge_parts(out)
    assert (
        merged["accepted"] == 4
        and merged["filtered"] == 2
        and merged["errors"] == 2
        and merged["parts"] == []
    )
    assert {r.to_dict()["path"]: r.caption for r in read_manifest(out)} == {
        r.path: r.caption for r in read_manifest(single)
    }
    assert not parts.manifest.exists()
    # resuming after the merge skips everything
    assert (
        _pipeline(FakeImageCaptioner()).run(clip_folder, out, progress=False)["this_run"]["skipped"]
        == 8
    )


def test_shard_is_deterministic_round_robin():
    items = list(range(10))
    assert shard(items, 0, 3) == [0, 3, 6, 9] and shard(items, 2, 3) == [2, 5, 8]
    assert sorted(shard(items, 0, 2) + shard(items, 1, 2)) == items
    with pytest.raises(ValueError, match="rank"):
        shard(items, 3, 3)


def test_split_shots_in_run(tmp_path, synth):
    folder = tmp_path / "long"
    folder.mkdir()
    a = synth.moving(16, speed=3.0)
    b = 255 - synth.moving(16, speed=3.0, seed=4)[:, :, ::-1]
    synth.write(folder / "film.mp4", np.concatenate([a, b]))
    out = tmp_path / "m.jsonl"
    pipe = _pipeline(FakeImageCaptioner())
    pipe.run(
        folder, out, split_dir=tmp_path / "shots", progress=False, split_kwargs={"min_seconds": 1.0}
    )
    paths = sorted(r.path for r in read_manifest(out))
    assert paths == ["shots/film.shot000.mp4", "shots/film.shot001.mp4"]
    assert all(r.frames == 16 and r.scores["cuts"] == 0 for r in read_manifest(out))
    again = pipe.run(folder, out, split_dir=tmp_path / "shots", progress=False)
    assert again["this_run"]["skipped"] == 2


def test_split_dir_inside_the_input_folder_is_not_re_split(tmp_path, synth):
    folder = tmp_path / "long"
    folder.mkdir()
    a = synth.moving(16, speed=3.0)
    b = 255 - synth.moving(16, speed=3.0, seed=4)[:, :, ::-1]
    synth.write(folder / "film.mp4", np.concatenate([a, b]))
    out = tmp_path / "m.jsonl"
    pipe = _pipeline(FakeImageCaptioner())
    for _ in range(2):
        report = pipe.run(folder, out, split_dir=folder / "shots", progress=False)
    assert sorted(p.name for p in (folder / "shots").glob("*.mp4")) == [
        "film.shot000.mp4",
        "film.shot001.mp4",
    ]
    assert report["accepted"] == 2 and report["this_run"]["skipped"] == 2


def test_bad_arguments(tmp_path):
    pipe = _pipeline(FakeImageCaptioner())
    with pytest.raises(FileNotFoundError, match="input folder"):
        pipe.run(tmp_path / "missing", tmp_path / "m.jsonl")
    with pytest.raises(ValueError, match=r"\.jsonl"):
        RunPaths.for_output(tmp_path / "m.json")
    with pytest.raises(ValueError, match="every_seconds"):
        CaptionConfig(every_seconds=0)


def test_end_to_end_video_captioner_plugs_in(clip_folder, tmp_path):
    """Any ClipCaptioner (e.g. a video-language model) can replace frame captions + summary."""
    from cogvx.captioner.dense import CaptionResult, ClipCaptioner

    class VideoLM:
        name = "video-lm"

        def __init__(self):
            self.frame_counts = []

        def __call__(self, clips):
            self.frame_counts += [len(frames) for frames, _ in clips]
            return [
                CaptionResult(caption="A textured square slides to the right.", frame_captions={})
                for _ in clips
            ]

    vlm = VideoLM()
    assert isinstance(vlm, ClipCaptioner)
    out = tmp_path / "m.jsonl"
    pipe = CaptionPipeline(
        ClipFilter(FCFG, flow=DISFlow()), vlm, CaptionConfig(every_seconds=1.0, workers=1)
    )
    report = pipe.run(clip_folder, out, progress=False)
    records = read_manifest(out)
    assert {r.path for r in records} == MOVING
    assert all(
        r.caption == "A textured square slides to the right." and "frame_captions" not in r.extra
        for r in records
    )
    assert vlm.frame_counts == [3, 3, 3, 3]  # 24 frames at 8 fps, one per second
    assert report["captioner"] == "video-lm"
