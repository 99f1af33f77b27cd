"""cogvx.infer.t5.T5Encoder against transformers' T5EncoderModel (the oracle) on random tiny
configs of awkward sizes: same folder, same token ids, same hidden states."""

from __future__ import annotations

import json
import re

import pytest
import torch
from transformers import T5Config, T5EncoderModel, T5ForConditionalGeneration

from cogvx.infer.t5 import T5Encoder, T5EncoderConfig, relative_position_bucket

# v1.1 / Flan (gated tanh-GELU), v1.0 (ReLU); odd widths, 3 heads, few buckets so a 40-token
# sequence reaches the logarithmic and the saturated buckets.
CONFIGS = {
    "gated-gelu": dict(feed_forward_proj="gated-gelu", d_model=24, d_kv=8, num_heads=3, d_ff=40),
    "relu": dict(feed_forward_proj="relu", d_model=20, d_kv=6, num_heads=2, d_ff=36),
    "gated-silu": dict(feed_forward_proj="gated-silu", d_model=16, d_kv=5, num_heads=3, d_ff=24),
}


def _reference(tmp_path, kind: str, *, num_layers: int = 3, cls=T5EncoderModel, seed: int = 0):
    config = T5Config(
        vocab_size=97,
        num_layers=num_layers,
        num_decoder_layers=1,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        **CONFIGS[kind],
    )
    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():  # non-trivial norms and position biases (they initialise to 1 / small)
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.uniform_(0.5, 1.5)
            elif "relative_attention_bias" in name:
                p.normal_(0.0, 1.0)
    folder = tmp_path / f"t5-{kind}-{cls.__name__}"
    model.save_pretrained(str(folder))
    return model, folder


def _ids(length: int = 40, batch: int = 3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 97, (batch, length), generator=g)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_float32_matches_transformers(tmp_path, kind):
    ref, folder = _reference(tmp_path, kind)
    ours = T5Encoder.from_pretrained(folder)
    ids = _ids()
    with torch.no_grad():
        want = ref(ids).last_hidden_state
        got = ours(ids)
    assert got.dtype == torch.float32 and got.shape == (3, 40, CONFIGS[kind]["d_model"])
    # The same ops in the same order (SDPA with the bias as its mask): equal to float32 rounding.
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_matches_transformers_loading_rules(tmp_path, dtype):
    """bfloat16 runs as stored; float16 keeps ``wo`` in float32 (transformers'
    ``_keep_in_fp32_modules``), so the residual stream turns float32 after the first block."""
    _, folder = _reference(tmp_path, "gated-gelu")
    ref = T5EncoderModel.from_pretrained(str(folder), dtype=dtype).eval()
    ours = T5Encoder.from_pretrained(folder, dtype=dtype)
    for name, p in ref.named_parameters():
        mine = ours.get_parameter(name.replace("encoder.embed_tokens", "shared"))
        assert mine.dtype == p.dtype, name
    ids = _ids(length=17)
    with torch.no_grad():
        want = ref(ids).last_hidden_state
        got = ours(ids)
    assert got.dtype == want.dtype
    torch.testing.assert_close(got.float(), want.float(), rtol=1e-2, atol=1e-2)
    assert (got.float() - want.float()).abs().max() <= 0.02 * want.float().abs().max()


def test_stored_dtype_is_kept_without_a_dtype(tmp_path):
    ref, folder = _reference(tmp_path, "relu")
    ref.to(torch.bfloat16).save_pretrained(str(tmp_path / "bf16"))
    assert T5Encoder.from_pretrained(tmp_path / "bf16").dtype == torch.bfloat16
    assert T5Encoder.from_pretrained(folder).dtype == torch.float32


def test_sharded_folder_and_full_t5_checkpoint(tmp_path):
    ref, folder = _reference(tmp_path, "gated-gelu", cls=T5ForConditionalGeneration)
    sharded = tmp_path / "sharded"
    ref.save_pretrained(str(sharded), max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    ids = _ids(length=9)
    with torch.no_grad():
        want = ref.get_encoder()(input_ids=ids).last_hidden_state
        for path in (folder, sharded):  # decoder.* and lm_head are ignored
            torch.testing.assert_close(
                T5Encoder.from_pretrained(path)(ids), want, rtol=1e-6, atol=1e-6
            )


def test_bucket_table_matches_transformers():
    from transformers.models.t5.modeling_t5 import T5Attention

    rel = torch.arange(-300, 301)[None, :]
    for buckets, distance in [(32, 128), (8, 20), (6, 9)]:
        want = T5Attention._relative_position_bucket(rel, True, buckets, distance)
        assert torch.equal(relative_position_bucket(rel, buckets, distance), want)


def test_config_round_trip_and_errors(tmp_path):
    _, folder = _reference(tmp_path, "gated-gelu")
    raw = json.loads((folder / "config.json").read_text())
    config = T5EncoderConfig.from_pretrained(folder)
    assert config.d_model == 24 and config.activation == "gelu_new" and config.is_gated
    assert config.to_dict() == raw
    with pytest.raises(ValueError, match="feed_forward_proj='gated-mish'"):
        T5EncoderConfig(feed_forward_proj="gated-mish")
    with pytest.raises(ValueError, match="model_type='umt5'"):
        T5EncoderConfig.from_dict({**raw, "model_type": "umt5"})
    with pytest.raises(ValueError, match="num_heads=0"):
        T5EncoderConfig(num_heads=0)
    with pytest.raises(ValueError, match=r"dtype=.*float8.*expected one of"):
        T5EncoderConfig(dtype="float8")


def test_missing_weights_and_bad_ids_are_named(tmp_path):
    _, folder = _reference(tmp_path, "relu")
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    del state["encoder.final_layer_norm.weight"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match=re.escape("encoder.final_layer_norm.weight")):
        T5Encoder.from_pretrained(folder)
    empty = tmp_path / "config-only"
    empty.mkdir()
    (empty / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match=re.escape("expected model.safetensors")):
        T5Encoder.from_pretrained(empty)
    model = T5Encoder(
        T5EncoderConfig(vocab_size=10, d_model=8, d_kv=4, num_heads=2, d_ff=8, num_layers=1)
    )
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[3, 10]]))
    with pytest.raises(ValueError, match="input_ids must be an integer tensor"):
        model(torch.zeros(2, 3))
