"""What the page offers for a model, and how uploads are checked (no gradio, no weights)."""

from __future__ import annotations

import numpy as np
import pytest

from cogvx.demo.choices import frame_choices, model_choices, parse_size, size_choices
from cogvx.demo.uploads import UploadError, UploadLimits, load_image, load_video
from cogvx.infer import default_model_dir
from cogvx.infer.shapes import ShapeRules
from cogvx.videoio import write_image, write_video


def test_every_offered_choice_passes_the_models_own_check() -> None:
    for rules in (
        ShapeRules(sample_height=60, sample_width=90, sample_frames=49),  # 1.0
        ShapeRules(patch_size_t=2, sample_height=96, sample_width=170, sample_frames=81),  # 1.5
        ShapeRules(sample_height=8, sample_width=8, sample_frames=9),  # shapes
    ):
        frames, sizes = frame_choices(rules), size_choices(rules)
        d = rules.defaults()
        assert d.num_frames in frames and (d.height, d.width) in sizes
        for f in frames:
            for h, w in sizes:
                shape = rules.check(f, h, w)
                assert (shape.num_frames, shape.height, shape.width) == (f, h, w)
    assert frame_choices(ShapeRules(sample_height=8, sample_width=8, sample_frames=9)) == [
        9, 17, 25, 33, 41, 49,
    ]  # fmt: skip
    assert frame_choices(ShapeRules(patch_size_t=2), max_frames=50) == [17, 33, 49]


def test_a_fixed_size_model_offers_its_native_size_only() -> None:
    rules = ShapeRules(fixed_size=(49, 480, 720))
    assert frame_choices(rules) == [49] and size_choices(rules) == [(480, 720)]


def test_the_shipped_model_runs_text_and_video_to_video() -> None:
    c = model_choices(default_model_dir(), shipped=True)
    assert c.task_names == ("t2v", "v2v")  # 1x latent channels: no image-to-video tab
    assert (c.steps, c.guidance) == (25, 6.0)
    assert c.default_frames in c.frames and c.default_size in c.sizes
    assert model_choices(default_model_dir()).steps == 50  # any other folder: the reference's


def test_parse_size() -> None:
    assert parse_size("64x96") == (64, 96)
    with pytest.raises(ValueError, match="size='64'"):
        parse_size("64")


def test_uploads_are_checked_before_and_while_decoding(tmp_path) -> None:
    limits = UploadLimits(max_bytes=200_000, max_frames=12, max_pixels=64 * 64)
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8)
    good = write_video(tmp_path / "good.mp4", clip, 8)
    frames = load_video(good, limits, 9)
    assert frames.shape == (9, 32, 32, 3) and frames.dtype == np.uint8

    with pytest.raises(UploadError, match="has 10 frames; 17 were asked for"):
        load_video(good, limits, 17)
    long = write_video(tmp_path / "long.mp4", np.repeat(clip, 2, axis=0), 8)
    with pytest.raises(UploadError, match="has 20 frames; the limit is 12"):
        load_video(long, limits, 9)
    big = write_video(tmp_path / "big.mp4", np.zeros((9, 128, 128, 3), np.uint8), 8)
    with pytest.raises(UploadError, match="128x128 pixels"):
        load_video(big, limits, 9)

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.bytes(5000))
    with pytest.raises(UploadError, match=r"'corrupt\.mp4' could not be decoded"):
        load_video(corrupt, limits, 9)
    huge = tmp_path / "huge.mp4"
    huge.write_bytes(b"0" * 300_000)
    with pytest.raises(UploadError, match=r"the limit is 0\.2 MB"):
        load_video(huge, limits, 9)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(UploadError, match="is empty"):
        load_video(empty, limits, 9)

    image = write_image(tmp_path / "frame.png", clip[0])
    assert load_image(image, limits).shape == (32, 32, 3)
    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(100))
    with pytest.raises(UploadError, match=r"'bad\.png' could not be decoded"):
        load_image(bad_image, limits)
    with pytest.raises(ValueError, match="max_frames=0"):
        UploadLimits(max_frames=0)
