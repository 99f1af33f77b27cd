import numpy as np
import pytest
import torch

from cogvx.captioner.classifiers import (
    ClassifierHead,
    HandcraftedFeatures,
    HeadClassifier,
    NegativeLabel,
    TransformersImageFeatures,
    VideoClassifier,
    clip_features,
    train_head,
)


def test_six_paper_labels():
    assert [label.value for label in NegativeLabel] == [
        "editing",
        "static",
        "low_quality",
        "lecture",
        "text_dominated",
        "noisy_screenshot",
    ]


def _dataset(synth, n_per_class=6, seed=0):
    """Clips of three kinds with multi-labels (static, text_dominated)."""
    rng = np.random.default_rng(seed)
    clips, targets = [], []
    ext = HandcraftedFeatures(analysis_size=64)
    for i in range(n_per_class):
        clips.append(synth.moving(6, speed=float(rng.uniform(2, 6)), seed=100 + i))
        targets.append([0, 0])
        clips.append(synth.static(6) // 2 + int(rng.integers(0, 60)))
        targets.append([1, 0])
        clips.append(synth.text(6))
        targets.append([np.nan, 1])  # static unknown for text pages: masked in the loss
    feats = np.stack([clip_features(ext(c)) for c in clips])
    return ext, clips, feats, np.array(targets, np.float32)


def test_train_head_separates_labels_and_roundtrips(synth, tmp_path):
    ext, _, feats, targets = _dataset(synth)
    labels = ("static", "text_dominated")
    head = train_head(feats, targets, labels, epochs=200)
    _, test_clips, _, test_targets = _dataset(synth, n_per_class=2, seed=1)
    clf = HeadClassifier(ext, head)
    assert isinstance(clf, VideoClassifier)
    probs = [clf(c) for c in test_clips]
    for p, t in zip(probs, test_targets):
        if not np.isnan(t[0]):
            assert (p["static"] > 0.5) == bool(t[0])
        assert (p["text_dominated"] > 0.5) == bool(t[1])
    # save / load gives the same probabilities
    head.save(tmp_path / "head")
    again = HeadClassifier(ext, ClassifierHead.load(tmp_path / "head"))
    assert again(test_clips[0]) == pytest.approx(probs[0], abs=1e-6)


def test_mlp_head_trains(synth):
    _, _, feats, targets = _dataset(synth, n_per_class=3)
    head = train_head(feats, targets, ("static", "text_dominated"), hidden_dim=16, epochs=150)
    logits = head(torch.from_numpy(feats))
    mask = ~np.isnan(targets)
    pred = (logits.detach().numpy() > 0).astype(np.float32)
    assert (pred[mask] == targets[mask]).all()


def test_train_head_validation():
    with pytest.raises(ValueError, match="targets has 1 columns"):
        train_head(np.zeros((4, 3)), np.zeros((4, 1)), ["a", "b"])
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        train_head(np.zeros((4, 3)), np.full((4, 1), 2.0), ["a"])
    with pytest.raises(FileNotFoundError, match=r"head\.json"):
        ClassifierHead.load("/nonexistent/head")
    with pytest.raises(ValueError, match=r"\[T,D\]"):
        clip_features(np.zeros((0, 4)))


def test_transformers_image_features(tmp_path, synth):
    from transformers import ViTConfig, ViTImageProcessorPil, ViTModel

    torch.manual_seed(0)
    ViTModel(
        ViTConfig(
            image_size=32,
            patch_size=8,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    ).save_pretrained(tmp_path / "vit")
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    ext = TransformersImageFeatures(tmp_path / "vit", batch_size=3)
    frames = synth.moving(5)
    feats = ext(frames)
    assert feats.shape == (5, ext.dim) == (5, 16) and feats.dtype == np.float32
    # batching does not change the result
    np.testing.assert_allclose(
        TransformersImageFeatures(tmp_path / "vit", batch_size=5)(frames), feats, atol=1e-5
    )
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        TransformersImageFeatures(tmp_path / "missing")
