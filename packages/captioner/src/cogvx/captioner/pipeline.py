"""Filter and caption a folder of videos into a data manifest; resumable and shardable.

Outputs, for ``--output data/manifest.jsonl``:

- ``manifest.jsonl`` — accepted clips as :class:`cogvx.videoio.ManifestRecord` lines (paths
  relative to the manifest's folder; ``scores`` from the filters; ``frame_captions`` and
  ``caption_notes`` as extra keys). Frame packing and training read it directly.
- ``manifest.rejects.jsonl`` — one line per clip that did not make it: ``kind`` is
  ``"filtered"`` (with the failed filters and the scores) or ``"error"`` (with the ``stage`` and
  a ``reason``: unreadable file, empty model output, ...).
- ``manifest.report.json`` — totals over both files: clips kept, removed per filter, errors per
  stage, captions shortened, and this run's throughput.

Every line is appended and flushed (fsynced) as soon as its clip is done, so a crash loses at
most the clips in flight. A re-run reads both files and skips every clip already in either
(``retry_errors=True`` retries clips that errored). A line torn by a crash or malformed by hand
is moved to ``<file>.quarantine`` when this rank reopens its files (its clip is then redone);
bad lines in other ranks' parts are skipped, counted in the report as ``bad_lines`` and logged as
``file:line: reason``. With ``world_size > 1`` the sorted input list
is dealt round-robin (clip ``i`` goes to rank ``i % world_size``, the same split on every run) and
each rank writes ``manifest.part-RRRRR-of-WWWWW.jsonl`` (and a rejects part); :func:`merge_parts`
joins them. Ranks come from arguments or the ``RANK`` / ``WORLD_SIZE`` variables that
``torchrun`` sets.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cogvx.captioner.dense import ClipCaptioner
from cogvx.captioner.filters import ClipFilter, summarize_failures
from cogvx.captioner.scores import motion_pairs
from cogvx.captioner.shots import split_shots
from cogvx.modelio.fields import check_float, check_int
from cogvx.videoio import (
    JsonlAppender,
    JsonlError,
    JsonlProblem,
    ManifestError,
    ManifestRecord,
    ManifestWriter,
    VideoReadError,
    atomic_output,
    collect_media,
    is_image_path,
    iter_jsonl,
    probe_video,
    quarantine_path,
    read_image,
    read_video,
    sample_frame_indices,
)

__all__ = [
    "CaptionConfig",
    "CaptionPipeline",
    "RunPaths",
    "build_report",
    "collect_inputs",
    "merge_parts",
    "shard",
]

logger = logging.getLogger(__name__)

REJECT_KINDS = ("filtered", "error")


@dataclass(frozen=True)
class CaptionConfig:
    """Frame sampling and batching for the caption stage.

    ``every_seconds``: one caption frame every that many seconds (paper App. G: 2 s).
    ``max_caption_frames``: clips longer than ``every_seconds * max_caption_frames`` get that
    many frames spread evenly instead (the record's ``caption_notes`` says so).
    """

    every_seconds: float = 2.0
    max_caption_frames: int = 16
    max_words: int = 100
    clips_per_batch: int = 8
    workers: int = 2

    def __post_init__(self) -> None:
        check_float(
            "CaptionConfig", "every_seconds", self.every_seconds, minimum=0, exclusive_minimum=True
        )
        for name in ("max_caption_frames", "max_words", "clips_per_batch", "workers"):
            check_int("CaptionConfig", name, getattr(self, name), minimum=1)


@dataclass(frozen=True)
class RunPaths:
    """The files one rank writes."""

    manifest: Path
    rejects: Path
    report: Path

    @classmethod
    def for_output(
        cls, output: str | os.PathLike[str], rank: int = 0, world_size: int = 1
    ) -> RunPaths:
        out = Path(output)
        if out.suffix != ".jsonl":
            raise ValueError(f"output must be a .jsonl file, got {str(out)!r}")
        stem = out.name.removesuffix(".jsonl")
        part = "" if world_size == 1 else f".part-{rank:05d}-of-{world_size:05d}"
        return cls(
            manifest=out.with_name(f"{stem}{part}.jsonl"),
            rejects=out.with_name(f"{stem}.rejects{part}.jsonl"),
            report=out.with_name(f"{stem}.report{part}.json"),
        )


def collect_inputs(folder: str | os.PathLike[str], *, images: bool = True) -> list[Path]:
    """Video (and image) files under ``folder``, recursively, sorted by path; dot-files,
    dot-folders and ``*.partial.*`` outputs of interrupted writes are left out."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"input folder {str(root)!r} does not exist")
    return collect_media(root, images=images, recursive=True, parameter="folder")


def shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """Round-robin share of ``rank``: items ``rank, rank + world_size, ...`` (deterministic)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return list(items[rank::world_size])


def _check_reject(row: dict[str, Any]) -> None:
    """A rejects row names its clip (``path``) and its ``kind``."""
    if not isinstance(row.get("path"), str) or not row["path"]:
        raise ValueError('rejects row has no "path" (a non-empty string)')
    if row.get("kind") not in REJECT_KINDS:
        raise ValueError(f"rejects row kind={row.get('kind')!r}: expected one of {REJECT_KINDS}")


def _check_accepted(row: dict[str, Any]) -> None:
    ManifestRecord.from_dict(row)


def _rows(
    path: Path, kind: str, problems: list[JsonlProblem] | None = None
) -> Iterator[dict[str, Any]]:
    """Valid rows of a manifest (``kind=""``) or rejects file; bad lines are skipped and, when
    ``problems`` is given, listed there. A missing file has no rows."""
    if not path.is_file():
        return
    check = _check_accepted if kind == "" else _check_reject
    for _, row in iter_jsonl(path, policy="skip", check=check, problems=problems):
        yield row


def _all_parts(output: Path, kind: str) -> list[Path]:
    """The final file and every rank part of ``kind`` ("" = manifest, ".rejects")."""
    stem = output.name.removesuffix(".jsonl")
    final = output.with_name(f"{stem}{kind}.jsonl")
    parts = sorted(output.parent.glob(f"{stem}{kind}.part-*-of-*.jsonl"))
    return [final, *parts]


def _done(output: Path, *, retry_errors: bool) -> set[str]:
    problems: list[JsonlProblem] = []
    done = {rec["path"] for p in _all_parts(output, "") for rec in _rows(p, "", problems)}
    for p in _all_parts(output, ".rejects"):
        for rec in _rows(p, ".rejects", problems):
            if rec["kind"] == "filtered" or not retry_errors:
                done.add(rec["path"])
    for problem in problems:
        logger.warning("%s (skipped; its clip is not counted as done)", problem)
    return done


@dataclass
class _Prepared:
    """A clip read and scored, waiting for captioning (or already rejected)."""

    key: str
    source: Path
    type: str
    frames: int = 0
    height: int = 0
    width: int = 0
    fps: float | None = None
    caption_frames: np.ndarray | None = None
    seconds: list[float] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    failed: tuple[str, ...] = ()
    error: tuple[str, str] | None = None  # (stage, reason)
    notes: dict[str, Any] = field(default_factory=dict)


class CaptionPipeline:
    """Filter, then caption, a list of files; see the module docstring for the outputs."""

    def __init__(
        self,
        clip_filter: ClipFilter,
        captioner: ClipCaptioner | None,
        config: CaptionConfig | None = None,
    ) -> None:
        self.filter = clip_filter
        self.captioner = captioner
        self.config = config or CaptionConfig()

    # ---- stage 1: read and filter (runs in worker threads) -------------------------------
    def _caption_indices(self, num_frames: int, fps: float) -> tuple[list[int], dict[str, Any]]:
        cfg = self.config
        idx = sample_frame_indices(num_frames, fps, every_seconds=cfg.every_seconds)
        if len(idx) > cfg.max_caption_frames:
            notes = {
                "caption_frames_spread": f"{len(idx)} frames at {cfg.every_seconds}s exceed max_caption_frames={cfg.max_caption_frames}; used {cfg.max_caption_frames} evenly spread"
            }
            return sample_frame_indices(num_frames, fps, num=cfg.max_caption_frames), notes
        return idx, {}

    def _read(self, source: Path, num_frames: int, fps: float, decoded: np.ndarray | None = None):
        """Decode (or pick from ``decoded``) the union of caption, content and motion frames.

        Returns ``(frames [K,H,W,3], position of each source index in frames, caption indices,
        content indices, motion pairs)``.
        """
        cfg = self.filter.config
        cap_idx = self._caption_indices(num_frames, fps)[0]
        con_idx = sample_frame_indices(num_frames, fps, num=min(cfg.content_frames, num_frames))
        pair_idx = motion_pairs(
            num_frames, fps, num_pairs=cfg.motion_pairs, step_seconds=cfg.motion_step_seconds
        )
        wanted = sorted(set(cap_idx) | set(con_idx) | {i for p in pair_idx for i in p})
        frames = (
            decoded[wanted]
            if decoded is not None
            else read_video(source, frame_indices=wanted).frames
        )
        return frames, {i: k for k, i in enumerate(wanted)}, cap_idx, con_idx, pair_idx

    def _prepare(self, source: Path, key: str) -> _Prepared:
        is_image = is_image_path(source)
        item = _Prepared(key=key, source=source, type="image" if is_image else "video")
        try:
            if is_image:
                frame = read_image(source)
                item.frames, item.height, item.width = 1, frame.shape[0], frame.shape[1]
                item.caption_frames, item.seconds, pairs, seconds = frame[None], [0.0], None, None
                content = frame[None]
            else:
                info = probe_video(source)
                fps = info.fps if info.fps > 0 else None
                if fps is None:
                    raise VideoReadError(f"video {str(source)!r} reports no frame rate")
                item.frames = info.num_frames
                try:
                    frames, pos, cap_idx, con_idx, pair_idx = self._read(
                        source, info.num_frames, fps
                    )
                except VideoReadError:
                    # headers that overstate the frame count: decode everything, re-sample
                    video = read_video(source)
                    item.frames = video.num_frames
                    frames, pos, cap_idx, con_idx, pair_idx = self._read(
                        source, video.num_frames, fps, video.frames
                    )
                item.notes = self._caption_indices(item.frames, fps)[1]
                item.height, item.width, item.fps = frames.shape[1], frames.shape[2], fps
                item.caption_frames = frames[[pos[i] for i in cap_idx]]
                item.seconds = [i / fps for i in cap_idx]
                content = frames[[pos[i] for i in con_idx]]
                # [P,2,H,W,3] frame pairs for optical flow
                pairs = (
                    np.stack([frames[[pos[a], pos[b]]] for a, b in pair_idx]) if pair_idx else None
                )
                seconds = item.frames / fps
        except (VideoReadError, ValueError, OSError) as e:
            item.error = ("read", f"{type(e).__name__}: {e}")
            return item
        try:
            result = self.filter(
                content, pairs, seconds=seconds if seconds is not None else float("inf")
            )
            item.scores = {k: v for k, v in result.scores.items() if np.isfinite(v)}
            item.failed = result.failed
        except Exception as e:  # a scorer crashing on one clip must not stop the run
            item.error = ("filter", f"{type(e).__name__}: {e}")
        return item

    # ---- stage 2: caption a batch ----------------------------------------------------------
    def _caption(self, batch: list[_Prepared]) -> list[tuple[_Prepared, Any]]:
        assert self.captioner is not None
        clips = [(p.caption_frames, p.seconds) for p in batch]
        try:
            return list(zip(batch, self.captioner(clips)))
        except Exception:
            if len(batch) == 1:
                raise
        # isolate the clip that broke the batch: caption one by one
        out = []
        for p in batch:
            try:
                out.append((p, self.captioner([(p.caption_frames, p.seconds)])[0]))
            except Exception as e:
                out.append((p, e))
        return out

    # ---- driver ----------------------------------------------------------------------------
    def run(
        self,
        inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        output: str | os.PathLike[str],
        *,
        rank: int | None = None,
        world_size: int | None = None,
        retry_errors: bool = False,
        split_dir: str | os.PathLike[str] | None = None,
        split_kwargs: dict[str, Any] | None = None,
        progress: bool = True,
    ) -> dict[str, Any]:
        """Process ``inputs`` (a folder or a list of files) into ``output``; returns the report."""
        rank = int(os.environ.get("RANK", 0)) if rank is None else rank
        world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
        out = Path(output)
        paths = RunPaths.for_output(out, rank, world_size)
        files = (
            collect_inputs(inputs)
            if isinstance(inputs, str | os.PathLike)
            else sorted(Path(p) for p in inputs)
        )
        if split_dir is not None:  # shot clips written by an earlier run are outputs, not inputs
            shots_root = Path(split_dir).resolve()
            files = [f for f in files if not f.resolve().is_relative_to(shots_root)]
        mine = shard(files, rank, world_size)
        started = time.perf_counter()
        writer = ManifestWriter(paths.manifest)
        rejects = JsonlAppender(paths.rejects, check=_check_reject)
        for problem in (*writer.repaired, *rejects.repaired):
            logger.warning("%s (moved to %s)", problem, quarantine_path(problem.path))
        counts = {"accepted": 0, "filtered": 0, "errors": 0, "skipped": 0}

        def key_of(p: Path) -> str:
            return os.path.relpath(p.resolve(), out.parent.resolve())

        def reject(key: str, kind: str, **info: Any) -> None:
            rejects.write({"path": key, "kind": kind, **info})
            counts["filtered" if kind == "filtered" else "errors"] += 1

        try:
            done = _done(out, retry_errors=retry_errors)
            if split_dir is not None:
                mine = self._split(
                    mine, Path(split_dir), done, key_of, reject, split_kwargs or {}, progress
                )
            todo = [p for p in mine if key_of(p) not in done]
            counts["skipped"] = len(mine) - len(todo)
            bar = tqdm(
                total=len(todo),
                desc=f"caption[{rank}/{world_size}]",
                unit="clip",
                disable=not progress,
                dynamic_ncols=True,
            )
            pending: list[_Prepared] = []
            for item in self._prefetch(todo, key_of):
                if item.error is not None:
                    reject(
                        item.key,
                        "error",
                        stage=item.error[0],
                        reason=item.error[1],
                        scores=item.scores,
                    )
                    bar.update(1)
                elif item.failed:
                    reject(item.key, "filtered", failed=list(item.failed), scores=item.scores)
                    bar.update(1)
                elif self.captioner is None:
                    self._write(writer, item, None)
                    counts["accepted"] += 1
                    bar.update(1)
                else:
                    pending.append(item)
                if len(pending) >= self.config.clips_per_batch:
                    self._flush(pending, writer, reject, counts, bar)
                    pending = []
                bar.set_postfix(
                    kept=counts["accepted"],
                    filtered=counts["filtered"],
                    errors=counts["errors"],
                    refresh=False,
                )
            if pending:
                self._flush(pending, writer, reject, counts, bar)
            bar.close()
        finally:
            writer.close()
            rejects.close()
        elapsed = time.perf_counter() - started
        processed = counts["accepted"] + counts["filtered"] + counts["errors"]
        this_run = {
            **counts,
            "rank": rank,
            "world_size": world_size,
            "seconds": round(elapsed, 3),
            "clips_per_second": round(processed / elapsed, 4) if elapsed > 0 else None,
        }
        report = build_report(out, rank=rank, world_size=world_size)
        report["this_run"] = this_run
        report["filter_config"] = self.filter.config.to_dict()
        report["caption_config"] = asdict(self.config)
        report["scorers"] = self.filter.active_scorers()
        report["captioner"] = None if self.captioner is None else self.captioner.name
        with atomic_output(paths.report) as tmp:
            tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        return report

    def _prefetch(self, todo: list[Path], key_of) -> Iterator[_Prepared]:
        """Read and score clips in worker threads, a bounded number ahead, in input order."""
        ahead = 2 * self.config.workers + self.config.clips_per_batch
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            queue: deque[Future[_Prepared]] = deque()
            it = iter(todo)
            for path in it:
                queue.append(pool.submit(self._prepare, path, key_of(path)))
                if len(queue) >= ahead:
                    break
            while queue:
                item = queue.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    queue.append(pool.submit(self._prepare, nxt, key_of(nxt)))
                yield item

    def _flush(
        self,
        batch: list[_Prepared],
        writer: ManifestWriter,
        reject,
        counts: dict[str, int],
        bar: tqdm,
    ) -> None:
        try:
            results = self._caption(batch)
        except Exception as e:
            results = [(batch[0], e)]
        for item, result in results:
            if isinstance(result, Exception):
                reject(
                    item.key,
                    "error",
                    stage="caption",
                    reason=f"{type(result).__name__}: {result}",
                    scores=item.scores,
                )
            elif result.error is not None:
                reject(
                    item.key,
                    "error",
                    stage="caption",
                    reason=result.error,
                    scores=item.scores,
                    frame_captions={f"{t:g}": c for t, c in result.frame_captions.items()},
                )
            else:
                self._write(writer, item, result)
                counts["accepted"] += 1
            bar.update(1)

    def _write(self, writer: ManifestWriter, item: _Prepared, result) -> None:
        notes = dict(item.notes)
        extra: dict[str, Any] = {}
        tags: list[str] = []
        if result is not None:
            if result.truncated:
                notes["truncated"] = (
                    f"model wrote {result.raw_words} words; shortened to the {getattr(self.captioner, 'max_words', '?')}-word limit"
                )
                tags.append("caption_truncated")
            if result.removed_opener:
                notes["removed_opener"] = True
            if result.frame_captions:
                extra["frame_captions"] = {f"{t:g}": c for t, c in result.frame_captions.items()}
        if notes:
            extra["caption_notes"] = notes
        writer.write(
            ManifestRecord(
                path=item.key,
                caption="" if result is None else result.caption,
                type=item.type,
                frames=item.frames,
                height=item.height,
                width=item.width,
                fps=item.fps,
                scores={k: round(v, 6) for k, v in item.scores.items()},
                tags=tuple(tags),
                extra=extra,
            )
        )

    def _split(
        self, sources: list[Path], split_dir: Path, done: set[str], key_of, reject, kwargs, progress
    ) -> list[Path]:
        """Replace long videos by their single-shot clips (cached in ``<stem>.shots.json``)."""
        clips: list[Path] = []
        for src in tqdm(sources, desc="split shots", unit="video", disable=not progress):
            if is_image_path(src):
                clips.append(src)
                continue
            index = split_dir / f"{src.stem}.shots.json"
            if index.is_file():
                clips.extend(split_dir / name for name in json.loads(index.read_text()))
                continue
            if key_of(src) in done:
                continue
            try:
                shot_paths = split_shots(src, split_dir, **kwargs)
            except Exception as e:
                reject(key_of(src), "error", stage="split", reason=f"{type(e).__name__}: {e}")
                continue
            with atomic_output(index) as tmp:
                tmp.write_text(json.dumps([p.name for p in shot_paths]))
            clips.extend(shot_paths)
        return clips


def build_report(
    output: str | os.PathLike[str], *, rank: int = 0, world_size: int = 1
) -> dict[str, Any]:
    """Totals from the manifest and rejects files (final file and all parts).

    The latest line per path wins, so a clip that errored and then succeeded on a retry counts
    once, as accepted.
    """
    out = Path(output)
    problems: list[JsonlProblem] = []
    status: dict[str, dict[str, Any]] = {}
    for p in _all_parts(out, ".rejects"):
        for rec in _rows(p, ".rejects", problems):
            status[rec["path"]] = rec
    accepted = {rec["path"]: rec for p in _all_parts(out, "") for rec in _rows(p, "", problems)}
    for key in accepted:
        status.pop(key, None)
    filtered = [r for r in status.values() if r.get("kind") == "filtered"]
    errors = [r for r in status.values() if r.get("kind") == "error"]
    by_stage: dict[str, int] = {}
    for r in errors:
        by_stage[r.get("stage", "?")] = by_stage.get(r.get("stage", "?"), 0) + 1
    return {
        "manifest": str(out),
        "clips": len(accepted) + len(filtered) + len(errors),
        "accepted": len(accepted),
        "filtered": len(filtered),
        "errors": len(errors),
        "removed_by_filter": summarize_failures([r.get("failed", []) for r in filtered]),
        "errors_by_stage": dict(sorted(by_stage.items())),
        "error_examples": [
            {"path": r["path"], "stage": r.get("stage"), "reason": r.get("reason")}
            for r in errors[:20]
        ],
        "captions_truncated": sum(
            "caption_truncated" in r.get("tags", []) for r in accepted.values()
        ),
        "openers_removed": sum(
            bool(r.get("caption_notes", {}).get("removed_opener")) for r in accepted.values()
        ),
        "parts": [str(p) for p in _all_parts(out, "")[1:]],
        "bad_lines": len(problems),
        "bad_line_examples": [str(pr) for pr in problems[:20]],
    }


def merge_parts(output: str | os.PathLike[str], *, skip_bad_lines: bool = False) -> dict[str, Any]:
    """Join rank parts into the final manifest and rejects files (atomic), then delete the parts.

    Records already in the final file are kept; a path present twice keeps its first record.
    A bad line (not JSON, not a valid record, a rejects row without ``path``) stops the merge with
    ``file:line: reason`` before anything is written; with ``skip_bad_lines`` it is moved to the
    final file's ``.quarantine`` side file instead and counted in the report. ``output`` with no
    final file and no parts raises ``FileNotFoundError`` and creates nothing. Returns the report.
    """
    out = Path(output)
    if out.suffix != ".jsonl":
        raise ValueError(
            f"output={str(out)!r}: expected the .jsonl manifest given to 'run --output'"
        )
    if out.is_dir():
        raise IsADirectoryError(f"output={str(out)!r}: is a folder, expected a .jsonl manifest")
    kinds = {kind: _all_parts(out, kind) for kind in ("", ".rejects")}
    if not any(p.is_file() for files in kinds.values() for p in files):
        raise FileNotFoundError(
            f"output={str(out)!r}: no manifest and no rank parts "
            f"({out.name.removesuffix('.jsonl')}.part-*-of-*.jsonl) to merge there"
        )
    # read and check everything first: a bad line stops the merge before any file changes
    merged: dict[str, tuple[list[dict[str, Any]], list[JsonlProblem]]] = {}
    for kind, files in kinds.items():
        check = _check_accepted if kind == "" else _check_reject
        seen: set[str] = set()
        rows: list[dict[str, Any]] = []
        problems: list[JsonlProblem] = []
        for p in files:
            if not p.is_file():
                continue
            policy = "skip" if skip_bad_lines else "raise"
            try:
                for _, rec in iter_jsonl(p, policy=policy, check=check, problems=problems):
                    if kind == "" and rec["path"] in seen:
                        continue
                    seen.add(rec["path"])
                    rows.append(rec)
            except JsonlError as e:
                raise ManifestError(
                    f"{e} (nothing merged; fix or delete that line, or merge with --skip-bad-lines)"
                ) from None
        merged[kind] = (rows, problems)
    for kind, (rows, problems) in merged.items():
        final, parts = kinds[kind][0], [p for p in kinds[kind][1:] if p.is_file()]
        if not parts and not problems:
            continue
        if problems:
            with quarantine_path(final).open("a", encoding="utf-8") as f:
                for pr in problems:
                    f.write(
                        json.dumps(
                            {
                                "file": str(pr.path),
                                "line": pr.line,
                                "reason": pr.reason,
                                "text": pr.text,
                            }
                        )
                        + "\n"
                    )
        with atomic_output(final) as tmp, tmp.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in rows)
        for p in parts:
            p.unlink()
    for rep in out.parent.glob(f"{out.name.removesuffix('.jsonl')}.report.part-*-of-*.json"):
        rep.unlink()
    report = build_report(out)
    report["merge_bad_lines"] = [str(pr) for _, problems in merged.values() for pr in problems]
    with atomic_output(RunPaths.for_output(out).report) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return report
