"""Table of bad inputs to the transformer's public edges (config, forward, packed forward,
loading), each refused with the right exception type and the parameter named; and
``config.json`` fuzzed: a valid config or a clean ValueError/TypeError naming a key, never
anything else.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogvx.expert_dit import DiTConfig, ExpertDiT, packed_forward

BASE = DiTConfig.tiny(use_rotary_positional_embeddings=True)
FIELDS = {f.name for f in dataclasses.fields(DiTConfig)}

# (changes to DiTConfig.tiny(RoPE), exception type, text the message must contain)
CONFIG_CASES = [
    ({"num_attention_heads": 0}, ValueError, "DiTConfig.num_attention_heads=0"),
    ({"num_attention_heads": 2.0}, TypeError, "DiTConfig.num_attention_heads=2.0"),
    ({"attention_head_dim": 24}, ValueError, "DiTConfig.attention_head_dim=24: RoPE"),
    ({"attention_head_dim": True}, TypeError, "DiTConfig.attention_head_dim=True"),
    ({"num_layers": -1}, ValueError, "DiTConfig.num_layers=-1"),
    ({"in_channels": "4"}, TypeError, "DiTConfig.in_channels='4'"),
    ({"out_channels": 0}, ValueError, "DiTConfig.out_channels=0"),
    ({"patch_size": 0}, ValueError, "DiTConfig.patch_size=0"),
    ({"patch_size_t": 0}, ValueError, "DiTConfig.patch_size_t=0"),
    ({"patch_size_t": 1.5}, TypeError, "DiTConfig.patch_size_t=1.5"),
    ({"ofs_embed_dim": -3}, ValueError, "DiTConfig.ofs_embed_dim=-3"),
    ({"dropout": 1.0}, ValueError, "DiTConfig.dropout=1.0"),
    ({"dropout": math.nan}, ValueError, "DiTConfig.dropout=nan"),
    ({"norm_eps": 0.0}, ValueError, "DiTConfig.norm_eps=0.0"),
    ({"norm_eps": math.inf}, ValueError, "DiTConfig.norm_eps=inf"),
    ({"spatial_interpolation_scale": -1.0}, ValueError, "DiTConfig.spatial_interpolation_scale"),
    ({"temporal_interpolation_scale": "1"}, TypeError, "DiTConfig.temporal_interpolation_scale"),
    ({"activation_fn": "relu"}, ValueError, "DiTConfig.activation_fn='relu'"),
    ({"timestep_activation_fn": "tanh"}, ValueError, "DiTConfig.timestep_activation_fn"),
    ({"flip_sin_to_cos": 1}, TypeError, "DiTConfig.flip_sin_to_cos=1"),
    ({"use_rotary_positional_embeddings": "yes"}, TypeError, "use_rotary_positional_embeddings"),
    ({"sample_frames": 10}, ValueError, "DiTConfig.sample_frames=10"),
    ({"temporal_compression_ratio": 0}, ValueError, "DiTConfig.temporal_compression_ratio=0"),
    ({"max_text_seq_length": -1}, ValueError, "DiTConfig.max_text_seq_length=-1"),
    ({"freq_shift": 16}, ValueError, "DiTConfig.freq_shift=16"),
    ({"text_embed_dim": None}, TypeError, "DiTConfig.text_embed_dim=None"),
    (
        {
            "use_rotary_positional_embeddings": False,
            "num_attention_heads": 1,
            "attention_head_dim": 8,
        },
        ValueError,
        "divisible by 16",
    ),
    (
        {"use_learned_positional_embeddings": True, "sample_height": 9},
        ValueError,
        "DiTConfig.sample_height=9",
    ),
]


@pytest.mark.parametrize(("changes", "error", "text"), CONFIG_CASES, ids=lambda v: str(v)[:40])
def test_bad_config_values(changes, error, text):
    with pytest.raises(error) as info:
        BASE.replace(**changes)
    assert text in str(info.value)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ExpertDiT(BASE).eval()


LAT, TXT = (1, 2, 4, 8, 12), (1, 8, 32)

# (latents, text, timestep, kwargs, exception type, text the message must contain)
FORWARD_CASES = [
    (torch.zeros(LAT, dtype=torch.long), torch.zeros(TXT), 1, {}, TypeError, "latents has dtype"),
    (
        torch.zeros(LAT),
        torch.zeros(TXT, dtype=torch.int32),
        1,
        {},
        TypeError,
        "text_embeds has dtype",
    ),
    (torch.zeros(LAT), torch.zeros(TXT), math.nan, {}, ValueError, "timestep=nan"),
    (torch.zeros(LAT), torch.zeros(TXT), -1, {}, ValueError, "timestep=-1"),
    (torch.zeros(LAT), torch.zeros(TXT), torch.tensor([True]), {}, TypeError, "timestep has dtype"),
    (torch.zeros(LAT), torch.zeros(TXT), True, {}, TypeError, "timestep must be"),
    (torch.zeros(LAT), torch.zeros(TXT), 1, {"ofs": 2.0}, ValueError, "ofs was given"),
    (torch.zeros(LAT), torch.zeros(TXT), 1, {"rope_grid": "cubic"}, ValueError, "rope_grid"),
    (
        torch.zeros(LAT),
        torch.zeros(TXT),
        1,
        {"attention_backend": "x"},
        ValueError,
        "attention_backend",
    ),
    (torch.zeros(1, 2, 4, 7, 12), torch.zeros(TXT), 1, {}, ValueError, "latent height=7"),
    (torch.zeros(1, 0, 4, 8, 12), torch.zeros(TXT), 1, {}, ValueError, "latents must be non-empty"),
]


@pytest.mark.parametrize(("latents", "text", "t", "kwargs", "error", "msg"), FORWARD_CASES)
def test_bad_forward_inputs(model, latents, text, t, kwargs, error, msg):
    with pytest.raises(error) as info, torch.no_grad():
        model(latents, text, t, **kwargs)
    assert msg in str(info.value)


PACKED_CASES = [
    ({"video_tokens": torch.zeros(4, 16, dtype=torch.long)}, TypeError, "video_tokens has dtype"),
    ({"text_lengths": [-1]}, ValueError, "text_lengths[0]=-1"),
    ({"grids": [(1, 2, 0)]}, ValueError, "grids[0]=(1, 2, 0)"),
    ({"timestep": torch.tensor([math.inf])}, ValueError, "timestep=[inf]"),
    ({"attention_mode": "dense"}, ValueError, "attention_mode='dense'"),
]


@pytest.mark.parametrize(("changes", "error", "msg"), PACKED_CASES)
def test_bad_packed_inputs(model, changes, error, msg):
    kwargs = dict(
        video_tokens=torch.zeros(4, BASE.patch_dim),
        text_embeds=torch.zeros(3, 32),
        text_lengths=[3],
        grids=[(1, 2, 2)],
        timestep=torch.tensor([1]),
    )
    kwargs.update(changes)
    with pytest.raises(error) as info, torch.no_grad():
        packed_forward(model, kwargs.pop("video_tokens"), kwargs.pop("text_embeds"), **kwargs)
    assert msg in str(info.value)


def test_bad_loading(tmp_path, model):
    model.save_pretrained(tmp_path)
    with pytest.raises(TypeError, match="torch_dtype='bf16'"):
        ExpertDiT.from_pretrained(tmp_path, torch_dtype="bf16")
    with pytest.raises(FileNotFoundError, match="subfolder='transformer'"):
        ExpertDiT.from_pretrained(tmp_path, subfolder="transformer")
    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=re.escape(str(weights))):
        ExpertDiT.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"num_layers": "two"}')
    with pytest.raises(TypeError, match=r"config\.json.*DiTConfig\.num_layers='two'"):
        ExpertDiT.from_pretrained(tmp_path)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.dictionaries(st.sampled_from(sorted(FIELDS)), JSON_VALUES, min_size=1, max_size=3),
    literal=st.sampled_from(["", "NaN", "Infinity"]),
)
def test_fuzzed_config_json_is_valid_or_a_clean_refusal(tmp_path, changes, literal):
    data = {**DiTConfig.tiny().to_dict(), **changes}
    text = json.dumps(data)
    if literal:
        text = text.replace('"norm_eps": 1e-05', f'"norm_eps": {literal}')
    path = tmp_path / "config.json"
    path.write_text(text)
    try:
        config = DiTConfig.from_json_file(path)
    except (TypeError, ValueError) as err:
        message = str(err)
        assert str(path) in message
        named = re.search(r"DiTConfig\.(\w+)=", message)
        assert named is not None or "not valid JSON" in message, message
        if named:
            assert named.group(1) in FIELDS, message
    else:
        assert DiTConfig.from_dict(config.to_dict()) == config
