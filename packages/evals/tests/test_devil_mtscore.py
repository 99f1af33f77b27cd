import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
from PIL import Image

from cogvx.evals.devil import (
    LinearRegressor,
    dynamics_based_quality,
    dynamics_score,
    naturalness_from_text,
    phash,
    phash_subscore,
    ssim_subscore,
)
from cogvx.evals.evaluator import evaluate
from cogvx.evals.mtscore import (
    MTScore,
    OpenAICompatibleJudge,
    build_messages,
    mean_over_parts,
    mtscore_frame_indices,
    parse_score,
    prepare_frame,
)
from cogvx.evals.results import Status
from cogvx.evals.samples import VideoSample

from .conftest import static_video, textured_square_video


def test_dynamics_binning():
    # all videos in one bin with quality q -> q / 12
    assert dynamics_based_quality([0.05, 0.06], [0.9, 0.7])["overall"] == pytest.approx(0.8 / 12)
    # one video per bin -> plain mean
    d = (np.arange(12) + 0.5) / 12
    q = np.linspace(0.2, 0.9, 12)
    out = dynamics_based_quality(d, q)
    assert out["overall"] == pytest.approx(q.mean())
    assert out["low"] == pytest.approx(q[:4].mean()) and out["high"] == pytest.approx(q[8:].mean())
    # d == 1.0 falls outside the bins (DEVIL's np.digitize behaviour)
    assert dynamics_based_quality([1.0], [1.0])["overall"] == 0.0
    with pytest.raises(ValueError, match="same length"):
        dynamics_based_quality([0.1], [0.1, 0.2])


def test_dynamics_score_clipping():
    regs = {
        "inter_frame": LinearRegressor((1.0, 0.0, 0.0), 0.0),
        "video_level": LinearRegressor((0.0, 0.0), 2.0),
    }
    d = dynamics_score(
        {"flow": 0.4, "ssim": 0.9, "phash": 3.0, "info_dino": 0.1, "temporal_entropy": 5.0}, regs
    )
    assert d == pytest.approx((0.4 + 1.0) / 2)  # video_level prediction 2.0 clipped to 1
    with pytest.raises(ValueError, match="needs sub-scores"):
        dynamics_score({"flow": 1.0}, regs)


def test_regressors_from_npz(tmp_path):
    np.savez(
        tmp_path / "r.npz",
        inter_frame_coef=np.array([0.1, 0.2, 0.3]),
        inter_frame_intercept=np.array(0.5),
    )
    regs = LinearRegressor.from_npz(tmp_path / "r.npz")
    assert regs["inter_frame"].predict([1, 1, 1]) == pytest.approx(1.1)


def test_weight_free_subscores():
    still = static_video(frames=4, size=32)
    assert ssim_subscore(still) == pytest.approx(1.0)
    assert phash_subscore(still) == 0.0
    moving = textured_square_video(4, frames=4, size=64, square=32)
    assert ssim_subscore(moving) < 1.0 and phash_subscore(moving) > 0
    h = phash(still[0])
    assert h.shape == (8, 8) and h.dtype == bool


def test_naturalness_mapping():
    assert naturalness_from_text("Rating: Almost realistic") == 1.0
    assert naturalness_from_text("This is moderately unrealistic.") == 0.5
    assert naturalness_from_text("Completely fantastical") == 0.0
    assert naturalness_from_text("no idea") is None


def test_mtscore_frames_and_parse():
    assert mtscore_frame_indices(49) == [0, 6, 12, 18, 24, 30, 36, 48]
    assert mtscore_frame_indices(8) == list(range(8))
    with pytest.raises(ValueError, match="8 distinct frames"):
        mtscore_frame_indices(7)
    assert parse_score('Brief Reasoning Statement: blooms.\n"Score":4') == 4
    assert parse_score('Brief Reasoning Statement: x\n"Score":{3}') == 3
    assert parse_score("Score: four") is None
    assert parse_score('"Score":5\nThanks!') is None  # only the last line counts
    assert mean_over_parts([[3, 4], [2], []]) == pytest.approx((3.5 + 2) / 2)
    assert prepare_frame(np.zeros((480, 720, 3), np.uint8)).shape == (256, 384, 3)
    assert prepare_frame(np.zeros((100, 200, 3), np.uint8)).shape == (100, 200, 3)


def test_mtscore_with_fake_judge():
    seen = []

    class Judge:
        name = "fake-judge"

        def __init__(self, replies):
            self.replies = iter(replies)

        def __call__(self, messages):
            seen.append(messages)
            return next(self.replies)

    frames = np.zeros((49, 300, 400, 3), np.uint8)
    vids = [VideoSample.from_frames(f"v{i}.mp4", frames) for i in range(3)] + [
        VideoSample.from_frames("short", frames[:5])
    ]
    ev = MTScore(Judge(['R\n"Score":4', 'R\n"Score":2', "I cannot tell."]))
    r = evaluate(vids, [ev], progress=False)["gpt4o_mtscore"]
    assert r.score == pytest.approx(3.0)
    assert [v.status for v in r.per_video] == [Status.OK, Status.OK, Status.SKIPPED, Status.ERROR]
    content = seen[0][0]["content"]
    assert content[0]["type"] == "text" and "Score" in content[0]["text"]
    assert [c["text"] for c in content[1::2]] == [
        f"v0_frame{i}.png" for i in (0, 6, 12, 18, 24, 30, 36, 48)
    ]
    png = base64.b64decode(content[2]["image_url"]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (341, 256)  # short side 300 -> 256
    with pytest.raises(ValueError, match="exactly 8"):
        build_messages(frames[:3], [0, 1, 2], "x")


def test_openai_compatible_judge_roundtrip():
    received = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.update(path=self.path, body=body, auth=self.headers.get("Authorization"))
            data = json.dumps({"choices": [{"message": {"content": 'ok\n"Score":5'}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        judge = OpenAICompatibleJudge(
            f"http://127.0.0.1:{server.server_port}/v1", "test-model", api_key="k"
        )
        s = MTScore(judge).score(
            VideoSample.from_frames("a.mp4", np.zeros((8, 16, 16, 3), np.uint8))
        )
        assert s.score == 5.0
        assert received["path"] == "/v1/chat/completions" and received["auth"] == "Bearer k"
        assert received["body"]["model"] == "test-model" and received["body"]["max_tokens"] == 2048
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="http"):
        OpenAICompatibleJudge("localhost:8000", "m")
