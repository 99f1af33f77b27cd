import httpx
import pytest

from cogvx.captioner.rules import count_words
from cogvx.captioner.upsample import (
    FEW_SHOT,
    UPSAMPLE_SYSTEM_PROMPT,
    PromptUpsampler,
    UpsampleConfig,
    upsample_messages,
    upsample_prompt,
)

GOOD = " ".join(["A small brown dog runs across wet sand at sunset."] * 5)


class ScriptedBackend:
    name = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = 0

    def complete(self, conversations, *, max_new_tokens, temperature, top_p):
        self.calls += 1
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return [reply]


def test_messages_structure_and_examples_follow_the_rules():
    msgs = upsample_messages("a cat in the rain")
    assert msgs[0]["role"] == "system" and msgs[0]["content"] == UPSAMPLE_SYSTEM_PROMPT
    roles = [m["role"] for m in msgs[1:]]
    assert roles == ["user", "assistant"] * 3 + ["user"]
    assert '"a cat in the rain"' in msgs[-1]["content"]
    for idea, description in FEW_SHOT:
        assert 70 <= count_words(description) <= 100, idea
        assert not description.lower().startswith(("the video", "this video"))
    for rule in ("rewrite the whole description", "start afresh", "roughly 70 to 100 words"):
        assert rule in UPSAMPLE_SYSTEM_PROMPT


def test_retries_on_empty_short_and_errors_then_succeeds():
    backend = ScriptedBackend(["", "too short", RuntimeError("boom"), GOOD])
    [r] = PromptUpsampler(backend, UpsampleConfig(retries=4))(["a dog"])
    assert not r.fallback and r.attempts == 4 and r.prompt == GOOD and r.original == "a dog"


def test_falls_back_to_raw_prompt():
    backend = ScriptedBackend([RuntimeError("down")] * 3)
    [r] = PromptUpsampler(backend)(["a dog"])
    assert r.fallback and r.prompt == "a dog" and r.attempts == 3 and "down" in r.error
    assert backend.calls == 3


def test_length_control():
    long_reply = 'Description: "The video shows ' + GOOD * 4 + '"'
    [r] = PromptUpsampler(ScriptedBackend([long_reply]), UpsampleConfig(max_words=60))(["a dog"])
    assert r.truncated and count_words(r.prompt) <= 60 and r.prompt.startswith("A small brown dog")


def test_validation():
    with pytest.raises(ValueError, match="retries"):
        UpsampleConfig(retries=0)
    with pytest.raises(ValueError, match="min_words"):
        UpsampleConfig(min_words=50, max_words=10)
    with pytest.raises(TypeError, match="sequence of strings"):
        PromptUpsampler(ScriptedBackend([]))("a dog")
    with pytest.raises(ValueError, match=r"prompts\[0\]"):
        PromptUpsampler(ScriptedBackend([]))([" "])
    with pytest.raises(ValueError, match="exactly one"):
        upsample_prompt("a dog")
    with pytest.raises(FileNotFoundError):
        upsample_prompt("a dog", model="/nonexistent/model")


def test_endpoint_upsampler_with_mock_server():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(502)
        return httpx.Response(200, json={"choices": [{"message": {"content": GOOD}}]})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    up = PromptUpsampler.from_endpoint("http://llm.local/v1", model="glm-4-plus", client=client)
    [r] = up(["a dog"])
    assert r.prompt == GOOD and r.attempts == 2 and len(calls) == 2


def test_upsample_prompt_with_local_model(chat_lm_dir):
    cfg = UpsampleConfig(max_new_tokens=30, min_words=10, max_words=25)
    out = upsample_prompt("a dog runs on the beach", model=chat_lm_dir, config=cfg)
    assert out != "a dog runs on the beach"
    assert 10 <= count_words(out) <= 25


def test_upsample_prompt_with_backend_falls_back():
    assert upsample_prompt("a dog", backend=ScriptedBackend([""] * 3)) == "a dog"


def test_image_to_video_request_through_endpoint(tmp_path):
    import base64
    import json

    import cv2
    import numpy as np

    from cogvx.captioner.upsample import I2V_SYSTEM_PROMPT
    from cogvx.videoio import write_image

    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(
            200, json={"choices": [{"message": {"content": '"The image shows ' + GOOD + '"'}}]}
        )

    frame = np.zeros((20, 30, 3), np.uint8)
    frame[:, :10] = (255, 0, 0)  # red left third
    write_image(tmp_path / "first.png", frame)
    up = PromptUpsampler.from_endpoint(
        "http://vlm/v1", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    [r] = up(["the flag waves"], [tmp_path / "first.png"])
    assert r.prompt == GOOD  # quotes and the "The image shows" opener removed
    system, user = bodies[0]["messages"]
    assert system == {"role": "system", "content": I2V_SYSTEM_PROMPT}
    text, image = user["content"]
    assert text == {"type": "text", "text": 'User request: "the flag waves"'}
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = cv2.imdecode(
        np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR
    )
    np.testing.assert_array_equal(decoded[..., ::-1], frame)  # the exact frame, RGB order kept
    for rule in ("first frame", "one continuous shot", "no cuts", "The image shows"):
        assert rule in I2V_SYSTEM_PROMPT


def test_image_prompt_needs_an_image_backend():
    import numpy as np

    with pytest.raises(ValueError, match="text-only"):
        PromptUpsampler(ScriptedBackend([GOOD]))(["a dog"], [np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match="1 images for 2 prompts"):
        PromptUpsampler(ScriptedBackend([]))(["a", "b"], [None])
