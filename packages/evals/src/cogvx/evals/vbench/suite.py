"""Prompt suites in VBench's file format and the ``{prompt}-{i}.mp4`` naming convention.

A suite is a JSON list of ``{"prompt_en": str, "dimension": [str, ...], "auxiliary_info":
{dimension: {...}}}`` (the layout of ``VBench_full_info.json``; give its path to use VBench's own
946 prompts — cogvx does not redistribute it). ``auxiliary_info[d]`` is what VBench's
``load_dimension_info`` hands the evaluator of ``d`` (e.g. ``{"color": "red"}`` for colour,
``{"scene": {"scene": "alley"}}`` for scene). cogvx ships a small suite of its own
(:meth:`PromptSuite.builtin`) for smoke tests of the whole chain.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cogvx.evals.samples import VideoSample
from cogvx.evals.vbench.scores import DIMENSIONS

__all__ = [
    "PromptEntry",
    "PromptSuite",
    "prompt_from_filename",
    "samples_from_paths",
    "suite_coverage",
    "video_filenames",
]

_NUMBER_SUFFIX = re.compile(r"-\d+$")


def prompt_from_filename(path: str | os.PathLike) -> str:
    """VBench ``get_prompt_from_filename``: the file stem without a trailing ``-<digits>``."""
    return _NUMBER_SUFFIX.sub("", Path(path).stem)


def video_filenames(prompt: str, n: int = 5, ext: str = ".mp4") -> list[str]:
    """The names VBench expects for ``n`` samples of ``prompt``: ``{prompt}-{i}.mp4``."""
    return [f"{prompt}-{i}{ext}" for i in range(n)]


@dataclass(frozen=True)
class PromptEntry:
    prompt: str
    dimensions: tuple[str, ...]
    aux: Mapping[str, Any] = field(default_factory=dict)


class PromptSuite:
    """Prompts with the dimensions they test and their auxiliary info, looked up by prompt."""

    def __init__(self, entries: Iterable[PromptEntry], *, source: str = "<memory>") -> None:
        self.source = source
        self._by_prompt: dict[str, PromptEntry] = {}
        for e in entries:
            old = self._by_prompt.get(e.prompt)
            if old is not None:  # the same prompt listed twice: merge its dimensions
                dims = tuple(dict.fromkeys(old.dimensions + e.dimensions))
                e = PromptEntry(e.prompt, dims, {**old.aux, **e.aux})
            self._by_prompt[e.prompt] = e

    @classmethod
    def from_json(cls, data: Any, *, source: str = "<memory>") -> PromptSuite:
        if not isinstance(data, list):
            raise ValueError(
                f"prompt suite {source}: expected a JSON list of prompt entries, got {type(data).__name__}"
            )
        entries = []
        for i, item in enumerate(data):
            where = f"prompt suite {source}, entry {i}"
            if not isinstance(item, dict) or not isinstance(item.get("prompt_en"), str):
                raise ValueError(f"{where}: needs a string 'prompt_en'")
            dims = item.get("dimension", [])
            if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
                raise ValueError(f"{where}: 'dimension' must be a list of strings, got {dims!r}")
            bad = [d for d in dims if d not in DIMENSIONS]
            if bad:
                raise ValueError(
                    f"{where}: unknown dimensions {bad}; valid: {', '.join(DIMENSIONS)}"
                )
            aux = item.get("auxiliary_info", {})
            if not isinstance(aux, dict):
                raise ValueError(
                    f"{where}: 'auxiliary_info' must be an object, got {type(aux).__name__}"
                )
            entries.append(PromptEntry(item["prompt_en"], tuple(dims), aux))
        return cls(entries, source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> PromptSuite:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"prompt suite not found: {str(p)!r}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"prompt suite {str(p)!r} is not valid JSON: {e}") from e
        return cls.from_json(data, source=str(p))

    @classmethod
    def builtin(cls) -> PromptSuite:
        """cogvx's own small suite (``cogvx/evals/data/cogvx_suite.json``)."""
        text = (
            resources.files("cogvx.evals")
            .joinpath("data/cogvx_suite.json")
            .read_text(encoding="utf-8")
        )
        return cls.from_json(json.loads(text), source="builtin:cogvx_suite.json")

    def __len__(self) -> int:
        return len(self._by_prompt)

    def __iter__(self):
        return iter(self._by_prompt.values())

    def get(self, prompt: str) -> PromptEntry | None:
        return self._by_prompt.get(prompt)

    def prompts_for(self, dimension: str) -> list[str]:
        return [e.prompt for e in self if dimension in e.dimensions]

    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for e in self:
            item: dict[str, Any] = {"prompt_en": e.prompt, "dimension": list(e.dimensions)}
            if e.aux:
                item["auxiliary_info"] = dict(e.aux)
            out.append(item)
        return out


def samples_from_paths(
    paths: Iterable[str | os.PathLike], suite: PromptSuite | None = None
) -> list[VideoSample]:
    """One :class:`VideoSample` per file, with prompt and auxiliary info looked up in ``suite``.

    The prompt is read from the file name (``{prompt}-{i}.mp4``). Without a suite (VBench's
    ``custom_input`` mode) the file-name prompt is still used; a prompt missing from a given suite
    leaves ``aux`` empty, and dimensions that need it report an error for that video.
    """
    out = []
    for p in paths:
        prompt = prompt_from_filename(p)
        entry = suite.get(prompt) if suite is not None else None
        out.append(
            VideoSample.from_path(
                p,
                prompt=prompt,
                aux=dict(entry.aux) if entry else {},
                dimensions=entry.dimensions if entry else (),
                in_suite=None if suite is None else entry is not None,
            )
        )
    return out


def suite_coverage(
    suite: PromptSuite,
    samples: Iterable[VideoSample],
    dimensions: Iterable[str],
    *,
    expected_per_prompt: int = 5,
) -> dict[str, dict[str, Any]]:
    """Per dimension: how many of the suite's prompts have videos, and which have fewer than
    ``expected_per_prompt`` (VBench samples 5 per prompt) — so a partial run is visible."""
    counts: dict[str, int] = {}
    for s in samples:
        if s.prompt is not None:
            counts[s.prompt] = counts.get(s.prompt, 0) + 1
    out: dict[str, dict[str, Any]] = {}
    for d in dimensions:
        prompts = suite.prompts_for(d)
        if not prompts:
            continue
        short = [p for p in prompts if counts.get(p, 0) < expected_per_prompt]
        out[d] = {
            "prompts": len(prompts),
            "with_videos": sum(1 for p in prompts if counts.get(p, 0) > 0),
            "fewer_than_expected": len(short),
            "examples_missing": [p for p in short if counts.get(p, 0) == 0][:5],
        }
    return out
