"""Fixtures for the cogvx-train tests: the test-double module and data (``tests/doubles.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
DOUBLES = TESTS / "doubles.py"


@pytest.fixture()
def doubles(monkeypatch):
    """The ``doubles`` module, importable by name (``_target_: doubles.Regressor``), registered."""
    monkeypatch.syspath_prepend(str(TESTS))
    import doubles as module

    module.register()
    return module


@pytest.fixture()
def cogvx_train(doubles):
    """``cogvx train ARGS`` in this process through the dispatcher: returns the exit code."""
    from cogvx.cli.main import main
    from cogvx.train.cli import main as train_main

    def run(*args: str) -> int:
        return main(["train", *args], commands={"train": train_main})

    return run


@pytest.fixture()
def script_env() -> dict[str, str]:
    """Environment of a ``python tests/doubles.py ...`` subprocess: one thread, no progress bar."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.pop("COGVX_DEBUG", None)
    return env


@pytest.fixture()
def script_command():
    """``script_command(*args)``: the argv of ``cogvx train ARGS`` with the doubles, for a subprocess."""

    def command(*args: str) -> list[str]:
        return [sys.executable, str(DOUBLES), *args]

    return command


# ---- H6 (transformer training): tiny model folders, clip sets, synthetic frame-pack batches ----
import torch  # noqa: E402

from cogvx.testing.fixtures import make_folder, model_root, tiny_writer  # noqa: E402, F401

# Tiny tensors: one intra-op thread. On a shared, oversubscribed CPU two OpenMP threads spin and
# make a tiny DiT step 10x slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_t2v_folder(make_folder):  # noqa: F811 (the fixture imported above)
    """A tiny T2V folder (RoPE transformer, 2 layers; latents 4 x 4 x 6 for 9 x 32 x 48 px)."""
    return make_folder(dict(name="train-t2v-rope", rope=True, snr_shift=1.0))


@pytest.fixture(scope="session")
def tiny_i2v_folder(make_folder):  # noqa: F811 (the fixture imported above)
    """The I2V variant of ``tiny_t2v_folder`` (8 input channels: noisy | image)."""
    return make_folder(dict(name="train-i2v-rope", task="i2v", rope=True, snr_shift=1.0))


def _clip_frames(i: int, frames: int, height: int, width: int):
    import numpy as np

    x = np.zeros((frames, height, width, 3), np.uint8)
    x[..., i % 3] = 60 + 40 * (i % 4)
    for t in range(frames):
        left = (3 * t + 5 * i) % (width - 8)
        x[t, 8:16, left : left + 8] = 255
    return x


@pytest.fixture()
def clips(tmp_path):
    """``clips(n, frames=9, height=32, width=48, fps=8.0, sidecars=False)`` writes ``n`` mp4 clips
    (coloured background, moving white square) under ``tmp_path/clips`` and returns the manifest
    path (or the folder, with ``.txt`` caption sidecars instead of a manifest)."""
    import json

    from cogvx.videoio import write_video

    def make(n, *, frames=9, height=32, width=48, fps=8.0, sidecars=False):
        folder = tmp_path / "clips"
        folder.mkdir(parents=True, exist_ok=True)
        captions = ["a red car drives", "a cat sits on a mat", "the quick brown fox"]
        lines = []
        for i in range(n):
            write_video(folder / f"clip{i}.mp4", _clip_frames(i, frames, height, width), fps=fps)
            caption = captions[i % len(captions)]
            if sidecars:
                (folder / f"clip{i}.txt").write_text(caption)
            lines.append(
                dict(
                    path=f"clip{i}.mp4",
                    caption=caption,
                    type="video",
                    frames=frames,
                    height=height,
                    width=width,
                    fps=fps,
                )
            )
        if sidecars:
            return folder
        manifest = folder / "manifest.jsonl"
        manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
        return manifest

    return make


@pytest.fixture()
def synthetic_batch():
    """``synthetic_batch([(latents [T, C, h, w], text [L, D]), ...], uncond=, images=)`` -> a
    ``cogvx.train.data.TrainBatch`` (frame pack of already-encoded samples; no VAE, no T5)."""
    import torch

    from cogvx.framepack import ModelGeometry
    from cogvx.train.data import TrainCollator

    def make(samples, *, patch_size=2, patch_size_t=None, uncond=None, images=None):
        text_len, width = samples[0][1].shape
        geometry = ModelGeometry(
            patch_size=patch_size, patch_size_t=patch_size_t, text_tokens=text_len
        )
        uncond = torch.zeros(text_len, width) if uncond is None else uncond
        items = []
        for i, (lat, txt) in enumerate(samples):
            item = {"latents": lat, "text_embeds": txt, "index": i}
            if images is not None:
                item["image"] = images[i]
            items.append(item)
        return TrainCollator(geometry, uncond, with_image=images is not None)(items)

    return make
