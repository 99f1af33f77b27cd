"""Config round trip, checkpoint loading/saving (sharded, dtype, parts), SAT conversion, bad input."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from cogvx.vae3d import CausalVAE3D, Tiling, VAEConfig, convert_sat_state_dict, sat_to_diffusers_key


# ------------------------------------------------------------------ config
def test_config_round_trips_reference_config_json(tmp_path, make_reference):
    """diffusers writes config.json; we read it, keep every key, and write the same keys back."""
    ref = make_reference(VAEConfig.cogvideox_5b().replace(block_out_channels=(32, 32, 32, 32)))
    ref.save_config(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    cfg = VAEConfig.from_json_file(tmp_path / "config.json")
    assert cfg.scaling_factor == 0.7
    back = cfg.to_dict()
    assert set(back) == set(written)
    for key, value in written.items():
        assert back[key] == value, key


def test_config_keeps_unknown_keys_and_presets():
    data = VAEConfig.cogvideox_1_5().to_dict() | {"_name_or_path": "x", "new_key": [1, 2]}
    with pytest.warns(UserWarning, match="new_key"):
        cfg = VAEConfig.from_dict(data)
    assert cfg.to_dict()["new_key"] == [1, 2] and cfg.to_dict()["_name_or_path"] == "x"
    assert cfg.invert_scale_latents and cfg.scaling_factor == 0.7
    assert VAEConfig.cogvideox_2b().scaling_factor == 1.15258426
    assert VAEConfig.tiny().spatial_compression == 8 and VAEConfig.tiny().temporal_compression == 4
    with pytest.warns(UserWarning):
        assert hash(cfg) == hash(VAEConfig.from_dict(cfg.to_dict()))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"act_fn": "gelu"}, "act_fn"),
        ({"block_out_channels": (8, 12)}, "down_block_types"),
        ({"norm_num_groups": 5}, "norm_num_groups"),
        ({"temporal_compression_ratio": 3}, "temporal_compression_ratio"),
        ({"latents_mean": (0.0,)}, "latents_mean"),
        ({"down_block_types": ("DownEncoderBlock2D",) * 4}, "down_block_types"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig.tiny().replace(**changes)


def test_config_wrong_class_name():
    with pytest.raises(ValueError, match="_class_name"):
        VAEConfig.from_dict({"_class_name": "AutoencoderKL"})


# ------------------------------------------------------------------ checkpoints
def test_save_load_round_trip_sharded_and_dtype(tmp_path, tiny_vae, make_video):
    tiny_vae.save_pretrained(tmp_path / "one")
    tiny_vae.save_pretrained(tmp_path / "sharded", max_shard_size=20_000)
    index = json.loads(
        (tmp_path / "sharded" / "diffusion_pytorch_model.safetensors.index.json").read_text()
    )
    assert len(set(index["weight_map"].values())) > 1
    x = make_video(1, 5, 16, 16, seed=1)
    with torch.no_grad():
        want = tiny_vae.encode(x).mode()
        for folder in ("one", "sharded"):
            vae = CausalVAE3D.from_pretrained(tmp_path / folder).eval()
            assert vae.config == tiny_vae.config
            assert torch.equal(vae.encode(x).mode(), want)
        bf = CausalVAE3D.from_pretrained(tmp_path / "sharded", torch_dtype=torch.bfloat16)
        assert bf.dtype == torch.bfloat16


def test_reference_can_load_our_folder_and_we_load_theirs(tmp_path, tiny_pair, make_reference):
    diffusers = pytest.importorskip("diffusers")
    ours, ref = tiny_pair
    ours.save_pretrained(tmp_path / "ours")
    theirs = diffusers.AutoencoderKLCogVideoX.from_pretrained(tmp_path / "ours")
    for k, v in ours.state_dict().items():
        assert torch.equal(theirs.state_dict()[k], v)
    ref.save_pretrained(tmp_path / "ref")  # diffusers' own file names and config
    back = CausalVAE3D.from_pretrained(tmp_path / "ref")
    for k, v in ref.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


def test_decoder_only_loading(tmp_path, tiny_vae):
    tiny_vae.save_pretrained(tmp_path)
    dec = CausalVAE3D.from_pretrained(tmp_path, parts=("decoder",))
    assert dec.encoder is None
    assert all(k.startswith("decoder.") for k in dec.state_dict())
    with pytest.raises(RuntimeError, match="encoder is not loaded"):
        dec.encode(torch.zeros(1, 3, 5, 16, 16))


def _write(folder, state, config):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config.to_json_string())
    save_file(
        {k: v.contiguous() for k, v in state.items()},
        str(folder / "diffusion_pytorch_model.safetensors"),
    )


def test_bad_checkpoints(tmp_path, tiny_vae):
    state = tiny_vae.state_dict()
    cfg = tiny_vae.config
    missing = dict(state)
    missing.pop("decoder.conv_out.conv.bias")
    _write(tmp_path / "missing", missing, cfg)
    with pytest.raises(ValueError, match=r"missing keys \(1\): decoder\.conv_out\.conv\.bias"):
        CausalVAE3D.from_pretrained(tmp_path / "missing")
    _write(tmp_path / "extra", {**state, "encoder.bogus.weight": torch.zeros(2)}, cfg)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): encoder\.bogus\.weight"):
        CausalVAE3D.from_pretrained(tmp_path / "extra")
    shaped = dict(state)
    shaped["encoder.conv_in.conv.bias"] = torch.zeros(99)
    _write(tmp_path / "shape", shaped, cfg)
    with pytest.raises(
        ValueError,
        match=r"mis-shaped keys \(1\): encoder\.conv_in\.conv\.bias: checkpoint \(99,\) vs model \(8,\)",
    ):
        CausalVAE3D.from_pretrained(tmp_path / "shape")
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        CausalVAE3D.from_pretrained(tmp_path / "nope")
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text(cfg.to_json_string())
    with pytest.raises(FileNotFoundError, match=r"diffusion_pytorch_model\.safetensors"):
        CausalVAE3D.from_pretrained(tmp_path / "noweights")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "config.json").write_text(cfg.to_json_string())
    (tmp_path / "corrupt" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="cannot read safetensors"):
        CausalVAE3D.from_pretrained(tmp_path / "corrupt")


# ------------------------------------------------------------------ SAT conversion
def _diffusers_to_sat(key: str, levels: int = 4) -> str:
    """The inverse of the rename table of docs/vae.md §SAT checkpoints (to build SAT-named test checkpoints)."""
    key = re.sub(
        r"^(encoder|decoder)\.mid_block\.resnets\.(\d)\.",
        lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}.",
        key,
    )
    key = re.sub(
        r"^decoder\.up_blocks\.(\d+)\.", lambda m: f"decoder.up.{levels - 1 - int(m[1])}.", key
    )
    key = key.replace("encoder.down_blocks.", "encoder.down.")
    key = key.replace(".resnets.", ".block.").replace(".downsamplers.0.", ".downsample.")
    key = key.replace(".upsamplers.0.", ".upsample.").replace(".conv_shortcut.", ".nin_shortcut.")
    return key


def test_sat_state_dict_converts_and_matches(tiny_vae, make_video):
    ours = tiny_vae.state_dict()
    sat = {_diffusers_to_sat(k): v.clone() for k, v in ours.items()}
    assert "decoder.up.3.block.0.norm1.conv_y.conv.weight" in sat  # up_blocks.0 <-> up.3
    assert "encoder.mid.block_1.norm1.weight" in sat
    assert "encoder.down.1.block.0.nin_shortcut.weight" in sat
    sat["loss.logvar"] = torch.zeros(())
    sat["loss.discriminator.blocks.0.weight"] = torch.zeros(3)
    converted = convert_sat_state_dict({"state_dict": sat})
    assert set(converted) == set(ours)
    vae = CausalVAE3D(tiny_vae.config).eval()
    vae.load_checked(converted)
    x = make_video(1, 5, 16, 16, seed=2)
    with torch.no_grad():
        assert torch.equal(vae.encode(x).mode(), tiny_vae.encode(x).mode())
    assert sat_to_diffusers_key("first_stage_model.decoder.up.0.upsample.conv.weight") == (
        "decoder.up_blocks.3.upsamplers.0.conv.weight"
    )
    assert sat_to_diffusers_key("loss.perceptual_loss.net.0.weight") is None


def test_sat_full_size_keys_map_onto_official_model():
    with torch.device("meta"):
        ours = CausalVAE3D(VAEConfig.cogvideox_2b()).state_dict()
    sat = {_diffusers_to_sat(k): v for k, v in ours.items()}
    assert set(convert_sat_state_dict(sat)) == set(ours)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("shape", "kwargs", "error", "message"),
    [
        ((1, 3, 8, 16, 16), {}, ValueError, r"8 frames.*4k\+1.*5 or 9.*pad_frames=True"),
        ((1, 3, 5, 20, 16), {}, ValueError, r"20x16.*multiples of 8.*pad_spatial=True"),
        ((1, 4, 5, 16, 16), {}, ValueError, r"4 channels.*needs 3"),
        ((3, 5, 16, 16), {}, ValueError, r"5 dims"),
    ],
)
def test_bad_video_input(tiny_vae, shape, kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny_vae.encode(torch.zeros(shape), **kwargs)


def test_bad_video_dtype_nan_and_padding(tiny_vae):
    with pytest.raises(TypeError, match=r"uint8.*floating point"):
        tiny_vae.encode(torch.zeros(1, 3, 5, 16, 16, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"float64.*weights are torch.float32"):
        tiny_vae.encode(torch.zeros(1, 3, 5, 16, 16, dtype=torch.float64))
    x = torch.zeros(1, 3, 5, 16, 16)
    x[0, 0, 2, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        tiny_vae.encode(x)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        tiny_vae.encode([[0.0]])
    with torch.no_grad():
        z = tiny_vae.encode(torch.zeros(1, 3, 7, 20, 16), pad_frames=True, pad_spatial=True).mode()
    assert z.shape == (1, 4, 3, 3, 2)
    with pytest.raises(ValueError, match="frames_per_chunk=6"):
        tiny_vae.encode(torch.zeros(1, 3, 5, 16, 16), frames_per_chunk=6)


def test_bad_latent_input(tiny_vae):
    with pytest.raises(ValueError, match=r"latents has 16 channels.*needs 4"):
        tiny_vae.decode(torch.zeros(1, 16, 2, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        tiny_vae.decode(torch.full((1, 4, 2, 2, 2), float("inf")))
    with pytest.raises(ValueError, match="latent_frames_per_chunk=0"):
        tiny_vae.decode(torch.zeros(1, 4, 2, 2, 2), latent_frames_per_chunk=0)
    with pytest.raises(ValueError, match="too small"):
        tiny_vae.decode(torch.zeros(1, 4, 2, 2, 2), tiling=Tiling(4, 4))
