"""Real local loaders (from_pretrained on a folder) with tiny random transformers models."""

import numpy as np
import pytest
import torch

from cogvx.evals.backends.clip import CLIPBackend, FrameMeanVideoText, LaionAestheticScorer
from cogvx.evals.backends.preprocess import center_crop, resize_shorter, shorter_side_size
from cogvx.evals.backends.protocols import BackendUnavailableError, TextImageModel
from cogvx.evals.backends.vision import DinoEmbedder
from cogvx.evals.evaluator import evaluate
from cogvx.evals.samples import VideoSample
from cogvx.evals.vbench.consistency import (
    BackgroundConsistency,
    SubjectConsistency,
    consistency_terms,
)
from cogvx.evals.vbench.quality import AestheticQuality
from cogvx.evals.vbench.text_video import AppearanceStyle, OverallConsistency, TemporalStyle

from .conftest import static_video
from .tiny_models import save_tiny_clip, save_tiny_vit


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return save_tiny_clip(root / "clip"), save_tiny_vit(root / "dino")


@pytest.fixture(scope="module")
def clip(model_dirs):
    return CLIPBackend.from_local(model_dirs[0])


def test_consistency_static_is_one_and_cut_is_lower(model_dirs):
    dino = DinoEmbedder.from_local(model_dirs[1])
    rng = np.random.default_rng(0)
    still = static_video(frames=4, size=40)
    cut = np.concatenate(
        [still[:2], rng.integers(0, 256, size=(2, 40, 48, 3), dtype=np.uint8)[:, :, :40]]
    )
    vids = [VideoSample.from_frames("still", still), VideoSample.from_frames("cut", cut)]
    res = evaluate(vids, [SubjectConsistency(dino)], progress=False)["subject_consistency"]
    assert res.per_video[0].score == pytest.approx(1.0, abs=1e-6)
    assert res.per_video[1].score < res.per_video[0].score
    assert res.score == pytest.approx(
        (3 * 1.0 + 3 * res.per_video[1].score) / 6, abs=1e-6
    )  # frame-weighted
    assert res.metadata["backend"].startswith("dino:")


def test_consistency_formula():
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # i=1: prev cos 0, first cos 0 -> 0; i=2: prev 0, first 1 -> 0.5
    np.testing.assert_allclose(consistency_terms(f), [0.0, 0.5])
    g = np.array([[1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(consistency_terms(g), [0.0])  # negative cosines clamp to 0


def test_clip_backend_and_text_dims(clip):
    assert isinstance(clip, TextImageModel)
    frames = static_video(frames=3, size=48)
    img = clip.embed_images(frames)
    assert img.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    txt = clip.embed_texts(["van gogh style", "pixel art"])
    assert txt.shape == (2, 16)
    # the evaluator's cosine equals the model's own logits_per_text / logit_scale
    v = VideoSample.from_frames(
        "v", frames, prompt="p", aux={"appearance_style": {"appearance_style": "van gogh style"}}
    )
    s = AppearanceStyle(clip).score(v)
    x = clip.preprocess(frames)
    tok = clip.tokenizer(["van gogh style"], return_tensors="pt")
    with torch.no_grad():
        out = clip.model(
            input_ids=tok["input_ids"], attention_mask=tok["attention_mask"], pixel_values=x
        )
    ref = (out.logits_per_text[0] / clip.model.logit_scale.exp()).detach().double().numpy()
    assert s.score == pytest.approx(float(ref.mean()), abs=1e-5)
    res = evaluate(
        [v],
        [
            BackgroundConsistency(clip),
            TemporalStyle(FrameMeanVideoText(clip)),
            OverallConsistency(FrameMeanVideoText(clip)),
        ],
        progress=False,
    )
    assert res["background_consistency"].score == pytest.approx(1.0, abs=1e-5)
    assert res["temporal_style"].approximate and -1 <= res["overall_consistency"].score <= 1


def test_pil_variant(clip):
    frames = np.random.default_rng(1).integers(0, 256, (2, 50, 70, 3), dtype=np.uint8)
    a = clip.preprocess(frames)
    b = clip.with_pil_resize().preprocess(frames)
    assert a.shape == b.shape == (2, 3, 32, 32)
    assert not torch.equal(a, b)  # antialiased PIL resize differs from the tensor path


def test_aesthetic_head_loader(model_dirs, tmp_path):
    head = torch.nn.Linear(16, 1)
    torch.nn.init.constant_(head.weight, 0.0)
    torch.nn.init.constant_(head.bias, 5.0)  # every frame scores 5 -> 0.5 after /10
    torch.save(head.state_dict(), tmp_path / "head.pth")
    scorer = LaionAestheticScorer.from_local(model_dirs[0], tmp_path / "head.pth")
    s = AestheticQuality(scorer).score(
        VideoSample.from_frames("v", static_video(frames=2, size=40))
    )
    assert s.score == pytest.approx(0.5)
    torch.save({"w": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(BackendUnavailableError, match="Linear state dict"):
        LaionAestheticScorer.from_local(model_dirs[0], tmp_path / "bad.pth")
    torch.save(torch.nn.Linear(8, 1).state_dict(), tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"expected \(1, 16\)"):
        LaionAestheticScorer.from_local(model_dirs[0], tmp_path / "wrong.pth")


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="CLIP folder not found"):
        CLIPBackend.from_local(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        DinoEmbedder.from_local(tmp_path / "empty")


def test_preprocess_sizes():
    assert shorter_side_size(480, 720, 224) == (224, 336)
    assert shorter_side_size(720, 480, 224) == (336, 224)
    x = resize_shorter(np.zeros((1, 480, 720, 3), np.uint8), 224)
    assert x.shape == (1, 3, 224, 336)
    assert center_crop(x, 224).shape == (1, 3, 224, 224)


def test_detector_loader_and_object_class(tmp_path):
    from cogvx.evals.backends.vision import TransformersDetector
    from cogvx.evals.vbench.semantics import ObjectClass

    from .tiny_models import save_tiny_yolos

    det = TransformersDetector.from_local(
        save_tiny_yolos(tmp_path / "yolos", ["Dog", "Cat"]), threshold=0.0
    )
    found = det.detect(static_video(frames=1, size=48)[0])
    assert found and all(d.label in ("dog", "cat") for d in found)  # lower-cased config labels
    assert all(0 <= d.score <= 1 and len(d.box) == 4 for d in found)
    v = VideoSample.from_frames(
        "v", static_video(frames=2, size=48), aux={"object_class": {"object": "unicorn"}}
    )
    s = ObjectClass(det, num_frames=2).score(v)
    assert s.score == 0.0 and s.denominator == 2


def test_action_classifier_loader_and_human_action(tmp_path):
    from cogvx.evals.backends.vision import TransformersActionClassifier
    from cogvx.evals.vbench.semantics import HumanAction

    from .tiny_models import save_tiny_videomae

    labels = ["juggling balls", "riding a bike", "dancing", "running", "cooking", "swimming"]
    clf = TransformersActionClassifier.from_local(
        save_tiny_videomae(tmp_path / "vmae", labels, favourite=1)
    )
    assert clf.num_frames == 16 and clf.labels == labels
    frames = static_video(frames=20, size=64)
    assert clf.logits(frames[:16]).shape == (6,)
    yes = VideoSample.from_path(
        tmp_path / "A person is riding a bike-0.mp4", frames=frames, fps=8.0
    )
    no = VideoSample.from_path(tmp_path / "A person is dancing-0.mp4", frames=frames, fps=8.0)
    res = evaluate([yes, no], [HumanAction(clf)], progress=False)["human_action"]
    assert [v.score for v in res.per_video] == [1.0, 0.0] and res.score == 0.5
    assert res.approximate


def test_captioner_loader_and_scene(tmp_path):
    from cogvx.evals.backends.vision import TransformersCaptioner
    from cogvx.evals.vbench.semantics import Scene, scene_frame_match

    from .tiny_models import save_tiny_blip

    cap = TransformersCaptioner.from_local(
        save_tiny_blip(tmp_path / "blip", ["a", "train", "station", "street"]),
        max_new_tokens=4,
        num_beams=1,
    )
    frames = np.random.default_rng(0).integers(0, 256, (20, 40, 48, 3), dtype=np.uint8)
    captions = cap.caption(frames[:3])
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    v = VideoSample.from_frames("v", frames, aux={"scene": {"scene": {"scene": "train station"}}})
    s = Scene(cap, num_frames=4).score(v)
    assert len(s.details["captions"]) == 4
    assert s.score == sum(scene_frame_match(c, "train station") for c in s.details["captions"]) / 4
