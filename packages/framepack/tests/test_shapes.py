"""Training shapes: frame counts, sizes, token counts (docs/data.md §Training shapes; paper Table 5)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cogvx.framepack import (
    ModelGeometry,
    ResolutionStage,
    SampleShape,
    UnfitSample,
    assign_train_shape,
)

G10 = ModelGeometry.cogvideox()
G15 = ModelGeometry.cogvideox15()


def test_reference_token_counts():
    # docs/transformer.md §Patch embedding: 480x720x49 -> 13x60x90 latents -> 17,550 video tokens (+226 = 17,776).
    assert G10.video_tokens(49, 480, 720) == 17550
    assert G10.sample_tokens(49, 480, 720) == 17776
    # 1.5 at 768x1360x81: 21 latent frames padded to 22 -> 44,880; 161 frames -> 85,680.
    assert G15.latent_pad(21) == 1
    assert G15.video_tokens(81, 768, 1360) == 44880
    assert G15.video_tokens(161, 768, 1360) == 85680
    # An image is a 1-frame video; with temporal patching it is padded to 2 latent frames.
    assert G10.video_tokens(1, 480, 720) == 30 * 45
    assert G15.video_tokens(1, 480, 720) == 30 * 45


def test_geometry_from_config_mapping_and_errors():
    g = ModelGeometry.from_config(
        {
            "patch_size": 2,
            "patch_size_t": 2,
            "max_text_seq_length": 224,
            "temporal_compression_ratio": 4,
        }
    )
    assert g == ModelGeometry(patch_size_t=2, text_tokens=224)
    with pytest.raises(ValueError, match="patch_size"):
        ModelGeometry(patch_size=0)
    with pytest.raises(ValueError, match="4k\\+1"):
        G10.latent_frames(48)
    with pytest.raises(ValueError, match="multiples of 16"):
        G10.video_tokens(49, 470, 720)


def test_stage_shapes_keep_aspect_and_limits():
    stage = ResolutionStage(480, max_area=480 * 720, max_frames=49)
    ts = assign_train_shape(SampleShape(49, 480, 720), stage, G10)
    assert (ts.frames, ts.height, ts.width, ts.tokens) == (49, 480, 720, 17776)
    # Portrait 1080x1920 at stage 256 (area 256x384): short side bounded by area, 9:16 kept.
    ts = assign_train_shape(SampleShape(81, 1920, 1080, 30.0), ResolutionStage(256), G10)
    assert ts.height % 16 == 0 and ts.width % 16 == 0 and ts.height > ts.width
    assert ts.height * ts.width <= 256 * 384
    assert abs(ts.height / ts.width - 16 / 9) < 0.1
    assert ts.frames == 49 and ts.clipped


def test_fps_resampling_and_clip_policy():
    # 80 frames at 24 fps resampled to 8 fps -> 26 frames -> 25 (4k+1), not clipped.
    ts = assign_train_shape(SampleShape(80, 256, 256, 24.0), ResolutionStage(256, fps=8.0), G10)
    assert ts.frames == 25 and not ts.clipped
    with pytest.raises(UnfitSample) as e:
        assign_train_shape(SampleShape(100, 256, 256), ResolutionStage(256, clip_long=False), G10)
    assert e.value.reason == "too_long"


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        (SampleShape(0, 256, 256), "zero_frames"),
        (SampleShape(5, 0, 256), "zero_height"),
        (SampleShape(5, 256, -3), "zero_width"),
        (SampleShape(5, 8, 4000), "too_small"),
        (SampleShape(5, 256, 256, float("nan")), "bad_fps"),
        (SampleShape(5.0, 256, 256), "bad_shape"),  # type: ignore[arg-type]
    ],
)
def test_unfit_samples_have_reasons(shape, reason):
    with pytest.raises(UnfitSample) as e:
        assign_train_shape(shape, ResolutionStage(256), G10)
    assert e.value.reason == reason


def test_stage_validation():
    with pytest.raises(ValueError, match="short_side"):
        ResolutionStage(8)
    with pytest.raises(ValueError, match="max_frames"):
        ResolutionStage(256, max_frames=0)


@given(
    frames=st.integers(1, 400),
    height=st.integers(1, 4000),
    width=st.integers(1, 4000),
    short=st.sampled_from([256, 512, 768]),
    pt=st.sampled_from([None, 2]),
    upscale=st.booleans(),
)
def test_assigned_shapes_are_valid(frames, height, width, short, pt, upscale):
    geometry = ModelGeometry(patch_size_t=pt)
    stage = ResolutionStage(short, max_frames=81, upscale=upscale)
    try:
        ts = assign_train_shape(SampleShape(frames, height, width), stage, geometry)
    except UnfitSample as e:
        assert e.reason == "too_small"
        scale = min(short / min(height, width), math.sqrt(stage.area / (height * width)))
        assert min(height, width) * (scale if upscale else min(scale, 1.0)) < 16 + 1e-6
        return
    assert (ts.frames - 1) % 4 == 0 and 1 <= ts.frames <= min(frames, 81)
    assert ts.height % 16 == 0 and ts.width % 16 == 0
    assert ts.height * ts.width <= stage.area
    if not upscale:
        assert ts.height <= height and ts.width <= width
    assert (ts.latent_frames + ts.latent_pad) % geometry.pt == 0
    assert ts.tokens == geometry.sample_tokens(ts.frames, ts.height, ts.width)
    # Aspect ratio changes only by the rounding to 16 px on each side.
    assert abs(ts.height / height - ts.width / width) < 16 / min(height, width)
