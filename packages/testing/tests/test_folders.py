"""The builders write folders that both our loaders and the reference (diffusers) open."""

from __future__ import annotations

import pytest
import torch

from cogvx.testing import (
    TinySpec,
    build_json_tokenizer,
    build_model_folder,
    build_spiece_tokenizer,
    read_index,
    transformer_kwargs,
)


@pytest.mark.parametrize("build", [build_spiece_tokenizer, build_json_tokenizer])
def test_tokenizers_have_t5_special_ids_and_append_eos(tmp_path, build):
    from transformers import T5Tokenizer

    tok = T5Tokenizer.from_pretrained(build(tmp_path / "tok"))
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    ids = tok("a panda plays a guitar").input_ids
    assert ids[-1] == 1 and len(ids) > 3


@pytest.mark.parametrize(
    "spec",
    [
        TinySpec("t2v", sampler="dpm", tokenizer="json"),
        TinySpec("i2v", task="i2v", snr_shift=1.0),
    ],
    ids=lambda s: s.name,
)
def test_cogvx_writer_folder_loads_in_ours_and_the_reference(tmp_path, spec):
    from diffusers import CogVideoXTransformer3DModel

    from cogvx.expert_dit.schedule import SchedulerConfig
    from cogvx.expert_dit.transformer import ExpertDiT
    from cogvx.vae3d import CausalVAE3D

    folder = build_model_folder(tmp_path, spec)
    assert read_index(folder)["_class_name"].startswith("CogVideoX")
    ours = ExpertDiT.from_pretrained(folder / "transformer").eval()
    ref = CogVideoXTransformer3DModel.from_pretrained(folder / "transformer").eval()
    kw = transformer_kwargs(spec)
    assert ours.config.in_channels == kw["in_channels"]
    # Sin-cos positions: the reference transformer alone applies no RoPE (its pipeline passes it).
    x = torch.randn(1, 1, kw["in_channels"], 2, 4, generator=torch.Generator().manual_seed(0))
    text = torch.randn(1, 12, 32)
    t = torch.tensor([500])
    ofs = torch.tensor([2.0]) if kw.get("ofs_embed_dim") else None
    with torch.no_grad():
        a = ours(x, text, t, ofs=ofs)
        b = ref(
            hidden_states=x, encoder_hidden_states=text, timestep=t, ofs=ofs, return_dict=False
        )[0]
    assert float(a.abs().max()) > 1e-3
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert CausalVAE3D.from_pretrained(folder / "vae").config.scaling_factor == 1.15258426
    assert SchedulerConfig.from_pretrained(folder / "scheduler").sampler == spec.sampler
    # A second call reuses the folder instead of rebuilding it.
    stamp = (folder / "model_index.json").stat().st_mtime_ns
    assert build_model_folder(tmp_path, spec) == folder
    assert (folder / "model_index.json").stat().st_mtime_ns == stamp


def test_bad_specs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="task='x2v'"):
        TinySpec("a", task="x2v")
    with pytest.raises(ValueError, match="writer='sat'"):
        build_model_folder(tmp_path, TinySpec("a"), writer="sat")


def test_v15_folder_has_the_temporal_patch_and_inverted_latent_scale(tmp_path):
    from diffusers import AutoencoderKLCogVideoX

    from cogvx.expert_dit.transformer import ExpertDiT
    from cogvx.vae3d import CausalVAE3D

    folder = build_model_folder(tmp_path, TinySpec("i2v-v15", task="i2v", v15=True))
    dit = ExpertDiT.from_pretrained(folder / "transformer").config
    assert (dit.patch_size_t, dit.ofs_embed_dim, dit.in_channels) == (2, 8, 8)
    vae = CausalVAE3D.from_pretrained(folder / "vae").config
    assert vae.invert_scale_latents and vae.scaling_factor == 0.7
    assert AutoencoderKLCogVideoX.from_pretrained(folder / "vae").config.invert_scale_latents
