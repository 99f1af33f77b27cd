import numpy as np
import pytest

from cogvx.captioner.scores import motion_pairs, motion_scores, resize_short_side, text_dominance
from cogvx.evals.flow import DISFlow


def test_motion_pairs_spread_and_step():
    pairs = motion_pairs(100, 24.0, num_pairs=4, step_seconds=0.125)
    assert pairs[0] == (0, 3) and pairs[-1] == (96, 99)
    assert all(b - a == 3 for a, b in pairs) and len(pairs) == 4
    assert motion_pairs(1, 8.0) == []
    assert motion_pairs(2, 8.0) == [(0, 1)]
    with pytest.raises(ValueError, match="num_pairs"):
        motion_pairs(10, 8.0, num_pairs=0)


def test_motion_static_vs_moving(synth):
    flow = DISFlow()
    still = synth.static(4)
    moving = synth.moving(4, speed=4.0)
    s = motion_scores(np.stack([still[:2], still[2:4]]), flow, analysis_size=96)
    m = motion_scores(np.stack([moving[:2], moving[2:4]]), flow, analysis_size=96)
    assert s["motion_top"] < 0.05 and s["motion"] < 0.05
    # the square moves 4 px/frame at 96 px short side: the top 5 % of the flow is the square
    assert 3.0 < m["motion_top"] < 5.0
    assert m["motion"] > 10 * s["motion"]


def test_motion_scores_scale_with_analysis_size(synth):
    moving = synth.moving(2, speed=4.0)
    small = motion_scores(moving[None], DISFlow(), analysis_size=96)["motion_top"]
    big = motion_scores(moving[None], DISFlow(), analysis_size=192)["motion_top"]
    assert big == pytest.approx(2 * small, rel=0.2)


def test_motion_scores_validates_shape(synth):
    with pytest.raises(ValueError, match=r"\[P,2,H,W,3\]"):
        motion_scores(synth.static(3), DISFlow())


def test_text_dominance_separates_text_from_scenes(synth):
    assert text_dominance(synth.text(2)) > 0.2
    assert text_dominance(synth.moving(2)) < 0.02
    noise = np.random.default_rng(0).integers(0, 256, (2, 96, 128, 3), dtype=np.uint8)
    assert text_dominance(noise) < 0.02


def test_resize_short_side():
    x = np.zeros((2, 100, 200, 3), np.uint8)
    assert resize_short_side(x, 50).shape == (2, 50, 100, 3)
    assert resize_short_side(x, 100) is x
    with pytest.raises(ValueError, match="analysis size"):
        resize_short_side(x, 2)
