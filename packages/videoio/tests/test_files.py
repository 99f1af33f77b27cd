import numpy as np
import pytest
import torch

from cogvx.videoio import (
    VideoReadError,
    atomic_output,
    probe_video,
    read_image,
    read_video,
    write_image,
    write_video,
)


def moving_square(t: int = 9, h: int = 32, w: int = 48) -> np.ndarray:
    frames = np.full((t, h, w, 3), 40, np.uint8)
    for i in range(t):
        frames[i, 8:20, 2 + 3 * i : 14 + 3 * i] = (230, 60, 20)
    return frames


def test_mp4_round_trip_keeps_count_size_fps_and_content(tmp_path):
    frames = moving_square()
    path = write_video(tmp_path / "a.mp4", frames, fps=8)
    info = probe_video(path)
    assert (info.num_frames, info.height, info.width) == (9, 32, 48)
    assert info.fps == pytest.approx(8.0)
    video = read_video(path)
    assert video.frames.shape == frames.shape and video.frames.dtype == np.uint8
    # lossy H.264 at crf 18: mean error of a few levels, the square stays where it was
    assert np.abs(video.frames.astype(int) - frames.astype(int)).mean() < 4.0
    assert video.frames[4, 14, 20, 0] > 180


def test_gif_and_float_input(tmp_path):
    frames = moving_square().astype(np.float32) / 255.0
    path = write_video(tmp_path / "a.gif", torch.from_numpy(frames), fps=10)
    assert read_video(path).frames.shape == (9, 32, 48, 3)


def test_read_selected_frames_in_order(tmp_path):
    path = write_video(tmp_path / "a.mp4", moving_square(), fps=8)
    full = read_video(path).frames
    sub = read_video(path, frame_indices=[6, 0, 6]).frames
    np.testing.assert_array_equal(sub, full[[6, 0, 6]])
    assert read_video(path, max_frames=4).frames.shape[0] == 4
    with pytest.raises(VideoReadError, match=r"past the end .* 9 frames"):
        read_video(path, frame_indices=[3, 12])


def test_unreadable_files_raise_video_read_error(tmp_path):
    with pytest.raises(VideoReadError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(VideoReadError):
        probe_video(bad)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError):
        read_video(empty)


@pytest.mark.parametrize(
    ("frames", "kwargs", "match"),
    [
        (np.zeros((3, 8, 8), np.uint8), {}, r"\[T, H, W, 3\]"),
        (np.zeros((0, 8, 8, 3), np.uint8), {}, "empty"),
        (np.zeros((2, 9, 8, 3), np.uint8), {}, "even height and width"),
        (np.full((2, 8, 8, 3), np.nan, np.float32), {}, "NaN"),
        (np.zeros((2, 8, 8, 3), np.uint8), {"fps": 0}, "fps"),
    ],
)
def test_write_video_refuses_bad_input_and_leaves_nothing(tmp_path, frames, kwargs, match):
    target = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match=match):
        write_video(target, frames, **{"fps": 8, **kwargs})
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_image_round_trip(tmp_path):
    img = moving_square()[3]
    path = write_image(tmp_path / "a.png", img)
    np.testing.assert_array_equal(read_image(path), img)
    with pytest.raises(ValueError, match="unknown image suffix"):
        write_image(tmp_path / "a.unknown", img)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "nope.png")


def test_atomic_output_gives_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "p.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o644


def test_mp4_yuv444p_crf0_is_lossless_to_one_level(tmp_path):
    frames = moving_square()
    path = write_video(tmp_path / "a.mp4", frames, fps=8, crf=0, pix_fmt="yuv444p")
    video = read_video(path)
    # full-resolution chroma, lossless H.264: only the RGB <-> YUV rounding remains
    assert np.abs(video.frames.astype(int) - frames.astype(int)).max() <= 1
    lossy = read_video(write_video(tmp_path / "b.mp4", frames, fps=8, crf=0)).frames
    assert np.abs(lossy.astype(int) - frames.astype(int)).max() > 8  # yuv420p blurs colour edges
    with pytest.raises(ValueError, match="pix_fmt='rgb48'"):
        write_video(tmp_path / "c.mp4", frames, fps=8, pix_fmt="rgb48")
