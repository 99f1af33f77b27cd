"""DiTConfig: presets, validation, reference config.json round trip."""

from __future__ import annotations

import json

import pytest

from cogvx.expert_dit import DiTConfig


def test_presets_match_spec():
    c2, c5, ci, c15, c15i = (
        DiTConfig.cogvideox_2b(),
        DiTConfig.cogvideox_5b(),
        DiTConfig.cogvideox_5b_i2v(),
        DiTConfig.cogvideox_1_5_5b(),
        DiTConfig.cogvideox_1_5_5b_i2v(),
    )
    assert (c2.num_layers, c2.inner_dim, c2.use_rotary_positional_embeddings) == (30, 1920, False)
    assert (c5.num_layers, c5.inner_dim, c5.use_rotary_positional_embeddings) == (42, 3072, True)
    assert (ci.in_channels, ci.use_learned_positional_embeddings) == (32, True)
    assert (c15.patch_size_t, c15.patch_bias, c15.default_rope_grid) == (2, False, "slice")
    assert (c15i.in_channels, c15i.ofs_embed_dim) == (32, 512)
    assert c5.default_rope_grid == "linspace"
    assert c2.sample_latent_frames == 13
    tiny = DiTConfig.tiny()
    assert (tiny.num_attention_heads, tiny.attention_head_dim, tiny.num_layers) == (2, 16, 2)


def test_roundtrip_json(tmp_path):
    for config in (DiTConfig.cogvideox_1_5_5b_i2v(), DiTConfig.tiny(patch_size_t=2)):
        path = tmp_path / "config.json"
        path.write_text(config.to_json_string())
        assert DiTConfig.from_json_file(path) == config
        data = json.loads(path.read_text())
        assert data["_class_name"] == "CogVideoXTransformer3DModel"
        assert "_diffusers_version" in data


def test_bookkeeping_keys_accepted():
    data = {**DiTConfig.tiny().to_dict(), "_name_or_path": "x", "_use_default_values": ["dropout"]}
    assert DiTConfig.from_dict(data) == DiTConfig.tiny()


def test_bad_configs():
    with pytest.raises(ValueError, match=r"DiTConfig: unknown key\(s\) \['num_layer'\]"):
        DiTConfig.from_dict({"num_layer": 3})
    with pytest.raises(ValueError, match="_class_name='AutoencoderKLCogVideoX'"):
        DiTConfig.from_dict({"_class_name": "AutoencoderKLCogVideoX"})
    with pytest.raises(
        ValueError, match=r"DiTConfig.attention_head_dim=24: RoPE needs a multiple of 16"
    ):
        DiTConfig.tiny(attention_head_dim=24, use_rotary_positional_embeddings=True)
    with pytest.raises(ValueError, match="learned position table needs use_rotary"):
        DiTConfig.tiny(use_learned_positional_embeddings=True)
    with pytest.raises(ValueError, match="activation_fn"):
        DiTConfig.tiny(activation_fn="relu")
    with pytest.raises(ValueError, match=r"DiTConfig\.patch_size=0: expected an int >= 1"):
        DiTConfig.tiny(patch_size=0)
    with pytest.raises(FileNotFoundError):
        DiTConfig.from_json_file("/nonexistent/config.json")
    with pytest.raises(TypeError):
        DiTConfig.from_dict(["num_layers"])


def test_frozen():
    config = DiTConfig.tiny()
    with pytest.raises(AttributeError):
        config.num_layers = 3  # type: ignore[misc]
