"""``cogvx caption``: filter and caption a folder, merge shards, upsample prompts, train a filter.

    cogvx caption run clips/ --output data/manifest.jsonl --captioner models/blip --summarizer models/llm
    cogvx caption run clips/ --output data/manifest.jsonl --filter-only
    cogvx caption merge data/manifest.jsonl          # after a sharded run (--rank/--world-size)
    cogvx caption upsample "a cat in the rain" --model models/chat
    cogvx caption upsample "a cat in the rain" --endpoint http://localhost:8000/v1 --endpoint-model glm-4-plus
    cogvx caption train-filter labels.jsonl --output models/negative-head

Every argument is checked before any clip or model is touched: a missing folder or model, a
number that is not finite or out of range (``--every-seconds nan``, ``--batch 0``), a bad
output path is refused on one line naming the option (exit 2). Problems with single clips
(unreadable files, empty model output) are recorded per clip in the rejects file and the report,
and the run goes on; data-file lines that do not parse are reported as ``file:line`` (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from cogvx.cli import ArgumentParser, UsageError, float_arg, int_arg
from cogvx.modelio import DTYPE_NAMES, parse_dtype

__all__ = ["main"]

# name -> flow backend, at the command-line edge
_FLOWS = ("dis", "farneback", "none")


def _flow(name: str):
    from cogvx.evals.flow import DISFlow, FarnebackFlow

    return {"dis": DISFlow, "farneback": FarnebackFlow}[name]() if name != "none" else None


def _device(name: str) -> str:
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return f"cuda:{_env_int('LOCAL_RANK', 0, minimum=0)}"
        return "cpu"
    try:
        torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError("--device", name, "expected auto, cpu, cuda or cuda:N") from None
    return name


def _env_int(name: str, default: int, *, minimum: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise UsageError(name, text, f"environment variable: expected an integer >= {minimum}")
    return value


def _require_dir(value: str | None, flag: str) -> Path | None:
    if value is None:
        return None
    p = Path(value)
    if not (p / "config.json").is_file():
        raise UsageError(flag, value, "not a model folder (no config.json there)")
    return p


def _require_file(value: str | None, flag: str, what: str) -> Path | None:
    if value is None:
        return None
    if not Path(value).is_file():
        raise UsageError(flag, value, f"no such file ({what})")
    return Path(value)


def _jsonl_output(value: str, flag: str) -> Path:
    out = Path(value)
    if out.suffix != ".jsonl":
        raise UsageError(flag, value, "expected a .jsonl file")
    if out.is_dir():
        raise UsageError(flag, value, "is a folder; expected a .jsonl file")
    parent = out.parent if str(out.parent) else Path(".")
    existing = next((q for q in (parent, *parent.parents) if q.exists()), None)
    if existing is not None and (not existing.is_dir() or not os.access(existing, os.W_OK)):
        raise UsageError(flag, value, f"cannot create files under {str(existing)!r}")
    return out


_ANY = float_arg  # finite, any sign (negative thresholds switch a filter off)


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="cogvx caption",
        description="CogVideoX data pipeline: filtering, dense captioning, prompt upsampling.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser(
        "run", help="filter and caption a folder of videos into a data manifest (resumable)"
    )
    run.add_argument("folder", help="folder of videos/images (searched recursively)")
    run.add_argument(
        "--output", required=True, help="manifest .jsonl to write (rejects and report go beside it)"
    )
    run.add_argument(
        "--captioner", help="image-to-text model folder (transformers) for frame captions"
    )
    run.add_argument(
        "--caption-prompt", help="text prefix for conditional captioners, e.g. 'a picture of'"
    )
    run.add_argument("--summarizer", help="causal LM folder that summarises frame captions")
    run.add_argument(
        "--summarizer-endpoint", help="OpenAI-compatible URL used instead of --summarizer"
    )
    run.add_argument(
        "--summarizer-model", default="gpt-4o", help="model name sent to --summarizer-endpoint"
    )
    run.add_argument(
        "--filter-only", action="store_true", help="score and filter only; captions are left empty"
    )
    run.add_argument("--filter-config", help="JSON file with FilterConfig fields")
    run.add_argument(
        "--min-motion",
        type=_ANY("--min-motion"),
        help="override FilterConfig.min_motion (negative: off)",
    )
    run.add_argument(
        "--max-text", type=_ANY("--max-text"), help="override FilterConfig.max_text (negative: off)"
    )
    run.add_argument(
        "--min-aesthetic",
        type=_ANY("--min-aesthetic"),
        help="override FilterConfig.min_aesthetic (negative: off)",
    )
    run.add_argument(
        "--max-negative",
        type=_ANY("--max-negative"),
        help="override FilterConfig.max_negative (negative: off)",
    )
    run.add_argument(
        "--flow", choices=_FLOWS, default="dis", help="optical-flow backend for the motion score"
    )
    run.add_argument(
        "--aesthetic-clip", help="CLIP folder for the aesthetic score (with --aesthetic-head)"
    )
    run.add_argument("--aesthetic-head", help="LAION aesthetic head weights (.pth state dict)")
    run.add_argument("--classifier-head", help="negative-label head folder (from 'train-filter')")
    run.add_argument(
        "--classifier-features",
        default="handcrafted",
        help="'handcrafted' or a vision model folder",
    )
    run.add_argument(
        "--every-seconds",
        type=float_arg("--every-seconds", minimum=0, exclusive_minimum=True),
        default=2.0,
        help="caption one frame every N seconds (paper: 2)",
    )
    run.add_argument(
        "--max-frames",
        type=int_arg("--max-frames", minimum=1),
        default=16,
        help="most caption frames per clip",
    )
    run.add_argument(
        "--max-words",
        type=int_arg("--max-words", minimum=1),
        default=100,
        help="caption word limit (paper: 100)",
    )
    run.add_argument(
        "--batch", type=int_arg("--batch", minimum=1), default=8, help="clips captioned per batch"
    )
    run.add_argument(
        "--image-batch",
        type=int_arg("--image-batch", minimum=1),
        default=16,
        help="frames per image-captioner forward",
    )
    run.add_argument(
        "--workers",
        type=int_arg("--workers", minimum=1),
        default=2,
        help="threads reading and scoring clips ahead",
    )
    run.add_argument(
        "--split-shots",
        metavar="DIR",
        help="first split videos into single-shot clips written to DIR",
    )
    run.add_argument(
        "--shot-threshold",
        type=float_arg("--shot-threshold", minimum=0, maximum=1),
        default=0.35,
        help="histogram distance that marks a cut",
    )
    run.add_argument(
        "--shot-min-seconds",
        type=float_arg("--shot-min-seconds", minimum=0),
        default=1.0,
        help="drop shots shorter than this",
    )
    run.add_argument(
        "--shot-max-seconds",
        type=float_arg("--shot-max-seconds", minimum=0),
        default=20.0,
        help="split longer shots into pieces of this length (0: never)",
    )
    run.add_argument(
        "--rank",
        type=int_arg("--rank", minimum=0),
        help="this process's shard (default: $RANK or 0)",
    )
    run.add_argument(
        "--world-size",
        type=int_arg("--world-size", minimum=1),
        help="number of shards (default: $WORLD_SIZE or 1)",
    )
    run.add_argument(
        "--retry-errors", action="store_true", help="redo clips that errored in an earlier run"
    )
    run.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda, cuda:N or auto (cuda:$LOCAL_RANK when available)",
    )
    run.add_argument(
        "--dtype",
        choices=DTYPE_NAMES,
        default="fp32",
        help="weights dtype of the captioner and summariser (bf16 on recent GPUs)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    merge = sub.add_parser("merge", help="join the per-rank parts of a sharded run")
    merge.add_argument("output", help="the manifest .jsonl given to 'run --output'")
    merge.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="move lines that do not parse to <manifest>.quarantine instead of stopping",
    )

    up = sub.add_parser("upsample", help="rewrite a short prompt into a detailed video description")
    up.add_argument("prompt")
    src = up.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="local chat model folder (transformers causal LM)")
    src.add_argument("--endpoint", help="OpenAI-compatible API base URL")
    up.add_argument("--endpoint-model", default="gpt-4o", help="model name sent to --endpoint")
    up.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key"
    )
    up.add_argument("--retries", type=int_arg("--retries", minimum=1), default=3)
    up.add_argument("--max-words", type=int_arg("--max-words", minimum=1), default=120)
    up.add_argument("--min-words", type=int_arg("--min-words", minimum=1), default=20)
    up.add_argument("--max-new-tokens", type=int_arg("--max-new-tokens", minimum=1), default=250)
    up.add_argument("--image", help="first frame for an image-to-video prompt (needs --endpoint)")
    up.add_argument("--json", action="store_true", help="print the full result as JSON")
    up.add_argument("--device", default="auto")

    tr = sub.add_parser("train-filter", help="train a negative-label head on labelled clips")
    tr.add_argument(
        "labels",
        help='JSONL: {"path": clip, "labels": {label: 0|1, ...}} (paths relative to the file)',
    )
    tr.add_argument("--output", required=True, help="folder for head.json + head.pt")
    tr.add_argument(
        "--features", default="handcrafted", help="'handcrafted' or a vision model folder"
    )
    tr.add_argument(
        "--hidden",
        type=int_arg("--hidden", minimum=0),
        default=0,
        help="hidden width (0: logistic regression)",
    )
    tr.add_argument("--epochs", type=int_arg("--epochs", minimum=1), default=300)
    tr.add_argument(
        "--frames",
        type=int_arg("--frames", minimum=1),
        default=8,
        help="frames per clip for features (keep equal to FilterConfig.content_frames, default 8)",
    )
    tr.add_argument("--device", default="cpu")
    return parser


def _filter_config(args: argparse.Namespace):
    from cogvx.captioner.filters import FilterConfig

    base = {}
    if args.filter_config:
        _require_file(args.filter_config, "--filter-config", "a JSON object of FilterConfig fields")
        try:
            base = FilterConfig.from_json(args.filter_config).to_dict()
        except (TypeError, ValueError) as e:
            raise UsageError("--filter-config", args.filter_config, str(e)) from None
    for flag, key in (
        ("min_motion", "min_motion"),
        ("max_text", "max_text"),
        ("min_aesthetic", "min_aesthetic"),
        ("max_negative", "max_negative"),
    ):
        value = getattr(args, flag)
        if value is not None:
            base[key] = None if value < 0 else value
    try:
        return FilterConfig.from_dict(base)
    except (TypeError, ValueError) as e:
        raise UsageError("filter", None, str(e)) from None


def _extractor(spec: str, device: str):
    from cogvx.captioner.classifiers import HandcraftedFeatures, TransformersImageFeatures

    if spec == "handcrafted":
        return HandcraftedFeatures()
    _require_dir(spec, "--features")
    return TransformersImageFeatures(spec, device=device)


def _run(args: argparse.Namespace) -> int:
    from cogvx.captioner.aesthetic import ClipAestheticScorer
    from cogvx.captioner.chat import EndpointChatModel, LocalChatModel
    from cogvx.captioner.classifiers import ClassifierHead, HeadClassifier
    from cogvx.captioner.dense import DenseCaptioner, Summarizer, TransformersImageCaptioner
    from cogvx.captioner.filters import ClipFilter
    from cogvx.captioner.pipeline import CaptionConfig, CaptionPipeline

    if not Path(args.folder).is_dir():
        raise UsageError("folder", args.folder, "no such folder")
    _jsonl_output(args.output, "--output")
    if not args.filter_only and args.captioner is None:
        raise UsageError(
            "--captioner", None, "required (or pass --filter-only to score without captions)"
        )
    if args.summarizer and args.summarizer_endpoint:
        raise UsageError(
            "--summarizer", args.summarizer, "give it or --summarizer-endpoint, not both"
        )
    if (args.aesthetic_clip is None) != (args.aesthetic_head is None):
        raise UsageError(
            "--aesthetic-clip", args.aesthetic_clip, "goes together with --aesthetic-head"
        )
    world_size = (
        args.world_size if args.world_size is not None else _env_int("WORLD_SIZE", 1, minimum=1)
    )
    rank = args.rank if args.rank is not None else _env_int("RANK", 0, minimum=0)
    if rank >= world_size:
        raise UsageError("--rank", rank, f"expected 0 <= rank < world size {world_size}")
    device = _device(args.device)
    dtype = parse_dtype(args.dtype, parameter="--dtype")
    # check every model path before loading anything, so a typo costs no loading time
    _require_dir(args.captioner, "--captioner")
    _require_dir(args.summarizer, "--summarizer")
    _require_dir(args.aesthetic_clip, "--aesthetic-clip")
    if args.classifier_features != "handcrafted":
        _require_dir(args.classifier_features, "--classifier-features")
    _require_file(args.aesthetic_head, "--aesthetic-head", "LAION aesthetic head .pth")
    if args.classifier_head and not (Path(args.classifier_head) / "head.json").is_file():
        raise UsageError("--classifier-head", args.classifier_head, "no head.json there")
    if args.split_shots is not None and Path(args.split_shots).is_file():
        raise UsageError("--split-shots", args.split_shots, "is a file; expected a folder")

    config = _filter_config(args)
    aesthetic = (
        ClipAestheticScorer.from_local(args.aesthetic_clip, args.aesthetic_head, device=device)
        if args.aesthetic_clip
        else None
    )
    classifier = (
        HeadClassifier(
            _extractor(args.classifier_features, device), ClassifierHead.load(args.classifier_head)
        )
        if args.classifier_head
        else None
    )
    clip_filter = ClipFilter(
        config, flow=_flow(args.flow), aesthetic=aesthetic, classifier=classifier
    )
    captioner = None
    if not args.filter_only:
        image_captioner = TransformersImageCaptioner(
            args.captioner,
            device=device,
            dtype=dtype,
            batch_size=args.image_batch,
            prompt=args.caption_prompt,
        )
        backend = None
        if args.summarizer:
            backend = LocalChatModel(
                args.summarizer, device=device, dtype=dtype, batch_size=args.batch
            )
        elif args.summarizer_endpoint:
            backend = EndpointChatModel(args.summarizer_endpoint, model=args.summarizer_model)
        captioner = DenseCaptioner(
            image_captioner, Summarizer(backend) if backend else None, max_words=args.max_words
        )
    pipeline = CaptionPipeline(
        clip_filter,
        captioner,
        CaptionConfig(
            every_seconds=args.every_seconds,
            max_caption_frames=args.max_frames,
            max_words=args.max_words,
            clips_per_batch=args.batch,
            workers=args.workers,
        ),
    )
    report = pipeline.run(
        args.folder,
        args.output,
        rank=rank,
        world_size=world_size,
        retry_errors=args.retry_errors,
        split_dir=args.split_shots,
        split_kwargs={
            "threshold": args.shot_threshold,
            "min_seconds": args.shot_min_seconds,
            "max_seconds": args.shot_max_seconds if args.shot_max_seconds > 0 else None,
        },
        progress=not args.no_progress,
    )
    run = report["this_run"]
    print(
        f"{report['manifest']}: {report['accepted']} kept, {report['filtered']} filtered, {report['errors']} errors "
        f"(this run: {run['accepted']} kept, {run['filtered']} filtered, {run['errors']} errors, {run['skipped']} already done)"
    )
    if report["bad_lines"]:
        print(
            f"{report['bad_lines']} bad lines skipped or quarantined, e.g. "
            + "; ".join(report["bad_line_examples"][:3]),
            file=sys.stderr,
        )
    if report["removed_by_filter"]:
        print(
            "removed by filter: "
            + ", ".join(f"{k}={v}" for k, v in report["removed_by_filter"].items())
        )
    return 0


def _merge(args: argparse.Namespace) -> int:
    from cogvx.captioner.pipeline import merge_parts

    out = Path(args.output)
    if out.suffix != ".jsonl" or out.is_dir():
        raise UsageError(
            "output", args.output, "expected the .jsonl manifest given to 'run --output'"
        )
    try:
        report = merge_parts(out, skip_bad_lines=args.skip_bad_lines)
    except FileNotFoundError as e:
        raise UsageError("output", args.output, str(e).split(": ", 1)[-1]) from None
    print(
        f"{report['manifest']}: {report['accepted']} kept, {report['filtered']} filtered, {report['errors']} errors"
    )
    return 0


def _upsample(args: argparse.Namespace) -> int:
    from cogvx.captioner.upsample import PromptUpsampler, UpsampleConfig

    if not args.prompt.strip():
        raise UsageError("prompt", args.prompt, "expected a non-empty prompt")
    if args.min_words > args.max_words:
        raise UsageError("--min-words", args.min_words, f"expected <= --max-words {args.max_words}")
    _require_file(args.image, "--image", "the first frame")
    if args.image and not args.endpoint:
        raise UsageError("--image", args.image, "needs --endpoint (a vision chat endpoint)")
    config = UpsampleConfig(
        retries=args.retries,
        max_words=args.max_words,
        min_words=args.min_words,
        max_new_tokens=args.max_new_tokens,
    )
    if args.model:
        _require_dir(args.model, "--model")
        upsampler = PromptUpsampler.from_pretrained(args.model, config, device=_device(args.device))
    else:
        upsampler = PromptUpsampler.from_endpoint(
            args.endpoint, model=args.endpoint_model, config=config, api_key_env=args.api_key_env
        )
    [result] = upsampler([args.prompt], [args.image] if args.image else None)
    if args.json:
        print(json.dumps(result.__dict__, ensure_ascii=False))
    else:
        if result.fallback:
            print(
                f"cogvx caption: warning: upsampling failed ({result.error}); using the prompt as given",
                file=sys.stderr,
            )
        print(result.prompt)
    return 0


def _label_row(row: dict) -> None:
    if not isinstance(row.get("path"), str) or not row["path"]:
        raise ValueError('row has no "path" (a clip path relative to the file)')
    labels = row.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise ValueError('row has no "labels" object (label -> 0 or 1)')
    for name, value in labels.items():
        if isinstance(value, bool) or value not in (0, 1):
            raise ValueError(f"labels.{name}={value!r}: expected 0 or 1")


def _train_filter(args: argparse.Namespace) -> int:
    from cogvx.captioner.classifiers import clip_features, train_head
    from cogvx.videoio import iter_jsonl, probe_video, read_video, sample_frame_indices

    labels_file = _require_file(args.labels, "labels", "a JSONL file of labelled clips")
    assert labels_file is not None
    if Path(args.output).is_file():
        raise UsageError("--output", args.output, "is a file; expected a folder")
    _device(args.device)
    rows = list(iter_jsonl(labels_file, policy="raise", check=_label_row))
    if not rows:
        raise ValueError(f"labels file {args.labels!r} has no rows")
    for lineno, row in rows:
        if not (labels_file.parent / row["path"]).is_file():
            raise FileNotFoundError(f"{labels_file}:{lineno}: clip {row['path']!r} does not exist")
    names = sorted({k for _, r in rows for k in r["labels"]})
    extractor = _extractor(args.features, args.device)
    feats, targets = [], []
    for lineno, row in rows:
        path = labels_file.parent / row["path"]
        try:
            info = probe_video(path)
            frames = read_video(
                path,
                frame_indices=sample_frame_indices(
                    info.num_frames, info.fps, num=min(args.frames, info.num_frames)
                ),
            ).frames
        except ValueError as e:
            raise ValueError(f"{labels_file}:{lineno}: {e}") from e
        feats.append(clip_features(extractor(frames)))
        targets.append([float(row["labels"][n]) if n in row["labels"] else np.nan for n in names])
    head = train_head(
        np.stack(feats),
        np.array(targets, np.float32),
        names,
        hidden_dim=args.hidden,
        epochs=args.epochs,
    )
    head.save(args.output)
    print(f"{args.output}: head for {names} trained on {len(rows)} clips")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return {"run": _run, "merge": _merge, "upsample": _upsample, "train-filter": _train_filter}[
        args.cmd
    ](args)
