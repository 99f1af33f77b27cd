import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cogvx.videoio import frames_to_tensor, sample_frame_indices, tensor_to_frames


def test_tensor_round_trip_is_exact_for_uint8():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 6, 7, 3), dtype=np.uint8)
    x = frames_to_tensor(frames)
    assert x.shape == (3, 5, 6, 7) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(tensor_to_frames(x), frames)


def test_tensor_to_frames_rejects_nan_and_bad_shape():
    with pytest.raises(ValueError, match="NaN"):
        tensor_to_frames(torch.full((3, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"\[3, T, H, W\]"):
        tensor_to_frames(torch.zeros(2, 1, 2, 2))


def test_every_two_seconds():
    assert sample_frame_indices(49, 8.0, every_seconds=2) == [0, 16, 32, 48]
    assert sample_frame_indices(10, 8.0, every_seconds=2) == [0]


@given(st.integers(1, 500), st.integers(1, 40))
def test_num_indices_are_sorted_in_range_and_include_ends(n, k):
    idx = sample_frame_indices(n, 8.0, num=k)
    assert len(idx) == k
    assert idx == sorted(idx)
    assert idx[0] == 0 and 0 <= idx[-1] <= n - 1
    if k > 1:
        assert idx[-1] == n - 1


def test_sample_frame_indices_validates():
    with pytest.raises(ValueError, match="exactly one"):
        sample_frame_indices(10, 8.0)
    with pytest.raises(ValueError, match="num_frames"):
        sample_frame_indices(0, 8.0, num=2)
