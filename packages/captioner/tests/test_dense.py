import numpy as np
import pytest

from cogvx.captioner.chat import LocalChatModel
from cogvx.captioner.dense import (
    SUMMARY_SYSTEM_PROMPT,
    DenseCaptioner,
    ImageCaptioner,
    Summarizer,
    TransformersImageCaptioner,
    summary_messages,
)


class FakeCaptioner:
    name = "fake"

    def __init__(self, text="a dog runs on the beach"):
        self.text = text
        self.calls = []

    def __call__(self, images):
        self.calls.append(len(images))
        return [self.text] * len(images)


class FakeBackend:
    name = "fake-chat"

    def __init__(self, reply):
        self.reply = reply
        self.seen = []

    def complete(self, conversations, *, max_new_tokens, temperature, top_p):
        self.seen.extend(conversations)
        return [self.reply(c) if callable(self.reply) else self.reply for c in conversations]


def test_image_captioner_from_folder_batches(captioner_dir, synth):
    frames = synth.moving(5)
    cap1 = TransformersImageCaptioner(captioner_dir, batch_size=1, max_new_tokens=6)
    cap4 = TransformersImageCaptioner(captioner_dir, batch_size=4, max_new_tokens=6)
    assert isinstance(cap1, ImageCaptioner)
    a, b = cap1(frames), cap4(frames)
    assert len(a) == 5 and all(isinstance(t, str) and t for t in a)
    assert a == b  # batching does not change greedy output
    assert len(cap1(frames[:2])) == 2


def test_image_captioner_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="image captioner folder"):
        TransformersImageCaptioner(tmp_path / "nope")


def test_summary_messages_follow_paper_format():
    msgs = summary_messages({0.0: "a dog", 2.0: "a dog jumps"}, "dog playing")
    assert msgs[0] == {"role": "system", "content": SUMMARY_SYSTEM_PROMPT}
    user = msgs[1]["content"]
    assert 'image_captions = {"0": "a dog", "2": "a dog jumps"}' in user
    assert 'short_caption = "dog playing"' in user
    for rule in ("order they happen", "Never begin with", "at most 100 words", "camera moves"):
        assert rule in SUMMARY_SYSTEM_PROMPT


def test_dense_captioner_with_tiny_models(captioner_dir, chat_lm_dir, synth):
    image = TransformersImageCaptioner(captioner_dir, batch_size=3, max_new_tokens=5)
    summarizer = Summarizer(LocalChatModel(chat_lm_dir, batch_size=2), max_new_tokens=12)
    dense = DenseCaptioner(image, summarizer, max_words=8)
    clips = [
        (synth.moving(2), [0.0, 2.0]),
        (synth.static(3), [0.0, 2.0, 4.0]),
        (synth.text(1), [0.0]),
    ]
    results = dense(clips)
    assert len(results) == 3
    for r, (_, secs) in zip(results, clips):
        assert r.error is None
        assert 1 <= len(r.caption.split()) <= 8
        assert sorted(r.frame_captions) == secs
    # 12 random tokens > 8 words: shortened, and flagged as such
    assert any(r.truncated for r in results)


def test_dense_captioner_batches_across_clips(synth):
    fake = FakeCaptioner()
    dense = DenseCaptioner(fake, None)
    dense([(synth.moving(2), [0, 2]), (synth.moving(3), [0, 2, 4])])
    assert fake.calls == [5]  # one call over all frames of all clips
    fake.calls.clear()
    dense([(synth.moving(2), [0, 2]), (synth.moving(2, h=64, w=64), [0, 2])])
    assert fake.calls == [2, 2]  # different frame sizes: per clip


def test_dense_captioner_rules_and_bad_outputs(synth):
    clip = [(synth.moving(2), [0.0, 2.0])]
    long_reply = "The video shows a dog that runs. " + "It keeps running along the sand. " * 40
    r = DenseCaptioner(FakeCaptioner(), Summarizer(FakeBackend(long_reply)))(clip)[0]
    assert r.error is None and r.removed_opener and r.truncated
    assert r.caption.startswith("A dog that runs.") and len(r.caption.split()) <= 100

    r = DenseCaptioner(FakeCaptioner(), Summarizer(FakeBackend("   ")))(clip)[0]
    assert r.caption == "" and r.error == "summarizer returned empty text"

    r = DenseCaptioner(FakeCaptioner(""), Summarizer(FakeBackend("x")))(clip)[0]
    assert r.error == "image captioner returned empty text for every frame"


def test_join_mode_without_summarizer(synth):
    r = DenseCaptioner(FakeCaptioner("a dog runs"), None)([(synth.moving(2), [0, 2])])[0]
    assert r.caption == "A dog runs."  # duplicates merged, sentence-cased


def test_image_captioner_count_mismatch_is_an_error(synth):
    class Broken(FakeCaptioner):
        def __call__(self, images):
            return ["x"]

    with pytest.raises(RuntimeError, match="returned 1 captions for 2 images"):
        DenseCaptioner(Broken(), None)([(synth.moving(2), [0, 2])])


def test_fake_backend_protocol():
    from cogvx.captioner.chat import ChatBackend

    assert isinstance(FakeBackend("x"), ChatBackend)
    assert np.isscalar(
        len(
            FakeBackend("x").complete(
                [[{"role": "user", "content": "x"}]], max_new_tokens=1, temperature=0, top_p=1
            )
        )
    )
