"""LoRA in the diffusers layout: load (with and without adapter metadata), scale, fuse, unfuse,
unload; checked against diffusers' own LoRA loading on the same file."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from cogvx.expert_dit.transformer import ExpertDiT
from cogvx.infer import TextToVideoPipeline, fuse_lora, load_lora, set_lora_scale, unfuse_lora
from cogvx.infer.lora import read_lora_file, unload_lora

SPEC = dict(name="t2v-sincos-ddim", sampler="ddim", tokenizer="spiece", snr_shift=3.0)


def make_lora(folder, out_dir, *, metadata: bool):
    """A random LoRA on the reference transformer, saved with diffusers' save_lora_weights."""
    from diffusers import CogVideoXPipeline, CogVideoXTransformer3DModel

    transformer = CogVideoXTransformer3DModel.from_pretrained(folder / "transformer")
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        init_lora_weights=False,
        target_modules=["to_q", "to_k", "to_v", "to_out.0", "ff.net.2"],
        rank_pattern={"transformer_blocks.1.attn1.to_q": 2},
        alpha_pattern={"transformer_blocks.1.attn1.to_q": 2} if not metadata else {},
    )
    torch.manual_seed(11)
    transformer.add_adapter(config)
    CogVideoXPipeline.save_lora_weights(
        out_dir,
        transformer_lora_layers=get_peft_model_state_dict(transformer),
        transformer_lora_adapter_metadata=config.to_dict() if metadata else None,
    )
    return out_dir


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 4, 2, 4, generator=g)
    text = torch.randn(2, 12, 32, generator=g)
    t = torch.tensor([999, 500])
    return x, text, t


@pytest.mark.parametrize("metadata", [True, False], ids=["metadata", "inferred-config"])
def test_lora_matches_reference_scale_fuse_unfuse(make_folder, tmp_path, metadata):
    from diffusers import CogVideoXPipeline

    folder = make_folder(SPEC)
    lora_dir = make_lora(folder, tmp_path / "lora", metadata=metadata)
    assert (lora_dir / "pytorch_lora_weights.safetensors").is_file()
    state, config = read_lora_file(lora_dir)
    assert all(".lora_A." in k or ".lora_B." in k for k in state)
    assert config.r == 4 and config.rank_pattern == {"transformer_blocks.1.attn1.to_q": 2}

    ref = CogVideoXPipeline.from_pretrained(folder)
    x, text, t = inputs()
    with torch.no_grad():
        base_ref = ref.transformer(
            hidden_states=x, encoder_hidden_states=text, timestep=t, return_dict=False
        )[0]
    ref.load_lora_weights(lora_dir, adapter_name="style")

    ours = ExpertDiT.from_pretrained(folder / "transformer").eval()
    with torch.no_grad():
        base = ours(x, text, t)
    load_lora(ours, lora_dir, adapter_name="style", scale=1.0)

    def run_ref():
        with torch.no_grad():
            return ref.transformer(
                hidden_states=x, encoder_hidden_states=text, timestep=t, return_dict=False
            )[0]

    def run_ours():
        with torch.no_grad():
            return ours(x, text, t)

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max())

    full_ref = run_ref()
    full = run_ours()
    assert rel(full, full_ref) <= 1e-5
    assert rel(full, base) > 1e-3  # the LoRA does something

    for scale in (0.5, 0.0):
        ref.set_adapters(["style"], [scale])
        set_lora_scale(ours, scale)
        assert rel(run_ours(), run_ref()) <= 1e-5
    assert rel(run_ours(), base) <= 1e-6  # scale 0 is the base model

    set_lora_scale(ours, 1.0)
    fuse_lora(ours)
    assert rel(run_ours(), full) <= 1e-5
    with pytest.raises(ValueError, match="unfuse"):
        set_lora_scale(ours, 0.3)
    unfuse_lora(ours)
    assert rel(run_ours(), full) <= 1e-6
    unload_lora(ours)
    assert rel(run_ours(), base) <= 1e-6
    assert rel(base, base_ref) <= 1e-5


def test_pipeline_lora_staged_and_fused(make_folder, tmp_path):
    folder = make_folder(SPEC)
    lora_dir = make_lora(folder, tmp_path / "lora", metadata=True)
    kw = dict(
        prompt="a cat",
        height=16,
        width=32,
        num_frames=9,
        num_inference_steps=2,
        max_sequence_length=12,
        progress=False,
    )
    resident = TextToVideoPipeline.from_pretrained(folder)
    base = resident(**kw, generator=torch.Generator().manual_seed(0)).frames
    resident.load_lora_weights(lora_dir, scale=0.7)
    with_lora = resident(**kw, generator=torch.Generator().manual_seed(0)).frames
    assert (with_lora - base).abs().max() > 1e-3
    resident.fuse_lora()
    fused = resident(**kw, generator=torch.Generator().manual_seed(0)).frames
    assert (fused - with_lora).abs().max() <= 1e-4
    # A staged pipeline reloads the transformer per call and re-applies the LoRA (fused too).
    staged = TextToVideoPipeline.from_pretrained(folder, residency="staged")
    staged.load_lora_weights(lora_dir, scale=0.7)
    staged.fuse_lora()
    assert (
        staged(**kw, generator=torch.Generator().manual_seed(0)).frames - with_lora
    ).abs().max() <= 1e-4
    assert staged.transformer.peek() is None


def test_bad_lora_files_are_named(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(FileNotFoundError, match="LoRA weights not found"):
        read_lora_file(tmp_path)
    save_file(
        {"transformer.x.weight": torch.zeros(2)}, tmp_path / "pytorch_lora_weights.safetensors"
    )
    with pytest.raises(ValueError, match="not a LoRA file"):
        read_lora_file(tmp_path)
