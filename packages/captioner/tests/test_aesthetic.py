import numpy as np
import pytest
import torch

from cogvx.captioner.aesthetic import AestheticScorer, ClipAestheticScorer, load_aesthetic_head


def _tiny_clip(folder):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        projection_dim=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    CLIPVisionModelWithProjection(cfg).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)


def test_linear_and_mlp_heads(tmp_path):
    lin = torch.nn.Linear(16, 1)
    torch.save(lin.state_dict(), tmp_path / "linear.pth")
    head = load_aesthetic_head(tmp_path / "linear.pth")
    x = torch.randn(3, 16)
    np.testing.assert_allclose(head(x).detach().numpy(), lin(x).detach().numpy(), atol=1e-6)

    mlp_state = {}
    for idx, (i, o) in zip(
        (0, 2, 4, 6, 7), ((16, 1024), (1024, 128), (128, 64), (64, 16), (16, 1))
    ):
        mlp_state[f"layers.{idx}.weight"] = torch.randn(o, i) * 0.01
        mlp_state[f"layers.{idx}.bias"] = torch.zeros(o)
    torch.save(mlp_state, tmp_path / "mlp.pth")
    mlp = load_aesthetic_head(tmp_path / "mlp.pth")
    assert mlp(x).shape == (3, 1)

    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a LAION aesthetic head"):
        load_aesthetic_head(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="head_path"):
        load_aesthetic_head(tmp_path / "missing.pth")


def test_clip_aesthetic_scorer_matches_manual(tmp_path, synth):
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    _tiny_clip(tmp_path / "clip")
    lin = torch.nn.Linear(16, 1)
    torch.save(lin.state_dict(), tmp_path / "head.pth")
    scorer = ClipAestheticScorer(tmp_path / "clip", tmp_path / "head.pth", batch_size=2)
    assert isinstance(scorer, AestheticScorer)
    frames = synth.moving(3)
    scores = scorer(frames)
    assert scores.shape == (3,) and scores.dtype == np.float32

    proc = CLIPImageProcessor.from_pretrained(tmp_path / "clip")
    model = CLIPVisionModelWithProjection.from_pretrained(tmp_path / "clip").eval()
    with torch.no_grad():
        emb = model(
            pixel_values=proc(images=list(frames), return_tensors="pt")["pixel_values"]
        ).image_embeds
        ref = lin(emb / emb.norm(dim=-1, keepdim=True))[:, 0].numpy()
    np.testing.assert_allclose(scores, ref, atol=1e-5)
