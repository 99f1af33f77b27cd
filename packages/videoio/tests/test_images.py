"""read_image converts every common mode correctly: 16-bit grey, palette, LA, CMYK, EXIF rotation;
writers refuse float frames outside [0, 1] with the observed range."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cogvx.videoio import read_image, write_image, write_video


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    out = read_image(tmp_path / "g16.png")
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    assert np.array_equal(out[..., 0], expected) and np.array_equal(out[..., 2], expected)
    assert out.mean() == pytest.approx(127, abs=1)  # Pillow's own conversion gives ~254 (white)


def test_thirty_two_bit_int_mode_is_read_as_sixteen_bit(tmp_path):
    im = Image.fromarray(np.full((4, 4), 65535, np.int32), mode="I")
    im.save(tmp_path / "i32.tif")
    assert read_image(tmp_path / "i32.tif").max() == 255


def test_float_mode(tmp_path):
    Image.fromarray(np.full((4, 4), 0.5, np.float32), mode="F").save(tmp_path / "f.tif")
    assert read_image(tmp_path / "f.tif")[0, 0, 0] == 128
    Image.fromarray(np.full((4, 4), 7.0, np.float32), mode="F").save(tmp_path / "f7.tif")
    with pytest.raises(ValueError, match=r"f7\.tif.*\[0, 1\], observed \[7, 7\]"):
        read_image(tmp_path / "f7.tif")


@pytest.mark.parametrize(
    ("mode", "pixel", "expected"),
    [
        ("LA", (200, 17), (200, 200, 200)),
        ("L", 90, (90, 90, 90)),
        ("RGBA", (10, 20, 30, 0), (10, 20, 30)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("1", 1, (255, 255, 255)),
    ],
)
def test_modes(tmp_path, mode, pixel, expected):
    suffix = ".tif" if mode == "CMYK" else ".png"
    Image.new(mode, (5, 3), pixel).save(tmp_path / f"x{suffix}")
    out = read_image(tmp_path / f"x{suffix}")
    assert out.shape == (3, 5, 3)
    assert tuple(int(v) for v in out[1, 2]) == expected


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (4, 4))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    out = read_image(tmp_path / "p.png")
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 1]) == (0, 0, 255)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((2, 6, 3), np.uint8)
    arr[:, 0] = 255  # the left column is white
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (6, 2, 3)  # displayed upright: portrait
    assert out[0].mean() > 200 and out[-1].mean() < 50  # left column became the top row


@pytest.mark.parametrize(
    ("name", "content", "exc", "needle"),
    [
        ("missing.png", None, FileNotFoundError, "missing.png"),
        ("garbage.png", b"not an image", ValueError, "cannot read image .*garbage.png"),
        ("empty.jpg", b"", ValueError, "empty.jpg"),
    ],
)
def test_bad_image_files_are_named(tmp_path, name, content, exc, needle):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(exc, match=needle):
        read_image(tmp_path / name)


@pytest.mark.parametrize(
    ("frames", "needle"),
    [
        (np.full((2, 8, 8, 3), 200.0, np.float32), r"observed range \[200, 200\]"),
        (np.full((2, 8, 8, 3), -1.0, np.float64), r"observed range \[-1, -1\]"),
        (np.full((2, 8, 8, 3), np.nan, np.float32), "NaN"),
    ],
)
def test_float_frames_outside_unit_range_are_refused(tmp_path, frames, needle):
    with pytest.raises(ValueError, match=needle):
        write_video(tmp_path / "v.mp4", frames, fps=8)
    with pytest.raises(ValueError, match=needle):
        write_image(tmp_path / "i.png", frames[0])
    assert list(tmp_path.iterdir()) == []


def test_float_frames_at_the_edges_are_kept(tmp_path):
    frames = np.zeros((2, 8, 8, 3), np.float32)
    frames[0] = 1.0 + 1e-3  # decoder rounding just above 1 is tolerated
    write_image(tmp_path / "i.png", frames[0])
    assert read_image(tmp_path / "i.png").min() == 255
