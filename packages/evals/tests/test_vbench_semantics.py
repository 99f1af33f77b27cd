"""Text-matching logic of the detector/captioner/classifier dimensions, with fake backends."""

import numpy as np
import pytest

from cogvx.evals.backends.protocols import DenseCaption, Detection
from cogvx.evals.evaluator import evaluate
from cogvx.evals.results import Status
from cogvx.evals.samples import VideoSample
from cogvx.evals.vbench.semantics import (
    Color,
    HumanAction,
    MultipleObjects,
    ObjectClass,
    Scene,
    SpatialRelationship,
    action_label_from_name,
    color_object_key,
    position_score,
    scene_frame_match,
)


def video(name, n=16, *, prompt=None, aux=None):
    # frame t is filled with value t so fakes can tell frames apart
    frames = np.stack([np.full((8, 8, 3), t, np.uint8) for t in range(n)])
    return VideoSample.from_frames(name, frames, prompt=prompt, aux=aux)


class FakeDetector:
    name, approximate = "fake-detector", True

    def __init__(self, per_frame):
        self.per_frame = per_frame  # frame value -> list of Detection

    def detect(self, frame):
        return self.per_frame(int(frame[0, 0, 0]))


class FakeDense:
    name, approximate = "fake-dense", True

    def __init__(self, fn):
        self.fn = fn

    def dense_captions(self, frame):
        return self.fn(int(frame[0, 0, 0]))


def test_object_class_frame_weighted():
    det = FakeDetector(
        lambda t: [Detection("dog", (0, 0, 1, 1))] if t < 4 else [Detection("cat", (0, 0, 1, 1))]
    )
    vids = [
        video("a", aux={"object_class": {"object": "dog"}}),
        video("b", n=4, aux={"object_class": {"object": "dog"}}),
    ]
    r = evaluate(vids, [ObjectClass(det)], progress=False)["object_class"]
    # video a: 16 frames 0..15, dog in frames 0..3 -> 4/16; video b: 4 frames padded to 16 indices, all dog
    assert r.per_video[0].score == pytest.approx(4 / 16)
    assert r.per_video[1].score == 1.0
    assert r.score == pytest.approx((4 + 16) / 32)  # frame-weighted, not mean of videos (0.625)


def test_multiple_objects_needs_both():
    det = FakeDetector(
        lambda t: (
            [Detection("bird", (0, 0, 1, 1))] + ([Detection("cat", (2, 2, 3, 3))] if t % 2 else [])
        )
    )
    s = MultipleObjects(det).score(video("v", aux={"multiple_objects": {"object": "bird and cat"}}))
    assert s.score == 0.5


def test_color_rules_and_skip():
    key = color_object_key("a red bicycle", "red")
    assert key == "bicycle"
    assert color_object_key("an orange umbrella", "orange") == "umbrella"
    assert (
        color_object_key("a yellow pizza slice", "yellow") == "pizzslice"
    )  # VBench's plain replace('a ', '') quirk

    def caps(t):
        if t < 8:
            return [DenseCaption("a red bicycle on a road", "bicycle")]
        if t < 12:
            return [DenseCaption("a blue bicycle", "bicycle")]
        return [DenseCaption("a red car", "car")]  # wrong object: neither flag

    aux = {"color": {"color": "red"}}
    s = Color(FakeDense(caps)).score(video("v", prompt="a red bicycle", aux=aux))
    assert s.score == pytest.approx(8 / 12)
    none = FakeDense(lambda t: [DenseCaption("a bicycle", "bicycle")])  # no colour word at all
    r = evaluate(
        [video("x", prompt="a red bicycle", aux=aux), video("y", prompt="a red bicycle", aux=aux)],
        [Color(FakeDense(caps))],
        progress=False,
    )["color"]
    assert r.score == pytest.approx(8 / 12)
    skipped = Color(none).score(video("z", prompt="a red bicycle", aux=aux))
    assert skipped.status is Status.SKIPPED


def test_position_score_branches():
    a, b = (0, 0, 10, 10), (20, 0, 30, 10)
    assert position_score("on the left of", a, b) == 1.0
    assert position_score("on the right of", a, b) == 1.0  # direction is not checked (VBench)
    assert position_score("on the top of", a, b) == 0.0
    c = (5, 0, 15, 10)  # overlaps a: IoU = 50 / 150
    assert position_score("on the left of", a, c) == pytest.approx(0.1 / (50 / 150))
    assert position_score("on the bottom of", (0, 0, 10, 10), (0, 20, 10, 30)) == 1.0
    assert position_score("near", a, b) == 0.0


def test_spatial_relationship_pairs_and_missing():
    def dets(t):
        if t < 8:
            return [
                Detection("bicycle", (0, 0, 10, 10)),
                Detection("car", (20, 0, 30, 10)),
                Detection("tree", (0, 40, 5, 50)),
            ]
        if t < 12:
            return [Detection("bicycle", (0, 0, 10, 10))]  # no pair -> 0
        return [
            Detection("car", (0, 0, 10, 10)),
            Detection("car", (0, 20, 10, 30)),
        ]  # same-object pair, vertical -> 0

    aux = {
        "spatial_relationship": {
            "spatial_relationship": {
                "object_a": "bicycle",
                "object_b": "car",
                "relationship": "on the left of",
            }
        }
    }
    s = SpatialRelationship(FakeDetector(dets)).score(video("v", aux=aux))
    assert s.score == pytest.approx(8 / 16)


def test_scene_all_words():
    assert scene_frame_match("a dark alley at night", "alley")
    assert scene_frame_match("the train station platform", "train station")
    assert not scene_frame_match("a train on tracks", "train station")

    class Cap:
        name, approximate = "fake-captioner", True

        def caption(self, frames):
            return ["a busy train station" if f[0, 0, 0] < 4 else "a street" for f in frames]

    s = Scene(Cap()).score(video("v", aux={"scene": {"scene": {"scene": "train station"}}}))
    assert s.score == pytest.approx(4 / 16)


def test_human_action_parse_and_threshold(tmp_path):
    assert action_label_from_name("A person is riding a bike-0.mp4") == "riding a bike"
    assert action_label_from_name("A person is juggling balls_long-2.mp4") == "juggling balls"

    class Cls:
        name, approximate, num_frames = "fake-umt", True, 16
        labels = ("riding a bike", "juggling balls", "dancing", "running", "cooking", "swimming")

        def __init__(self, logits):
            self._l = np.asarray(logits, float)

        def logits(self, frames):
            assert len(frames) == 16
            return self._l

    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    sample = VideoSample.from_path(
        tmp_path / "A person is riding a bike-0.mp4", frames=video("x").frames, fps=8.0
    )
    yes = Cls([logit(0.9), logit(0.95), -5, -5, -5, -5])
    assert HumanAction(yes).score(sample).score == 1.0
    low = Cls([logit(0.84), logit(0.95), -5, -5, -5, -5])  # below 0.85 -> not kept
    assert HumanAction(low).score(sample).score == 0.0
    edge = Cls(
        [logit(0.84996), -5, -5, -5, -5, -5]
    )  # rounds to 0.85 at 4 decimals -> kept (VBench)
    assert HumanAction(edge).score(sample).score == 1.0
    many = Cls([logit(0.9), 9, 9, 9, 9, 9])  # 5 classes ranked above it -> not in top-5
    assert HumanAction(many).score(sample).score == 0.0


def test_missing_aux_is_per_video_error():
    det = FakeDetector(lambda t: [])
    no_suite = VideoSample.from_frames("p", video("p").frames, prompt="a dog")
    missing = VideoSample(
        name="q", frames=video("q").frames, fps=8.0, prompt="a dog", in_suite=False
    )
    r = evaluate([no_suite, missing], [ObjectClass(det)], progress=False)["object_class"]
    assert r.score is None and r.status is Status.ERROR
    assert "no auxiliary_info" in r.per_video[0].reason
    assert "missing from the prompt suite" in r.per_video[1].reason
