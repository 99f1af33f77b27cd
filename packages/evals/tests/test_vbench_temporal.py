import numpy as np
import pytest

from cogvx.evals.evaluator import evaluate
from cogvx.evals.flow import DISFlow
from cogvx.evals.interpolation import FlowWarpInterpolator, LinearBlendInterpolator
from cogvx.evals.results import Status
from cogvx.evals.samples import VideoSample, middle_frame_indices, stride_frame_indices
from cogvx.evals.vbench.temporal import (
    DynamicDegree,
    MotionSmoothness,
    StaticFilter,
    TemporalFlickering,
    dynamic_decision,
    pad_to_multiple,
    static_decision,
    top_fraction_mean,
)

from .conftest import static_video, textured_square_video


def sample(name, frames, fps=8.0, **kw):
    return VideoSample.from_frames(name, frames, fps=fps, **kw)


def test_static_video_flicker_one_and_not_dynamic():
    v = sample("static", static_video(frames=8, size=64))
    res = evaluate([v], [TemporalFlickering(), DynamicDegree(DISFlow())], progress=False)
    assert res["temporal_flickering"].score == 1.0
    assert res["dynamic_degree"].score == 0.0
    assert res["dynamic_degree"].metadata["approximate"] is True
    assert res["dynamic_degree"].metadata["backend"] == "dis-medium"


def test_alternating_brightness_flicker_closed_form():
    base = np.full((6, 32, 32, 3), 100, np.uint8)
    base[1::2] += 40  # every adjacent pair differs by exactly 40 everywhere
    s = TemporalFlickering().score(sample("flick", base))
    assert s.score == pytest.approx((255 - 40) / 255, abs=1e-12)  # 0.8431...
    # +-40 around 128 with clipping-free values: |delta| = 80 -> (255-80)/255 = 0.686
    v = np.full((5, 16, 16, 3), 88, np.uint8)
    v[1::2] = 168
    assert TemporalFlickering().score(sample("f2", v)).score == pytest.approx(175 / 255, abs=1e-12)


@pytest.mark.parametrize(("speed", "dynamic"), [(8, True), (1, False), (0, False)])
def test_moving_square_dynamic_degree(speed, dynamic):
    v = sample(f"sq{speed}", textured_square_video(speed, frames=9))
    s = DynamicDegree(DISFlow()).score(v)
    assert s.score == float(dynamic)
    assert s.details["thres"] == 6.0 and s.details["count_num"] == round(4 * 9 / 16)
    if speed == 8:
        assert all(6.0 < p < 9.5 for p in s.details["pair_scores"])


def test_dynamic_decision_rule():
    # count_num = 2: needs two pairs above threshold
    assert dynamic_decision([7, 1, 7], 6.0, 2)
    assert not dynamic_decision([7, 1, 1], 6.0, 2)
    assert not dynamic_decision([6.0, 6.0], 6.0, 1)  # strictly greater
    assert dynamic_decision([0.0], 6.0, 0)  # count_num 0: dynamic as soon as there is a pair
    assert not dynamic_decision([], 6.0, 0)


def test_static_decision_rule():
    assert static_decision([0, 0, 5], [1, 1], 3.0, 1)  # one pair above thres allowed
    assert not static_decision([5, 5, 0], [1, 1], 3.0, 1)
    assert not static_decision([0, 0], [6.5, 0], 3.0, 1)  # ends above thres*count_num*2 = 6
    assert static_decision([0, 0], [6.0, 6.0], 3.0, 1)


def test_static_filter_skips_moving_videos_for_flicker():
    sf = StaticFilter(DISFlow())
    assert sf.is_static(static_video(frames=8, size=64))
    assert not sf.is_static(textured_square_video(8, frames=8))
    ev = TemporalFlickering(static_filter=sf)
    res = evaluate(
        [
            sample("still", static_video(frames=8, size=64)),
            sample("moving", textured_square_video(8, frames=8)),
        ],
        [ev],
        progress=False,
    )
    r = res["temporal_flickering"]
    assert r.score == 1.0
    assert [v.status for v in r.per_video] == [Status.OK, Status.SKIPPED]
    assert r.metadata["static_filter"] is True


def test_motion_smoothness():
    ms = MotionSmoothness(LinearBlendInterpolator())
    assert ms.score(sample("s", static_video(frames=7, size=16))).score == 1.0
    # a linear brightness ramp is reproduced exactly by blending
    ramp = np.stack([np.full((8, 8, 3), 10 * t, np.uint8) for t in range(9)])
    assert ms.score(sample("r", ramp)).score == 1.0
    # uneven: odd frames offset by 20 from the blend of their neighbours
    bumpy = ramp.copy()
    bumpy[1::2] += 20
    assert ms.score(sample("b", bumpy)).score == pytest.approx((255 - 20) / 255)
    # flow-warp interpolation of a translating square beats blending; shuffled order scores lower
    v = textured_square_video(4, frames=7, size=96, square=32)
    warp = MotionSmoothness(FlowWarpInterpolator(DISFlow())).score(sample("m", v)).score
    blend = ms.score(sample("m", v)).score
    shuffled = ms.score(sample("x", v[[0, 5, 2, 6, 4, 1, 3]])).score
    assert warp > blend > shuffled


def test_sampling_rules():
    assert middle_frame_indices(16, 49) == [
        1,
        4,
        7,
        10,
        13,
        16,
        19,
        22,
        25,
        28,
        31,
        34,
        37,
        40,
        43,
        46,
    ]
    assert middle_frame_indices(4, 2) == [0, 1, 1, 1]  # padded with the last index
    assert stride_frame_indices(10, 24.0) == [0, 3, 6, 9]
    assert stride_frame_indices(5, 8.0) == [0, 1, 2, 3, 4]


def test_padding_and_top_fraction():
    f = np.zeros((1, 13, 21, 3), np.uint8)
    assert pad_to_multiple(f).shape == (1, 16, 24, 3)
    flow = np.zeros((10, 10, 2), np.float32)
    flow[0, :5, 0] = 3.0  # 5 pixels of magnitude 3 = exactly the top 5%
    assert top_fraction_mean(flow, 0.05) == pytest.approx(3.0)


def test_too_short_videos_are_reported_per_video():
    good = sample("good", static_video(frames=4, size=32))
    short = sample("short", static_video(frames=1, size=32))
    res = evaluate(
        [good, short],
        [TemporalFlickering(), MotionSmoothness(LinearBlendInterpolator())],
        progress=False,
    )
    tf = res["temporal_flickering"]
    assert tf.score == 1.0 and tf.per_video[1].status is Status.ERROR
    assert "at least 2 frames" in tf.per_video[1].reason


def test_low_fps_factor_option():
    v = sample("slow", textured_square_video(8, frames=9), fps=4.0)
    assert DynamicDegree(DISFlow()).score(v).details["thres"] == 6.0
    s = DynamicDegree(DISFlow(), low_fps_factor=True).score(v)
    assert (
        s.details["thres"] == 12.0 and s.score == 0.0
    )  # 8 px/frame is below the doubled threshold
