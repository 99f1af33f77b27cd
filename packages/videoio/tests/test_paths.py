"""The one suffix list and the collector: dot-files and partial outputs are never videos."""

from __future__ import annotations

import pytest

from cogvx.videoio import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    WRITABLE_VIDEO_SUFFIXES,
    collect_media,
    is_image_path,
    is_partial_output,
    is_video_path,
)


def test_suffix_lists():
    assert set(WRITABLE_VIDEO_SUFFIXES) <= set(VIDEO_SUFFIXES)
    assert not set(VIDEO_SUFFIXES) & set(IMAGE_SUFFIXES)
    assert is_video_path("a/B.MP4") and is_video_path("x.webm") and not is_video_path("x.png")
    assert is_image_path("x.PNG") and not is_image_path("x.mp4")


@pytest.mark.parametrize(
    ("name", "partial"),
    [
        ("clip.mp4", False),
        (".clip.abc123.partial.mp4", True),
        ("out.0003.k2j.partial.mp4", True),
        (".hidden.mp4", True),
        ("partial.mp4", False),
        ("my.partially.mp4", False),
    ],
)
def test_is_partial_output(name, partial):
    assert is_partial_output(name) is partial


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_collector_skips_hidden_and_partial(tmp_path):
    keep = [_touch(tmp_path / n) for n in ("a.mp4", "b.GIF", "c.webm")]
    for n in (".a.x1.partial.mp4", "b.0001.zz.partial.mp4", ".DS_Store.mp4", "notes.txt", "d.png"):
        _touch(tmp_path / n)
    (tmp_path / "folder.mp4").mkdir()  # a folder named like a video is not a file
    assert collect_media(tmp_path) == sorted(keep)
    assert collect_media(tmp_path, images=True) == sorted([*keep, tmp_path / "d.png"])


def test_collector_recursive_skips_dot_folders(tmp_path):
    a = _touch(tmp_path / "sub" / "a.mp4")
    _touch(tmp_path / ".cache" / "b.mp4")
    _touch(tmp_path / "sub" / ".c.partial.mp4")
    assert collect_media(tmp_path) == []
    assert collect_media(tmp_path, recursive=True) == [a]


def test_explicit_files_are_kept_and_missing_paths_refused(tmp_path):
    odd = _touch(tmp_path / "clip.bin")
    assert collect_media([odd, str(odd)]) == [odd, odd]
    with pytest.raises(FileNotFoundError, match=r"^videos='.*nope.mp4': no such file or folder"):
        collect_media([odd, tmp_path / "nope.mp4"], parameter="videos")
