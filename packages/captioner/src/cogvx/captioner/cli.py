"""``cogvx caption``: filter and caption a folder, merge shards, upsample prompts, train a filter.

    cogvx caption run clips/ --output data/manifest.jsonl --captioner models/blip --summarizer models/llm
    cogvx caption run clips/ --output data/manifest.jsonl --filter-only
    cogvx caption merge data/manifest.jsonl          # after a sharded run (--rank/--world-size)
    cogvx caption upsample "a cat in the rain" --model models/chat
    cogvx caption upsample "a cat in the rain" --endpoint http://localhost:8000/v1 --endpoint-model glm-4-plus
    cogvx caption train-filter labels.jsonl --output models/negative-head

A missing model folder is refused before any clip is touched (one-line error, exit 1); problems
with single clips (unreadable files, empty model output) are recorded per clip in the rejects
file and the report, and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]

# name -> flow backend / dtype, at the command-line edge
_FLOWS = ("dis", "farneback", "none")
_DTYPES = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


def _flow(name: str):
    from cogvx.evals.flow import DISFlow, FarnebackFlow

    return {"dis": DISFlow, "farneback": FarnebackFlow}[name]() if name != "none" else None


def _device(name: str) -> str:
    if name != "auto":
        return name
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def _require_dir(value: str | None, flag: str) -> Path | None:
    if value is None:
        return None
    p = Path(value)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{flag} {value!r}: not a model folder (no config.json there)")
    return p


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        "--min-motion", type=float, help="override FilterConfig.min_motion (negative: off)"
    )
    run.add_argument(
        "--max-text", type=float, help="override FilterConfig.max_text (negative: off)"
    )
    run.add_argument(
        "--min-aesthetic", type=float, help="override FilterConfig.min_aesthetic (negative: off)"
    )
    run.add_argument(
        "--max-negative", type=float, help="override FilterConfig.max_negative (negative: off)"
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
        type=float,
        default=2.0,
        help="caption one frame every N seconds (paper: 2)",
    )
    run.add_argument("--max-frames", type=int, default=16, help="most caption frames per clip")
    run.add_argument("--max-words", type=int, default=100, help="caption word limit (paper: 100)")
    run.add_argument("--batch", type=int, default=8, help="clips captioned per batch")
    run.add_argument(
        "--image-batch", type=int, default=16, help="frames per image-captioner forward"
    )
    run.add_argument(
        "--workers", type=int, default=2, help="threads reading and scoring clips ahead"
    )
    run.add_argument(
        "--split-shots",
        metavar="DIR",
        help="first split videos into single-shot clips written to DIR",
    )
    run.add_argument(
        "--shot-threshold", type=float, default=0.35, help="histogram distance that marks a cut"
    )
    run.add_argument(
        "--shot-min-seconds", type=float, default=1.0, help="drop shots shorter than this"
    )
    run.add_argument(
        "--shot-max-seconds",
        type=float,
        default=20.0,
        help="split longer shots into pieces of this length (0: never)",
    )
    run.add_argument("--rank", type=int, help="this process's shard (default: $RANK or 0)")
    run.add_argument("--world-size", type=int, help="number of shards (default: $WORLD_SIZE or 1)")
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
        choices=sorted(_DTYPES),
        default="fp32",
        help="weights dtype of the captioner and summariser (bf16 on recent GPUs)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    merge = sub.add_parser("merge", help="join the per-rank parts of a sharded run")
    merge.add_argument("output", help="the manifest .jsonl given to 'run --output'")

    up = sub.add_parser("upsample", help="rewrite a short prompt into a detailed video description")
    up.add_argument("prompt")
    src = up.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="local chat model folder (transformers causal LM)")
    src.add_argument("--endpoint", help="OpenAI-compatible API base URL")
    up.add_argument("--endpoint-model", default="gpt-4o", help="model name sent to --endpoint")
    up.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key"
    )
    up.add_argument("--retries", type=int, default=3)
    up.add_argument("--max-words", type=int, default=120)
    up.add_argument("--min-words", type=int, default=20)
    up.add_argument("--max-new-tokens", type=int, default=250)
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
    tr.add_argument("--hidden", type=int, default=0, help="hidden width (0: logistic regression)")
    tr.add_argument("--epochs", type=int, default=300)
    tr.add_argument(
        "--frames",
        type=int,
        default=8,
        help="frames per clip for features (keep equal to FilterConfig.content_frames, default 8)",
    )
    tr.add_argument("--device", default="cpu")
    return parser


def _filter_config(args: argparse.Namespace):
    from cogvx.captioner.filters import FilterConfig

    base = FilterConfig.from_json(args.filter_config).to_dict() if args.filter_config else {}
    for flag, key in (
        ("min_motion", "min_motion"),
        ("max_text", "max_text"),
        ("min_aesthetic", "min_aesthetic"),
        ("max_negative", "max_negative"),
    ):
        value = getattr(args, flag)
        if value is not None:
            base[key] = None if value < 0 else value
    return FilterConfig.from_dict(base)


def _extractor(spec: str, device: str):
    from cogvx.captioner.classifiers import HandcraftedFeatures, TransformersImageFeatures

    if spec == "handcrafted":
        return HandcraftedFeatures()
    _require_dir(spec, "--features")
    return TransformersImageFeatures(spec, device=device)


def _run(args: argparse.Namespace) -> int:
    import torch

    from cogvx.captioner.aesthetic import ClipAestheticScorer
    from cogvx.captioner.chat import EndpointChatModel, LocalChatModel
    from cogvx.captioner.classifiers import ClassifierHead, HeadClassifier
    from cogvx.captioner.dense import DenseCaptioner, Summarizer, TransformersImageCaptioner
    from cogvx.captioner.filters import ClipFilter
    from cogvx.captioner.pipeline import CaptionConfig, CaptionPipeline

    if not Path(args.folder).is_dir():
        raise FileNotFoundError(f"folder {args.folder!r} does not exist")
    if not args.filter_only and args.captioner is None:
        raise ValueError(
            "--captioner DIR is required (or pass --filter-only to score and filter without captions)"
        )
    if args.summarizer and args.summarizer_endpoint:
        raise ValueError("give at most one of --summarizer and --summarizer-endpoint")
    if (args.aesthetic_clip is None) != (args.aesthetic_head is None):
        raise ValueError("--aesthetic-clip and --aesthetic-head go together")
    device = _device(args.device)
    # check every model path before loading anything, so a typo costs no loading time
    _require_dir(args.captioner, "--captioner")
    _require_dir(args.summarizer, "--summarizer")
    _require_dir(args.aesthetic_clip, "--aesthetic-clip")
    if args.aesthetic_head and not Path(args.aesthetic_head).is_file():
        raise FileNotFoundError(f"--aesthetic-head {args.aesthetic_head!r} does not exist")
    if args.classifier_head and not (Path(args.classifier_head) / "head.json").is_file():
        raise FileNotFoundError(f"--classifier-head {args.classifier_head!r}: no head.json there")

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
        dtype = None if _DTYPES[args.dtype] is None else getattr(torch, _DTYPES[args.dtype])
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
        rank=args.rank,
        world_size=args.world_size,
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
    if report["removed_by_filter"]:
        print(
            "removed by filter: "
            + ", ".join(f"{k}={v}" for k, v in report["removed_by_filter"].items())
        )
    return 0


def _merge(args: argparse.Namespace) -> int:
    from cogvx.captioner.pipeline import merge_parts

    report = merge_parts(args.output)
    print(
        f"{report['manifest']}: {report['accepted']} kept, {report['filtered']} filtered, {report['errors']} errors"
    )
    return 0


def _upsample(args: argparse.Namespace) -> int:
    from cogvx.captioner.upsample import PromptUpsampler, UpsampleConfig

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
    if args.image and not Path(args.image).is_file():
        raise FileNotFoundError(f"--image {args.image!r} does not exist")
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


def _train_filter(args: argparse.Namespace) -> int:
    from cogvx.captioner.classifiers import clip_features, train_head
    from cogvx.videoio import probe_video, read_video, sample_frame_indices

    labels_file = Path(args.labels)
    if not labels_file.is_file():
        raise FileNotFoundError(f"labels file {args.labels!r} does not exist")
    rows = [json.loads(line) for line in labels_file.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"labels file {args.labels!r} has no rows")
    names = sorted({k for r in rows for k in r.get("labels", {})})
    if not names:
        raise ValueError(f"labels file {args.labels!r}: no row has a 'labels' object")
    extractor = _extractor(args.features, args.device)
    feats, targets = [], []
    for i, row in enumerate(rows, start=1):
        path = labels_file.parent / row["path"]
        info = probe_video(path)
        frames = read_video(
            path,
            frame_indices=sample_frame_indices(
                info.num_frames, info.fps, num=min(args.frames, info.num_frames)
            ),
        ).frames
        feats.append(clip_features(extractor(frames)))
        try:
            targets.append(
                [float(row["labels"][n]) if n in row["labels"] else np.nan for n in names]
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"{args.labels}: line {i}: labels must be 0 or 1: {e}") from e
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
