"""Table of bad inputs to the VAE's public edges (config, encode/decode, tiling switches,
loading), each refused with the right exception type and the parameter named; ``config.json``
fuzzed: a valid config or a clean ValueError/TypeError naming a key, never anything else.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogvx.vae3d import CausalVAE3D, Tiling, VAEConfig

FIELDS = {f.name for f in dataclasses.fields(VAEConfig)} - {
    "class_name",
    "diffusers_version",
    "extra",
}

CONFIG_CASES = [
    ({"in_channels": 0}, ValueError, "VAEConfig.in_channels=0"),
    ({"latent_channels": 4.0}, TypeError, "VAEConfig.latent_channels=4.0"),
    ({"layers_per_block": True}, TypeError, "VAEConfig.layers_per_block=True"),
    ({"norm_num_groups": 0}, ValueError, "VAEConfig.norm_num_groups=0"),
    ({"norm_num_groups": 5}, ValueError, "VAEConfig.block_out_channels=[8, 16, 16, 24]"),
    ({"norm_eps": 0.0}, ValueError, "VAEConfig.norm_eps=0.0"),
    ({"norm_eps": math.nan}, ValueError, "VAEConfig.norm_eps=nan"),
    ({"block_out_channels": "8,16"}, TypeError, "VAEConfig.block_out_channels='8,16'"),
    ({"block_out_channels": (8, 0, 16, 24)}, ValueError, "VAEConfig.block_out_channels"),
    ({"block_out_channels": (8, 16)}, ValueError, "VAEConfig.down_block_types"),
    ({"temporal_compression_ratio": 3}, ValueError, "VAEConfig.temporal_compression_ratio=3"),
    ({"temporal_compression_ratio": 16}, ValueError, "VAEConfig.temporal_compression_ratio=16"),
    ({"temporal_compression_ratio": math.inf}, ValueError, "temporal_compression_ratio=inf"),
    ({"scaling_factor": 0.0}, ValueError, "VAEConfig.scaling_factor=0.0"),
    ({"scaling_factor": "0.7"}, TypeError, "VAEConfig.scaling_factor='0.7'"),
    ({"shift_factor": math.inf}, ValueError, "VAEConfig.shift_factor=inf"),
    ({"latents_mean": (0.0,)}, ValueError, "VAEConfig.latents_mean=[0.0]"),
    ({"latents_std": (1.0, 1.0, 0.0, 1.0)}, ValueError, "VAEConfig.latents_std"),
    ({"latents_mean": (0.0, math.nan, 0.0, 0.0)}, ValueError, "VAEConfig.latents_mean"),
    ({"act_fn": "gelu"}, ValueError, "VAEConfig.act_fn='gelu'"),
    ({"force_upcast": "true"}, TypeError, "VAEConfig.force_upcast='true'"),
    ({"use_quant_conv": 0}, TypeError, "VAEConfig.use_quant_conv=0"),
    ({"sample_height": 0}, ValueError, "VAEConfig.sample_height=0"),
    ({"down_block_types": ("DownEncoderBlock2D",) * 4}, ValueError, "VAEConfig.down_block_types"),
]


@pytest.mark.parametrize(("changes", "error", "text"), CONFIG_CASES, ids=lambda v: str(v)[:40])
def test_bad_config_values(changes, error, text):
    with pytest.raises(error) as info:
        VAEConfig.tiny().replace(**changes)
    assert text in str(info.value)


def _video(f=5, h=16, w=16, fill=0.0, dtype=torch.float32):
    return torch.full((1, 3, f, h, w), fill, dtype=dtype)


ENCODE_CASES = [
    (_video(fill=200.0), {}, ValueError, "values in [200, 200]"),
    (_video(fill=-1.5), {}, ValueError, "values in [-1.5, -1.5]"),
    (_video(f=6), {}, ValueError, "6 frames; the VAE needs 4k+1"),
    (_video(f=5, h=12), {}, ValueError, "12x16"),
    (_video(dtype=torch.float64), {}, TypeError, "video has dtype torch.float64"),
    (_video().to(torch.uint8), {}, TypeError, "video has dtype torch.uint8"),
    (_video(), {"frames_per_chunk": 3}, ValueError, "frames_per_chunk=3"),
    (_video(), {"batch_chunk": 0}, ValueError, "batch_chunk"),
    (_video(), {"tiling": "yes"}, TypeError, "tiling"),
]


@pytest.mark.parametrize(("video", "kwargs", "error", "msg"), ENCODE_CASES)
def test_bad_encode_inputs(tiny_vae, video, kwargs, error, msg):
    with pytest.raises(error) as info, torch.no_grad():
        tiny_vae.encode(video, **kwargs)
    assert msg in str(info.value)


def test_small_overshoot_is_accepted(tiny_vae):
    with torch.no_grad():
        z = tiny_vae.encode(_video(fill=1.005)).mode()
    assert z.shape == (1, 4, 2, 2, 2)


TILING_CASES = [
    ({"tile_sample_min_height": 4}, "tile_sample_min_height=4"),
    ({"tile_sample_min_width": 32.0}, "tile_sample_min_width=32.0"),
    ({"tile_overlap_factor_height": 1.0}, "tile_overlap_factor_height=1.0"),
    ({"tile_overlap_factor_width": math.nan}, "tile_overlap_factor_width=nan"),
]


@pytest.mark.parametrize(("kwargs", "msg"), TILING_CASES)
def test_bad_tiling_switches(tiny_config, kwargs, msg):
    vae = CausalVAE3D(tiny_config)
    with pytest.raises(ValueError) as info:
        vae.enable_tiling(**kwargs)
    assert msg in str(info.value)
    assert not vae.use_tiling  # nothing half-applied


def test_tiling_and_slicing_switches_are_runtime_state(tiny_vae, tmp_path, make_video):
    """enable_tiling/enable_slicing equal the explicit options, are undone by disable_*, and
    are never written to config.json."""
    x = make_video(2, 5, 32, 48, seed=3)
    with torch.no_grad():
        whole = tiny_vae.decode(tiny_vae.encode(x).mode())
        explicit_z = tiny_vae.encode(x, tiling=Tiling(32, 32), batch_chunk=1).mode()
        explicit = tiny_vae.decode(explicit_z, tiling=Tiling(32, 32), batch_chunk=1)
        tiny_vae.enable_tiling(32, 32)
        tiny_vae.enable_slicing()
        assert tiny_vae.use_tiling and tiny_vae.use_slicing
        switched_z = tiny_vae.encode(x).mode()
        switched = tiny_vae.decode(switched_z)
        tiny_vae.save_pretrained(tmp_path)
        tiny_vae.disable_tiling()
        tiny_vae.disable_slicing()
        again = tiny_vae.decode(tiny_vae.encode(x).mode())
    assert not tiny_vae.use_tiling and not tiny_vae.use_slicing
    assert torch.equal(switched_z, explicit_z) and torch.equal(switched, explicit)
    assert not torch.equal(explicit, whole)  # the tiles really were used
    assert torch.equal(again, whole)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert not {"tiling", "tile_sample_min_height", "batch_chunk", "use_tiling"} & set(saved)


def test_bad_loading(tmp_path, tiny_vae):
    tiny_vae.save_pretrained(tmp_path / "vae")
    with pytest.raises(TypeError, match="torch_dtype='fp16'"):
        CausalVAE3D.from_pretrained(tmp_path / "vae", torch_dtype="fp16")
    assert CausalVAE3D.from_pretrained(tmp_path).config == tiny_vae.config  # pipeline folder
    weights = tmp_path / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ValueError, match=re.escape(str(weights))):
        CausalVAE3D.from_pretrained(tmp_path, subfolder="vae")
    (tmp_path / "vae" / "config.json").write_text('{"latent_channels": -4}')
    with pytest.raises(ValueError, match=r"config\.json.*VAEConfig\.latent_channels=-4"):
        CausalVAE3D.from_pretrained(tmp_path / "vae")


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.dictionaries(st.sampled_from(sorted(FIELDS)), JSON_VALUES, min_size=1, max_size=3),
    literal=st.sampled_from(["", "NaN", "-Infinity"]),
)
def test_fuzzed_config_json_is_valid_or_a_clean_refusal(tmp_path, changes, literal):
    data = {**VAEConfig.tiny().to_dict(), **changes}
    text = json.dumps(data)
    if literal:
        text = text.replace('"scaling_factor": 1.0', f'"scaling_factor": {literal}')
    path = tmp_path / "config.json"
    path.write_text(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a known key never falls through to `extra`
            config = VAEConfig.from_json_file(path)
    except (TypeError, ValueError) as err:
        message = str(err)
        assert str(path) in message
        named = re.search(r"VAEConfig\.(\w+)=", message)
        assert named is not None or "not valid JSON" in message, message
        if named:
            assert named.group(1) in FIELDS | {"_class_name"}, message
    else:
        assert VAEConfig.from_dict(config.to_dict()) == config
