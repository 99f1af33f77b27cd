"""SAT -> diffusers conversion, checked on SAT-named state dicts built by the inverse rules."""

from __future__ import annotations

import re

import pytest
import torch

from cogvx.expert_dit import ExpertDiT, convert_sat_checkpoint, convert_sat_state_dict
from cogvx.expert_dit.convert import main as convert_main

PREFIX = "model.diffusion_model."

# Inverse of the published rename table, written independently per key family (SAT names from
# sat/dit_video_concat.py: transformer.layers.{i}.attention/mlp/..., mixins.*).
_BLOCK = [
    ("attn1.to_out.0.", "attention.dense."),
    ("ff.net.0.proj.", "mlp.dense_h_to_4h."),
    ("ff.net.2.", "mlp.dense_4h_to_h."),
    ("norm1.norm.", "input_layernorm."),
    ("norm2.norm.", "post_attention_layernorm."),
]
_TOP = {
    "norm_final.": "transformer.final_layernorm.",
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "ofs_embedding.linear_1.": "ofs_embed.0.",
    "ofs_embedding.linear_2.": "ofs_embed.2.",
    "patch_embed.pos_embedding": "mixins.pos_embed.pos_embedding",
    "patch_embed.": "mixins.patch_embed.",
    "norm_out.norm.": "mixins.final_layer.norm_final.",
    "norm_out.linear.": "mixins.final_layer.adaLN_modulation.1.",
    "proj_out.": "mixins.final_layer.linear.",
}


def to_sat(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sat: dict[str, torch.Tensor] = {}
    blocks: dict[tuple[int, str, str], torch.Tensor] = {}
    for key, value in state.items():
        match = re.fullmatch(r"transformer_blocks\.(\d+)\.(.+)", key)
        if match is None:
            prefix = next(p for p in _TOP if key.startswith(p))
            sat[PREFIX + _TOP[prefix] + key[len(prefix) :]] = value
            continue
        layer, rest = int(match.group(1)), match.group(2)
        qkv = re.fullmatch(r"attn1\.to_([qkv])\.(weight|bias)", rest)
        norm = re.fullmatch(r"attn1\.norm_([qk])\.(weight|bias)", rest)
        ada = re.fullmatch(r"norm([12])\.linear\.(weight|bias)", rest)
        if qkv:
            blocks[(layer, "qkv" + qkv.group(1), qkv.group(2))] = value
        elif norm:
            name = "query" if norm.group(1) == "q" else "key"
            sat[f"{PREFIX}mixins.adaln_layer.{name}_layernorm_list.{layer}.{norm.group(2)}"] = value
        elif ada:
            blocks[(layer, "ada" + ada.group(1), ada.group(2))] = value
        else:
            ours, theirs = next((o, t) for o, t in _BLOCK if rest.startswith(o))
            sat[f"{PREFIX}transformer.layers.{layer}.{theirs}{rest[len(ours) :]}"] = value
    layers = {layer for layer, _, _ in blocks}
    for layer in layers:
        for kind in ("weight", "bias"):
            fused = torch.cat([blocks[(layer, f"qkv{c}", kind)] for c in "qkv"])
            sat[f"{PREFIX}transformer.layers.{layer}.attention.query_key_value.{kind}"] = fused
            n1 = blocks[(layer, "ada1", kind)].chunk(6)
            n2 = blocks[(layer, "ada2", kind)].chunk(6)
            # SAT order: msa (shift, scale, gate), mlp (...), text msa (...), text mlp (...).
            twelve = n1[0:3] + n2[0:3] + n1[3:6] + n2[3:6]
            sat[f"{PREFIX}mixins.adaln_layer.adaLN_modulations.{layer}.1.{kind}"] = torch.cat(
                twelve
            )
    return sat


def test_convert_inverse_mapping_every_variant(tiny_variants, helpers):
    for config in tiny_variants.values():
        model = ExpertDiT(config)
        state = helpers.randomize(model, seed=9)
        sat = to_sat(state)
        assert not any("transformer_blocks" in k for k in sat)
        # Extra tensors of a full SAT checkpoint are skipped or dropped.
        sat[PREFIX + "mixins.pos_embed.freqs_cos"] = torch.zeros(3)
        sat["first_stage_model.encoder.conv_in.weight"] = torch.zeros(3)
        if not config.use_learned_positional_embeddings:
            sat[PREFIX + "mixins.pos_embed.pos_embedding"] = torch.zeros(1, 5, config.inner_dim)
        converted = convert_sat_state_dict(sat, config)
        assert converted.keys() == state.keys()
        for key in state:
            torch.testing.assert_close(converted[key], state[key], rtol=0, atol=0)


def test_adaln_twelve_way_split_order():
    dim = 2
    rows = torch.arange(12 * dim, dtype=torch.float32)[:, None].expand(
        -1, 3
    )  # chunk c has rows 2c, 2c+1
    out = convert_sat_state_dict({f"{PREFIX}mixins.adaln_layer.adaLN_modulations.0.1.weight": rows})
    chunk_ids = lambda t: (t[::dim, 0] / dim).long().tolist()  # noqa: E731
    assert chunk_ids(out["transformer_blocks.0.norm1.linear.weight"]) == [0, 1, 2, 6, 7, 8]
    assert chunk_ids(out["transformer_blocks.0.norm2.linear.weight"]) == [3, 4, 5, 9, 10, 11]
    with pytest.raises(ValueError, match="not a multiple of 12"):
        convert_sat_state_dict(
            {f"{PREFIX}mixins.adaln_layer.adaLN_modulations.0.1.bias": torch.zeros(13)}
        )


def test_convert_checkpoint_file_to_folder(tmp_path, tiny_variants, helpers):
    config = tiny_variants["5b-i2v-learned-rope"]
    model = ExpertDiT(config)
    state = helpers.randomize(model, seed=10)
    torch.save({"module": to_sat(state)}, tmp_path / "mp_rank_00_model_states.pt")
    convert_sat_checkpoint(tmp_path / "mp_rank_00_model_states.pt", tmp_path / "out", config)
    loaded = ExpertDiT.from_pretrained(tmp_path / "out")
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    # A checkpoint of another size fails with the key/shape report.
    with pytest.raises(ValueError, match="mis-shaped keys"):
        convert_sat_checkpoint(
            tmp_path / "mp_rank_00_model_states.pt",
            tmp_path / "bad",
            config.replace(num_attention_heads=4),
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_sat_checkpoint(tmp_path / "missing.pt", tmp_path / "x", config)


def test_convert_command_line_rejects_unknown_preset(tmp_path):
    with pytest.raises(SystemExit):
        convert_main([str(tmp_path / "a.pt"), str(tmp_path / "out"), "--preset", "7b"])
