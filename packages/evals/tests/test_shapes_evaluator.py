"""The shapes evaluator on clips drawn with OpenCV: exact on clean clips, stated accuracy when
perturbed (noise, blur, H.264), clear refusals for bad input."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cogvx.evals.shapes import (
    BACKGROUND_LEVELS,
    COLORS,
    MOTIONS,
    SHAPES,
    ShapesPrompt,
    caption,
    evaluate_shapes,
    measure_video,
    render_clip,
    score_video,
)
from cogvx.videoio import read_video, write_video

COMBOS = list(itertools.product(COLORS, SHAPES, MOTIONS))  # 90


def _clip(i: int, color: str, shape: str, motion: str) -> np.ndarray:
    """Clip i of a varied set: every background level and sizes from the 15% minimum to 35%."""
    size = (0.15, 0.25, 0.35)[i % 3]
    background = BACKGROUND_LEVELS[i % len(BACKGROUND_LEVELS)]
    travel = 0.0 if motion == "still" else (1 / 3, 0.5)[i % 2]
    return render_clip(color, shape, motion, size=size, travel=travel, background=background)


def _report(perturb, combos=COMBOS):
    items = [
        (perturb(_clip(i, c, s, m)), caption(c, s, m, i % 5)) for i, (c, s, m) in enumerate(combos)
    ]
    return evaluate_shapes(items)


def test_clean_clips_are_measured_exactly():
    report = _report(lambda v: v)
    assert report.n == 90
    wrong = [s.to_dict() for s in report.scores if not s.all_correct]
    assert wrong == []
    assert report.color_accuracy == report.shape_accuracy == report.motion_accuracy == 100.0
    travel = [abs(x) + abs(y) for s in report.scores for x, y in [s.measured.displacement]]
    moving = [t for t, (_, _, m) in zip(travel, COMBOS) if m != "still"]
    assert min(moving) == pytest.approx(1 / 3, abs=0.02)
    assert max(t for t, (_, _, m) in zip(travel, COMBOS) if m == "still") < 1e-6


def _noise(sigma: float):
    rng = np.random.default_rng(0)
    return lambda v: np.clip(v + rng.normal(0, sigma, v.shape), 0, 255).astype(np.uint8)


def _blur(sigma: float):
    return lambda v: np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in v])


# Measured on these 30-clip subsets (every third colour/shape/motion combination, fixed seed):
# 100% on all three for noise sigma 20, blur sigma 1.5, blur 1 + noise 10 and H.264 crf 28 (15
# clips); blur sigma 2 (2.5) rounds the 10-pixel shapes' corners: shape accuracy 90% (80%), the
# mistakes all on the smallest (15%) size. Colour and direction stay at 100% throughout.
@pytest.mark.parametrize(
    ("name", "perturb", "min_shape"),
    [
        ("noise20", _noise(20), 100.0),
        ("blur1.5", _blur(1.5), 100.0),
        ("blur1+noise10", lambda v: _noise(10)(_blur(1.0)(v)), 100.0),
        ("blur2", _blur(2.0), 80.0),
    ],
)
def test_perturbed_clips(name, perturb, min_shape):
    report = _report(perturb, COMBOS[::3])
    assert report.color_accuracy == 100.0, name
    assert report.motion_accuracy == 100.0, name
    assert report.shape_accuracy >= min_shape, name


def test_h264_round_trip(tmp_path):
    def through_mp4(v: np.ndarray) -> np.ndarray:
        path = write_video(tmp_path / "clip.mp4", v, fps=8, crf=28)
        return read_video(path).frames

    report = _report(through_mp4, COMBOS[1::6])
    assert report.n == 15
    assert report.all_accuracy == 100.0


def test_layouts_agree():
    clip = render_clip("cyan", "triangle", "up", size=0.3)
    ref = measure_video(clip)
    as_float = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255  # [F, 3, H, W]
    assert measure_video(as_float) == ref
    assert measure_video(as_float.numpy().astype(np.float64)) == ref
    assert measure_video(torch.from_numpy(clip)) == ref
    assert measure_video([Image.fromarray(f) for f in clip]) == ref


def test_report_counts_mistakes():
    clip = render_clip("red", "square", "left")
    report = evaluate_shapes(
        [
            (clip, "a red square moves to the left"),
            (clip, "a blue square moves to the left"),
            (clip, ShapesPrompt("red", "circle", "right")),
            (clip, "a yellow triangle stays still"),
        ]
    )
    assert (report.color_accuracy, report.shape_accuracy, report.motion_accuracy) == (50, 50, 50)
    assert report.all_accuracy == 25.0
    assert report.to_dict()["n"] == 4
    assert "| 4 | 50.0 | 50.0 | 50.0 | 25.0 |" in report.markdown()


def test_blank_video_measures_nothing_and_scores_wrong():
    blank = np.full((9, 64, 64, 3), 112, np.uint8)
    score = score_video(blank, "a red circle moves right")
    assert score.measured.foreground_frames == 0
    assert (score.measured.color, score.measured.shape, score.measured.motion) == (None,) * 3
    assert not (score.color_correct or score.shape_correct or score.motion_correct)


def test_diagonal_motion_takes_the_larger_component():
    frames = np.full((9, 64, 64, 3), 112, np.uint8)
    for t in range(9):
        cv2.circle(frames[t], (12 + 4 * t, 20 + t), 6, COLORS["green"], -1, cv2.LINE_AA)
    m = measure_video(frames)
    assert m.motion == "right" and m.displacement[0] > 2 * m.displacement[1] > 0


@pytest.mark.parametrize(
    ("video", "message"),
    [
        (np.full((9, 3, 8, 8), 200.0, np.float32), r"observed range \[200, 200\]"),
        (np.full((9, 8, 8, 3), 0.5, np.float32), r"\[F, 3, H, W\]"),
        (np.full((9, 3, 8, 8), np.nan, np.float32), "NaN"),
        (np.zeros((9, 8, 8), np.uint8), "shape"),
        (np.zeros((9, 8, 8, 4), np.uint8), r"\[F, H, W, 3\]"),
        (np.zeros((9, 8, 8, 3), np.int64), "dtype"),
        (np.zeros((1, 8, 8, 3), np.uint8), "at least 2 frames"),
        (np.zeros((0, 3, 8, 8), np.float32), "no pixels"),
        ([], "shape"),
    ],
)
def test_bad_videos_are_refused(video, message):
    with pytest.raises(ValueError, match=rf"^video: .*{message}"):
        measure_video(video)


def test_prompt_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match=r"prompt=.*colour"):
        score_video(render_clip("red", "circle", "up"), "a purple circle rises")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"size": 0.1}, "size"),
        ({"size": float("nan")}, "size"),
        ({"travel": 0.9}, "travel"),
        ({"frames": 1}, "frames"),
        ({"height": 0}, "height"),
        ({"background": 300}, "background"),
        ({"color": "purple"}, "color"),
        ({"motion": "spin"}, "motion"),
        ({"shape": "star"}, "shape"),
    ],
)
def test_render_clip_refuses_bad_parameters(kwargs, param):
    args = {"color": "red", "shape": "circle", "motion": "left"} | kwargs
    c, s, m = args.pop("color"), args.pop("shape"), args.pop("motion")
    with pytest.raises(ValueError, match=rf"^{param}="):
        render_clip(c, s, m, **args)


def test_cogvx_eval_shapes_dimensions(tmp_path):
    import json

    from cogvx.cli.main import main as cogvx_main

    videos = tmp_path / "videos"
    for c, s, m in [
        ("red", "circle", "right"),
        ("blue", "triangle", "still"),
        ("cyan", "square", "up"),
    ]:
        write_video(videos / f"{caption(c, s, m, 1)}-0.mp4", render_clip(c, s, m, size=0.3), fps=8)
    # a video whose shape is wrong, and one whose prompt is outside the vocabulary
    write_video(
        videos / "a green square sinks-0.mp4", render_clip("green", "circle", "down"), fps=8
    )
    write_video(videos / "a purple blob-0.mp4", render_clip("red", "circle", "left"), fps=8)
    out = tmp_path / "out"
    dims = "shapes_color,shapes_shape,shapes_motion"
    argv = ["eval", str(videos), "--dims", dims, "--out", str(out), "--no-plots", "--no-progress"]
    assert cogvx_main(argv) == 0
    result = json.loads((out / "results.json").read_text())["dimensions"]
    assert result["shapes_color"]["score"] == 1.0
    assert result["shapes_shape"]["score"] == 0.75
    assert result["shapes_motion"]["score"] == 1.0
    errors = [v for v in result["shapes_color"]["per_video"] if v["status"] == "error"]
    assert [v["video"] for v in errors] == ["a purple blob-0.mp4"] and "colour" in errors[0][
        "reason"
    ]
