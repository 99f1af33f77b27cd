import json

import httpx
import pytest

from cogvx.captioner.chat import EndpointChatModel, LocalChatModel, render_plain

MSGS = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "a dog runs"}]]


def _client(responses, seen):
    it = iter(responses)

    def handler(request):
        seen.append(request)
        status, body = next(it)
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


def _ok(text):
    return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}


def test_endpoint_retries_then_succeeds():
    seen = []
    model = EndpointChatModel(
        "http://host/v1",
        model="glm-4-plus",
        api_key="k",
        retries=2,
        backoff=0.0,
        client=_client([(500, {}), (429, {}), _ok(" hello ")], seen),
    )
    assert model.complete(MSGS, max_new_tokens=7, temperature=0.01, top_p=0.7) == ["hello"]
    assert len(seen) == 3
    req = seen[-1]
    assert str(req.url) == "http://host/v1/chat/completions"
    assert req.headers["Authorization"] == "Bearer k"
    body = json.loads(req.content)
    assert body == {
        "model": "glm-4-plus",
        "messages": MSGS[0],
        "max_tokens": 7,
        "temperature": 0.01,
        "top_p": 0.7,
    }


def test_endpoint_gives_up_and_client_errors_fail_fast():
    seen = []
    model = EndpointChatModel(
        "http://host/v1/chat/completions",
        retries=1,
        backoff=0.0,
        client=_client([(503, {})] * 2, seen),
    )
    with pytest.raises(RuntimeError, match="failed after 2 attempts"):
        model.complete(MSGS, max_new_tokens=5)
    model = EndpointChatModel(
        "http://host/v1",
        retries=3,
        backoff=0.0,
        client=_client([(401, {"error": "bad key"})], seen := []),
    )
    with pytest.raises(RuntimeError, match="HTTP 401"):
        model.complete(MSGS, max_new_tokens=5)
    assert len(seen) == 1
    model = EndpointChatModel("http://host/v1", retries=0, client=_client([(200, {"nope": 1})], []))
    with pytest.raises(RuntimeError, match="unexpected body"):
        model.complete(MSGS, max_new_tokens=5)
    with pytest.raises(ValueError, match="http"):
        EndpointChatModel("host/v1")


def test_local_chat_model_template_and_plain(chat_lm_dir, base_lm_dir):
    chat = LocalChatModel(chat_lm_dir, batch_size=2)
    assert chat.render(MSGS[0]).endswith("<s> assistant ")
    plain = LocalChatModel(base_lm_dir)
    assert plain.render(MSGS[0]) == render_plain(MSGS[0])
    assert render_plain(MSGS[0]).endswith("Assistant:")
    out = chat.complete(MSGS * 3, max_new_tokens=5)
    assert len(out) == 3 and all(len(t.split()) == 5 for t in out)


def test_local_chat_model_batching_is_consistent(chat_lm_dir):
    convs = [
        [{"role": "user", "content": "a dog"}],
        [{"role": "user", "content": "the red car moves left slowly"}],
    ]
    one = LocalChatModel(chat_lm_dir, batch_size=1).complete(convs, max_new_tokens=4)
    two = LocalChatModel(chat_lm_dir, batch_size=2).complete(convs, max_new_tokens=4)
    assert one == two


def test_local_chat_model_refuses_overlong_prompt(chat_lm_dir, tmp_path):
    model = LocalChatModel(chat_lm_dir)
    with pytest.raises(ValueError, match="exceeds the model's context"):
        model.complete([[{"role": "user", "content": "dog " * 3000}]], max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="language model folder"):
        LocalChatModel(tmp_path / "missing")
