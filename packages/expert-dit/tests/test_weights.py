"""State-dict layout and the diffusers model folder: keys, shapes, save/load, errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from cogvx.expert_dit import DiTConfig, ExpertDiT

PRESETS = {
    "2b": (DiTConfig.cogvideox_2b, 736, 1_693_783_872),
    "5b": (DiTConfig.cogvideox_5b, 1024, 5_570_283_072),
    "5b-i2v": (DiTConfig.cogvideox_5b_i2v, 1025, 5_570_479_680),
    "1.5-5b": (DiTConfig.cogvideox_1_5_5b, 1024, 5_570_676_352),
    "1.5-5b-i2v": (DiTConfig.cogvideox_1_5_5b_i2v, 1028, 5_571_594_880),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_full_size_keys_and_shapes_match_diffusers_on_meta(name):
    """Every full-size preset has the reference's state-dict keys and shapes (docs/transformer.md §State dict)."""
    from diffusers import CogVideoXTransformer3DModel

    make, n_keys, n_params = PRESETS[name]
    config = make()
    with torch.device("meta"):
        ours = ExpertDiT(config)
        ref = CogVideoXTransformer3DModel(**dataclasses.asdict(config))
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours_shapes == ref_shapes
    assert len(ours_shapes) == n_keys
    # Transformer parameter counts published in the spec (learned table is a buffer, not counted).
    assert sum(p.numel() for p in ours.parameters()) == n_params


def test_pos_embedding_persistence():
    """5B-I2V's learned table is a persistent buffer; the 2B sin-cos table is not stored."""
    with torch.device("meta"):
        i2v = ExpertDiT(DiTConfig.cogvideox_5b_i2v())
        t2v = ExpertDiT(DiTConfig.cogvideox_2b())
    assert i2v.state_dict()["patch_embed.pos_embedding"].shape == (1, 17776, 3072)
    assert "patch_embed.pos_embedding" not in dict(i2v.named_parameters())
    assert not any("pos_embedding" in k for k in t2v.state_dict())


def _tiny(tiny_variants, helpers, name="5b-i2v-learned-rope"):
    model = ExpertDiT(tiny_variants[name]).eval()
    helpers.randomize(model, seed=4)
    return model


def _same(a: ExpertDiT, b: ExpertDiT) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)


@pytest.mark.parametrize("shard", ["10GB", 20_000])
def test_save_load_roundtrip(tmp_path, tiny_variants, helpers, shard):
    model = _tiny(tiny_variants, helpers)
    model.save_pretrained(tmp_path, max_shard_size=shard)
    files = sorted(p.name for p in tmp_path.iterdir())
    if shard == "10GB":
        assert files == ["config.json", "diffusion_pytorch_model.safetensors"]
    else:
        assert "diffusion_pytorch_model.safetensors.index.json" in files
        assert sum(f.endswith(".safetensors") for f in files) > 1
    loaded = ExpertDiT.from_pretrained(tmp_path)
    assert loaded.config == model.config
    _same(model, loaded)
    half = ExpertDiT.from_pretrained(tmp_path, torch_dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16


def test_resave_removes_stale_shards(tmp_path, tiny_variants, helpers):
    model = _tiny(tiny_variants, helpers)
    model.save_pretrained(tmp_path, max_shard_size=20_000)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    _same(model, ExpertDiT.from_pretrained(tmp_path))


@pytest.mark.parametrize("shard", ["10GB", "30KB"])
def test_diffusers_folders_load_both_ways(tmp_path, tiny_variants, helpers, shard):
    """Ours loads a folder diffusers saved (single and sharded), and diffusers loads ours."""
    from diffusers import CogVideoXTransformer3DModel

    config = tiny_variants["1.5-i2v-ofs"]
    ref = helpers.reference_model(config)
    helpers.randomize(ref, seed=8)
    ref.save_pretrained(tmp_path / "ref", max_shard_size=shard)
    ours = ExpertDiT.from_pretrained(tmp_path / "ref")
    assert ours.config == config
    sref = ref.state_dict()
    for k, v in ours.state_dict().items():
        torch.testing.assert_close(v, sref[k], rtol=0, atol=0)

    ours.save_pretrained(tmp_path / "ours", max_shard_size=shard)
    back = CogVideoXTransformer3DModel.from_pretrained(tmp_path / "ours")
    for k, v in back.state_dict().items():
        torch.testing.assert_close(v, sref[k], rtol=0, atol=0)
    written = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert written["_class_name"] == "CogVideoXTransformer3DModel"


def test_pipeline_folder_transformer_subfolder(tmp_path, tiny_variants, helpers):
    model = _tiny(tiny_variants, helpers)
    model.save_pretrained(tmp_path / "transformer")
    _same(model, ExpertDiT.from_pretrained(tmp_path))


def test_load_errors_name_the_problem(tmp_path, tiny_variants, helpers):
    from safetensors.torch import save_file

    model = _tiny(tiny_variants, helpers)
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        ExpertDiT.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        ExpertDiT.from_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    weights = tmp_path / "diffusion_pytorch_model.safetensors"

    state = {k: v.clone() for k, v in model.state_dict().items()}
    del state["proj_out.bias"]
    state["extra.weight"] = torch.zeros(2)
    state["norm_final.weight"] = torch.zeros(3)
    save_file(state, weights)
    with pytest.raises(ValueError) as info:
        ExpertDiT.from_pretrained(tmp_path)
    message = str(info.value)
    assert "missing keys (1): proj_out.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "norm_final.weight: checkpoint (3,) vs model (32,)" in message

    weights.unlink()
    with pytest.raises(FileNotFoundError, match=r"diffusion_pytorch_model\.safetensors"):
        ExpertDiT.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="max_shard_size"):
        model.save_pretrained(tmp_path, max_shard_size="lots")


def test_config_json_roundtrip_with_reference_keys(tmp_path, tiny_variants):
    """Every key the reference writes is accepted (``_class_name``, ``_diffusers_version``...)."""
    from diffusers import CogVideoXTransformer3DModel

    for config in tiny_variants.values():
        ref = CogVideoXTransformer3DModel(**dataclasses.asdict(config))
        ref.save_config(tmp_path)
        written = json.loads((tmp_path / "config.json").read_text())
        assert DiTConfig.from_dict(written) == config
        ours = config.to_dict()
        assert set(ours) == set(written)
        assert {k: v for k, v in ours.items() if k != "_diffusers_version"} == {
            k: v for k, v in written.items() if k != "_diffusers_version"
        }
