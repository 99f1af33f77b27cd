"""Fixtures for the cogvx-infer tests: tiny CogVideoX model folders written by the reference itself.

The folders come from :mod:`cogvx.testing` with ``writer="diffusers"``: a real diffusers layout saved
by diffusers' own ``CogVideoX*Pipeline.save_pretrained`` from random components, so loading it
exercises the same code path as a released checkpoint. Tokenizers are trained locally. Nothing is
downloaded.
"""

from __future__ import annotations

import os

import pytest

from cogvx.testing.fixtures import make_folder, model_root

os.environ.setdefault("TRITON_INTERPRET", "1")

__all__ = ["make_folder", "model_root"]


@pytest.fixture(scope="session")
def tiny_writer() -> str:
    """Parity needs folders in the reference's own format."""
    return "diffusers"


@pytest.fixture(scope="session")
def cached_pipelines(make_folder):
    """``(reference, ours)`` pipelines per (spec, task), loaded once per session (parity tests
    only: they do not change pipeline state)."""
    cache: dict[tuple, tuple] = {}

    def get(spec: dict, task: str):
        key = (tuple(sorted((k, repr(v)) for k, v in spec.items())), task)
        if key not in cache:
            from diffusers import (
                CogVideoXImageToVideoPipeline,
                CogVideoXPipeline,
                CogVideoXVideoToVideoPipeline,
            )

            from cogvx.infer import (
                ImageToVideoPipeline,
                TextToVideoPipeline,
                VideoToVideoPipeline,
            )

            folder = make_folder(spec)
            ref_cls, our_cls = {
                "t2v": (CogVideoXPipeline, TextToVideoPipeline),
                "i2v": (CogVideoXImageToVideoPipeline, ImageToVideoPipeline),
                "v2v": (CogVideoXVideoToVideoPipeline, VideoToVideoPipeline),
            }[task]
            ref = ref_cls.from_pretrained(folder)
            ref.set_progress_bar_config(disable=True)
            cache[key] = (ref, our_cls.from_pretrained(folder))
        return cache[key]

    return get
