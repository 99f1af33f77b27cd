import json

import numpy as np
import pytest

from cogvx.captioner.filters import ClipFilter, FilterConfig, summarize_failures
from cogvx.evals.flow import DISFlow


def test_config_validation_and_json(tmp_path):
    with pytest.raises(ValueError, match="min_motion"):
        FilterConfig(min_motion=-1)
    with pytest.raises(ValueError, match="unknown filter config key"):
        FilterConfig.from_dict({"min_motoin": 1.0})
    cfg = FilterConfig(min_motion=2.0, negative_thresholds={"static": 0.9})
    p = tmp_path / "f.json"
    p.write_text(json.dumps(cfg.to_dict()))
    again = FilterConfig.from_json(p)
    assert again == cfg
    assert again.negative_threshold("static") == 0.9 and again.negative_threshold("lecture") == 0.5
    with pytest.raises(FileNotFoundError, match="filter config"):
        FilterConfig.from_json(tmp_path / "missing.json")


def test_decide_thresholds():
    f = ClipFilter(
        FilterConfig(
            min_motion=1.0,
            max_motion=10.0,
            max_text=0.1,
            min_aesthetic=4.5,
            max_cuts=0,
            min_seconds=2.0,
            negative_thresholds={"lecture": 0.9},
        )
    )
    ok = {
        "seconds": 5.0,
        "motion_top": 2.0,
        "motion": 1.0,
        "text": 0.0,
        "aesthetic": 5.0,
        "cuts": 0.0,
        "neg_lecture": 0.8,
    }
    assert f.decide(ok) == ()
    bad = {
        "seconds": 1.0,
        "motion_top": 0.5,
        "motion": 11.0,
        "text": 0.3,
        "aesthetic": 4.0,
        "cuts": 2.0,
        "neg_lecture": 0.95,
        "neg_static": 0.6,
    }
    assert f.decide(bad) == (
        "too_short",
        "low_motion",
        "high_motion",
        "text",
        "aesthetic",
        "cuts",
        "negative:lecture",
        "negative:static",
    )
    # a missing score cannot fail its filter; None switches a filter off
    assert f.decide({"seconds": 5.0}) == ()
    assert ClipFilter(FilterConfig(min_motion=None)).decide({"motion_top": 0.0}) == ()


class _Const:
    name = "const"
    labels = ("static", "lecture")

    def __init__(self, value):
        self.value = value

    def __call__(self, frames):
        return np.full(len(frames), self.value, np.float32) if frames.ndim == 4 else None


class _Classifier:
    labels = ("static", "lecture")

    def __call__(self, frames):
        return {"static": 0.7, "lecture": 0.1}


def test_clip_filter_on_known_motion(synth):
    """Static vs moving square: the motion filter removes exactly the static clip."""
    f = ClipFilter(FilterConfig(min_motion=1.0, analysis_size=96), flow=DISFlow())
    moving, still = synth.moving(16, speed=3.0), synth.static(16)
    pairs = lambda v: np.stack([v[[0, 1]], v[[8, 9]]])  # noqa: E731
    rm = f(moving[::4], pairs(moving), seconds=2.0)
    rs = f(still[::4], pairs(still), seconds=2.0)
    assert rm.keep and rm.scores["motion_top"] > 2.0
    assert not rs.keep and rs.failed == ("low_motion",)
    assert rs.scores["motion_top"] < 0.05


def test_clip_filter_pluggable_models(synth):
    f = ClipFilter(
        FilterConfig(min_motion=None, min_aesthetic=4.5),
        aesthetic=_Const(4.0),
        classifier=_Classifier(),
    )
    r = f(synth.moving(4), None, seconds=3.0)
    assert r.scores["aesthetic"] == pytest.approx(4.0)
    assert r.scores["neg_static"] == 0.7
    assert r.failed == ("aesthetic", "negative:static")
    assert "aesthetic[const]" in f.active_scorers()


def test_text_filter(synth):
    f = ClipFilter(FilterConfig(min_motion=None, max_text=0.15))
    assert f(synth.text(3), None, seconds=3.0).failed == ("text",)
    assert f(synth.moving(3), None, seconds=3.0).keep


def test_summarize_failures():
    assert summarize_failures([("a", "b"), ("a",), ()]) == {"a": 2, "b": 1}
