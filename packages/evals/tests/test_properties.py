"""Property checks (hypothesis) on metric invariants and input validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cogvx.evals.evaluator import evaluate
from cogvx.evals.frechet import frechet_distance
from cogvx.evals.metrics import psnr, ssim
from cogvx.evals.results import Status
from cogvx.evals.samples import VideoSample
from cogvx.evals.vbench.temporal import TemporalFlickering

shapes = st.tuples(st.integers(1, 3), st.integers(11, 20), st.integers(11, 20))


@settings(max_examples=20, deadline=None)
@given(shapes, st.integers(0, 2**32 - 1))
def test_psnr_ssim_symmetric_and_bounded(shape, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((*shape, 3)), rng.random((*shape, 3))
    assert psnr(a, b) == pytest.approx(psnr(b, a))
    s = ssim(a, b)
    assert s == pytest.approx(ssim(b, a)) and -1.0 <= s <= 1.0


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_frechet_nonnegative(dim, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
    d = frechet_distance(rng.normal(size=dim), a @ a.T, rng.normal(size=dim), b @ b.T)
    assert d >= 0.0


@settings(max_examples=15, deadline=None)
@given(
    st.one_of(
        st.just(np.zeros((0, 8, 8, 3), np.uint8)),  # zero frames
        st.just(np.zeros((4, 8, 8), np.uint8)),  # no channel axis
        st.just(np.zeros((4, 8, 8, 3), np.float32)),  # wrong dtype
        st.just(np.zeros((4, 8, 8, 4), np.uint8)),  # RGBA
    )
)
def test_bad_frame_arrays_are_per_video_errors(frames):
    good = VideoSample.from_frames("good", np.zeros((3, 8, 8, 3), np.uint8))
    bad = VideoSample.from_frames("bad", frames)
    r = evaluate([good, bad], [TemporalFlickering()], progress=False)["temporal_flickering"]
    assert r.score == 1.0
    assert r.per_video[1].status is Status.ERROR and "cannot read video" in r.per_video[1].reason
