"""A LoRA trained by DiTModule, exported in the diffusers layout, loads back in cogvx.infer (same
outputs bit for bit) and in diffusers (same outputs at rel 1e-5); the merged export equals it."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import torch
from torch.utils.data import DataLoader

from cogvx.expert_dit import ExpertDiT
from cogvx.infer import load_lora
from cogvx.train import DiTModule, LoraSettings


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_trained_lora_round_trips_through_infer_and_diffusers(
    tiny_t2v_folder, synthetic_batch, tmp_path
):
    from diffusers import CogVideoXPipeline

    module = DiTModule(
        model_folder=str(tiny_t2v_folder),
        lora=LoraSettings(rank=4, alpha=8.0),
        optim=SimpleNamespace(lr=1e-2, warmup_steps=0, schedule="constant"),
        text_dropout=0.0,
    )
    g = torch.Generator().manual_seed(0)
    batch = synthetic_batch(
        [(torch.randn(3, 4, 4, 6, generator=g), torch.randn(12, 32, generator=g))]
    )
    L.Trainer(
        max_steps=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(module, DataLoader([batch] * 3, batch_size=None, collate_fn=lambda b: b))
    lora_dir = tmp_path / "lora"
    path = module.save_lora_weights(lora_dir)
    assert path.name == "pytorch_lora_weights.safetensors"

    x = torch.randn(2, 3, 4, 4, 6, generator=g)
    text = torch.randn(2, 12, 32, generator=g)
    t = torch.tensor([999, 400])
    module.dit.eval()
    with torch.no_grad():
        trained = module.dit(x, text, t)

    ours = ExpertDiT.from_pretrained(tiny_t2v_folder / "transformer").eval()
    with torch.no_grad():
        base = ours(x, text, t)
    load_lora(ours, lora_dir)
    with torch.no_grad():
        loaded = ours(x, text, t)
    assert torch.equal(loaded, trained)
    assert rel(loaded, base) > 1e-3  # the trained adapter changes the output

    pipe = CogVideoXPipeline.from_pretrained(tiny_t2v_folder)
    pipe.load_lora_weights(lora_dir)
    # RoPE tables are the pipeline's job in diffusers: pixel size 32 x 48, 3 latent frames.
    rope = pipe._prepare_rotary_positional_embeddings(8 * 4, 8 * 6, 3, torch.device("cpu"))
    with torch.no_grad():
        ref = pipe.transformer(
            hidden_states=x,
            encoder_hidden_states=text,
            timestep=t,
            image_rotary_emb=rope,
            return_dict=False,
        )[0]
    assert rel(loaded, ref) <= 1e-5

    module.save_transformer(tmp_path / "merged")
    merged = ExpertDiT.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        assert rel(merged(x, text, t), trained) <= 1e-5
