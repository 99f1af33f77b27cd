import numpy as np
import pytest
import torch

from cogvx.captioner.aesthetic import AestheticScorer, ClipAestheticScorer, load_aesthetic_head


def _mlp_state(d):
    state = {}
    for idx, (i, o) in zip((0, 2, 4, 6, 7), ((d, 1024), (1024, 128), (128, 64), (64, 16), (16, 1))):
        state[f"layers.{idx}.weight"] = torch.randn(o, i) * 0.05
        state[f"layers.{idx}.bias"] = torch.full((o,), 0.1)
    return state


def test_linear_and_mlp_heads(tmp_path):
    lin = torch.nn.Linear(8, 1)
    torch.save(lin.state_dict(), tmp_path / "linear.pth")
    head = load_aesthetic_head(tmp_path / "linear.pth")
    x = torch.randn(3, 8)
    np.testing.assert_allclose(head(x).detach().numpy(), lin(x).detach().numpy(), atol=1e-6)

    state = _mlp_state(8)
    torch.save(state, tmp_path / "mlp.pth")
    mlp = load_aesthetic_head(tmp_path / "mlp.pth")
    h = x
    for idx in (0, 2, 4, 6, 7):  # eval mode: dropouts are identity, no activations in between
        h = h @ state[f"layers.{idx}.weight"].T + state[f"layers.{idx}.bias"]
    np.testing.assert_allclose(mlp(x).detach().numpy(), h.numpy(), atol=1e-5)

    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a LAION aesthetic head"):
        load_aesthetic_head(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="head_path"):
        load_aesthetic_head(tmp_path / "missing.pth")


def test_linear_head_matches_evals_scorer(clip_dir, tmp_path, synth):
    """With the linear head our scorer is the evals LAION scorer: same numbers."""
    from cogvx.evals.backends.clip import LaionAestheticScorer

    torch.save(torch.nn.Linear(8, 1).state_dict(), tmp_path / "head.pth")
    ours = ClipAestheticScorer.from_local(clip_dir, tmp_path / "head.pth")
    assert isinstance(ours, AestheticScorer) and ours.name.startswith("laion-aesthetic-linear")
    frames = synth.moving(3)
    scores = ours(frames)
    assert scores.shape == (3,) and scores.dtype == np.float32
    ref = LaionAestheticScorer.from_local(clip_dir, tmp_path / "head.pth")(frames)
    np.testing.assert_allclose(scores, ref, rtol=1e-5, atol=1e-6)


def test_mlp_head_on_evals_embedder(clip_dir, tmp_path, synth):
    from cogvx.evals.backends.clip import CLIPBackend

    state = _mlp_state(8)
    torch.save(state, tmp_path / "mlp.pth")
    ours = ClipAestheticScorer.from_local(clip_dir, tmp_path / "mlp.pth")
    frames = synth.moving(2)
    feats = torch.from_numpy(CLIPBackend.from_local(clip_dir).embed_images(frames))
    np.testing.assert_allclose(
        np.linalg.norm(feats.numpy(), axis=1), 1.0, atol=1e-5
    )  # L2-normalised input
    expected = load_aesthetic_head(tmp_path / "mlp.pth")(feats)[:, 0].detach().numpy()
    np.testing.assert_allclose(ours(frames), expected, atol=1e-6)
