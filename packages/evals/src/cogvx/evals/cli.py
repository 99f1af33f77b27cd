"""``cogvx eval``: score videos, compare runs, reconstruction metrics, FVD.

    cogvx eval VIDEOS... [--dims d1,d2|all] [--suite PATH|builtin] [--out DIR] [backend options]
    cogvx eval compare A.json B.json [--out FILE.md]
    cogvx eval recon RECON... --reference REF... [--out DIR]
    cogvx eval fvd --real PATHS... --fake PATHS... --i3d FILE [--out FILE.json]

Dimensions whose backend is not given (or fails to load) are reported as unavailable with the
reason; nothing is skipped silently. The name -> builder table below is the CLI edge.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cogvx.evals.evaluator import Evaluator, Unavailable, evaluate
from cogvx.evals.samples import VideoSample
from cogvx.evals.vbench.scores import DIMENSIONS

__all__ = ["EXTRA_DIMENSIONS", "VIDEO_EXTENSIONS", "collect_videos", "main"]

VIDEO_EXTENSIONS = (".mp4", ".gif", ".webm", ".mkv", ".avi", ".mov")
EXTRA_DIMENSIONS = ("gpt4o_mtscore",)


def collect_videos(paths: list[str]) -> list[Path]:
    """Files as given, folders expanded to their video files (sorted). Missing paths are kept so
    that they are reported per video."""
    out: list[Path] = []
    for s in paths:
        p = Path(s)
        if p.is_dir():
            out += sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
            )
        else:
            out.append(p)
    return out


def _samples(paths: list[Path], suite) -> list[VideoSample]:
    from cogvx.evals.vbench.suite import samples_from_paths

    samples = samples_from_paths(paths, suite)
    names = [s.name for s in samples]
    dup = {n for n in names if names.count(n) > 1}
    return [s if s.name not in dup else dataclasses.replace(s, name=str(s.path)) for s in samples]


# ---------------------------------------------------------------------------------------------
# backends: built lazily and shared between dimensions


class _Backends:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._cache: dict[str, Any] = {}

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def need(self, option: str, what: str) -> str:
        value = getattr(self.args, option.lstrip("-").replace("-", "_"))
        if not value:
            raise _Missing(f"needs {option} ({what})")
        return value

    def flow(self):
        from cogvx.evals.flow import DISFlow, FarnebackFlow, RAFTFlow

        spec = self.args.flow
        if spec == "dis":
            return self.get("flow", DISFlow)
        if spec == "farneback":
            return self.get("flow", FarnebackFlow)
        return self.get("flow", lambda: RAFTFlow.from_local(spec, device=self.args.device))

    def interpolator(self):
        from cogvx.evals.interpolation import (
            FlowWarpInterpolator,
            LinearBlendInterpolator,
            TorchScriptInterpolator,
        )

        spec = self.args.interpolator
        if spec == "blend":
            return LinearBlendInterpolator()
        if spec == "flow":
            return FlowWarpInterpolator(self.flow())
        return self.get(
            "interp", lambda: TorchScriptInterpolator.from_local(spec, device=self.args.device)
        )

    def clip(self, pil: bool = False):
        from cogvx.evals.backends.clip import CLIPBackend

        path = self.need(
            "--clip",
            "CLIP ViT-B/32 folder in transformers layout, e.g. openai/clip-vit-base-patch32",
        )
        base = self.get("clip", lambda: CLIPBackend.from_local(path, device=self.args.device))
        return self.get("clip-pil", base.with_pil_resize) if pil else base

    def detector(self):
        from cogvx.evals.backends.vision import TransformersDetector

        path = self.need(
            "--detector", "object detector folder in transformers layout (stand-in for GRiT)"
        )
        return self.get(
            "detector", lambda: TransformersDetector.from_local(path, device=self.args.device)
        )

    def captioner(self):
        from cogvx.evals.backends.vision import TransformersCaptioner

        path = self.need(
            "--captioner",
            "image captioner folder in transformers layout, e.g. BLIP (stand-in for Tag2Text)",
        )
        return self.get(
            "captioner", lambda: TransformersCaptioner.from_local(path, device=self.args.device)
        )


class _Missing(Exception):
    pass


def _build(dim: str, b: _Backends) -> Evaluator:
    """The name -> evaluator table (CLI edge)."""
    from cogvx.evals.vbench import consistency, quality, semantics, temporal, text_video

    a = b.args
    if dim == "temporal_flickering":
        return temporal.TemporalFlickering(
            temporal.StaticFilter(b.flow()) if a.static_filter else None
        )
    if dim == "dynamic_degree":
        return temporal.DynamicDegree(b.flow())
    if dim == "motion_smoothness":
        return temporal.MotionSmoothness(b.interpolator())
    if dim == "subject_consistency":
        from cogvx.evals.backends.vision import DinoEmbedder

        path = b.need(
            "--dino", "DINO ViT-B/16 folder in transformers layout, e.g. facebook/dino-vitb16"
        )
        return consistency.SubjectConsistency(
            b.get("dino", lambda: DinoEmbedder.from_local(path, device=a.device))
        )
    if dim == "background_consistency":
        return consistency.BackgroundConsistency(b.clip())
    if dim == "aesthetic_quality":
        from cogvx.evals.backends.clip import LaionAestheticScorer

        clip_l = b.need("--clip-l", "CLIP ViT-L/14 folder in transformers layout")
        head = b.need("--aesthetic-head", "LAION sa_0_4_vit_l_14_linear.pth")
        return quality.AestheticQuality(
            LaionAestheticScorer.from_local(clip_l, head, device=a.device)
        )
    if dim == "imaging_quality":
        from cogvx.evals.backends.vision import TorchScriptIQA

        path = b.need("--iqa", "TorchScript export of MUSIQ-SPAQ")
        return quality.ImagingQuality(TorchScriptIQA.from_local(path, device=a.device))
    if dim == "object_class":
        return semantics.ObjectClass(b.detector())
    if dim == "multiple_objects":
        return semantics.MultipleObjects(b.detector())
    if dim == "spatial_relationship":
        return semantics.SpatialRelationship(b.detector())
    if dim == "color":
        from cogvx.evals.backends.vision import CropCaptionDenseCaptioner

        return semantics.Color(CropCaptionDenseCaptioner(b.detector(), b.captioner()))
    if dim == "scene":
        return semantics.Scene(b.captioner())
    if dim == "human_action":
        from cogvx.evals.backends.vision import TransformersActionClassifier

        path = b.need(
            "--action",
            "video classifier folder in transformers layout, e.g. VideoMAE Kinetics-400 (stand-in for UMT)",
        )
        return semantics.HumanAction(TransformersActionClassifier.from_local(path, device=a.device))
    if dim == "appearance_style":
        return text_video.AppearanceStyle(b.clip(pil=True))
    if dim in ("temporal_style", "overall_consistency"):
        from cogvx.evals.backends.clip import FrameMeanVideoText

        cls = text_video.TemporalStyle if dim == "temporal_style" else text_video.OverallConsistency
        return cls(b.get("videotext", lambda: FrameMeanVideoText(b.clip())))
    if dim == "gpt4o_mtscore":
        from cogvx.evals.mtscore import MTScore, OpenAICompatibleJudge, TransformersChatJudge

        if a.judge_url:
            if not a.judge_model:
                raise _Missing("needs --judge-model with --judge-url")
            return MTScore(OpenAICompatibleJudge(a.judge_url, a.judge_model))
        path = b.need(
            "--judge-local",
            "a local vision-language chat model folder, or --judge-url URL --judge-model NAME",
        )
        return MTScore(TransformersChatJudge.from_local(path, device=a.device))
    raise ValueError(f"unknown dimension {dim!r}")


def build_evaluators(dims: list[str], args: argparse.Namespace) -> list[Evaluator | Unavailable]:
    b = _Backends(args)
    out: list[Evaluator | Unavailable] = []
    for d in dims:
        try:
            out.append(_build(d, b))
        except _Missing as e:
            out.append(Unavailable(d, str(e)))
        except Exception as e:  # a loader failed: report the dimension, keep the run
            out.append(Unavailable(d, f"backend failed to load: {type(e).__name__}: {e}"))
    return out


def _parse_dims(text: str | None) -> list[str]:
    valid = (*DIMENSIONS, *EXTRA_DIMENSIONS)
    if text is None or text == "all":
        return list(DIMENSIONS)
    dims = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in dims if d not in valid]
    if bad or not dims:
        raise ValueError(
            f"--dims: unknown dimensions {bad or text!r}; valid: all, {', '.join(valid)}"
        )
    return list(dict.fromkeys(dims))


# ---------------------------------------------------------------------------------------------
# subcommands


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cogvx eval",
        description="Score videos on VBench dimensions (and GPT4o-MTScore). Other forms: "
        "'cogvx eval compare A.json B.json', 'cogvx eval recon ...', 'cogvx eval fvd ...'.",
    )
    p.add_argument(
        "videos",
        nargs="+",
        help="video files or folders (named '{prompt}-{i}.mp4' for VBench suites)",
    )
    p.add_argument(
        "--dims",
        help=f"comma-separated dimensions or 'all' (default: the 16 VBench ones); also {', '.join(EXTRA_DIMENSIONS)}",
    )
    p.add_argument(
        "--suite",
        help="prompt suite in VBench's JSON format (e.g. VBench_full_info.json) or 'builtin'",
    )
    p.add_argument("--out", default="eval_results", help="output folder (default: eval_results)")
    p.add_argument(
        "--flow",
        default="dis",
        help="optical flow: 'dis' (default, approximates RAFT), 'farneback', or a RAFT file",
    )
    p.add_argument(
        "--interpolator",
        default="flow",
        help="motion smoothness: 'flow' (default), 'blend', or an AMT TorchScript file",
    )
    p.add_argument(
        "--static-filter",
        action="store_true",
        help="temporal_flickering: skip non-static videos (VBench static filter)",
    )
    p.add_argument("--dino", help="DINO ViT-B/16 folder (transformers)")
    p.add_argument("--clip", help="CLIP ViT-B/32 folder (transformers)")
    p.add_argument("--clip-l", help="CLIP ViT-L/14 folder (transformers), for aesthetic quality")
    p.add_argument("--aesthetic-head", help="LAION aesthetic linear head .pth")
    p.add_argument("--iqa", help="MUSIQ TorchScript file, for imaging quality")
    p.add_argument("--detector", help="object detector folder (transformers)")
    p.add_argument("--captioner", help="image captioner folder (transformers)")
    p.add_argument("--action", help="Kinetics-400 video classifier folder (transformers)")
    p.add_argument(
        "--judge-url", help="OpenAI-compatible endpoint for gpt4o_mtscore (key from OPENAI_API_KEY)"
    )
    p.add_argument("--judge-model", help="model name at --judge-url")
    p.add_argument(
        "--judge-local", help="local vision-language chat model folder for gpt4o_mtscore"
    )
    p.add_argument("--device", default="cpu", help="torch device for model backends (default: cpu)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def _run(argv: list[str]) -> int:
    from cogvx.evals.report import make_run, run_markdown, write_json, write_text
    from cogvx.evals.vbench.suite import PromptSuite

    args = _run_parser().parse_args(argv)
    dims = _parse_dims(args.dims)
    suite = None
    if args.suite == "builtin":
        suite = PromptSuite.builtin()
    elif args.suite:
        suite = PromptSuite.from_file(args.suite)
    paths = collect_videos(args.videos)
    if not paths:
        raise ValueError(
            f"no video files found in {args.videos} (extensions: {', '.join(VIDEO_EXTENSIONS)})"
        )
    samples = _samples(paths, suite)
    evaluators = build_evaluators(dims, args)
    results = evaluate(samples, evaluators, progress=not args.no_progress)
    config = {
        "dims": dims,
        "suite": suite.source if suite else None,
        "flow": args.flow,
        "interpolator": args.interpolator,
        "static_filter": args.static_filter,
    }
    if suite is not None:
        from cogvx.evals.vbench.suite import suite_coverage

        config["suite_coverage"] = suite_coverage(suite, samples, dims)
        config["videos_not_in_suite"] = [s.name for s in samples if s.in_suite is False]
    run = make_run(results, [s.name for s in samples], config)
    out = Path(args.out)
    write_json(out / "results.json", run.to_dict())
    md = run_markdown(run)
    write_text(out / "results.md", md)
    if not args.no_plots:
        _write_plots(run, samples, out)
    print(md)
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 0


def _write_plots(run, samples: list[VideoSample], out: Path) -> None:
    from cogvx.evals.plots import (
        contact_sheet,
        dimension_figure,
        distribution_figure,
        rank_videos,
        save_figure,
    )

    by_name = {s.name: s for s in samples}

    def load(name: str, n: int) -> np.ndarray:
        frames = by_name[name].load().require_frames()
        idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
        return frames[idx]

    save_figure(dimension_figure(run), out / "dimensions.png")
    save_figure(distribution_figure(run), out / "distributions.png")
    save_figure(contact_sheet(rank_videos(run), load), out / "contact_sheet.png")


def _compare(argv: list[str]) -> int:
    from cogvx.evals.report import compare_markdown, load_run, write_text

    p = argparse.ArgumentParser(
        prog="cogvx eval compare", description="Compare two 'cogvx eval' results.json files."
    )
    p.add_argument("a", help="first results.json")
    p.add_argument("b", help="second results.json")
    p.add_argument("--out", help="also write the Markdown table here")
    args = p.parse_args(argv)
    md = compare_markdown(
        load_run(args.a),
        load_run(args.b),
        names=(Path(args.a).parent.name or "A", Path(args.b).parent.name or "B"),
    )
    if args.out:
        write_text(args.out, md)
    print(md)
    return 0


def _pair_up(recon: list[Path], refs: list[Path]) -> list[tuple[Path, Path]]:
    if len(refs) == 1 and refs[0].is_dir():
        return [(r, refs[0] / r.name) for r in recon]
    ref_files = collect_videos([str(r) for r in refs])
    if len(ref_files) != len(recon):
        raise ValueError(
            f"--reference gives {len(ref_files)} videos for {len(recon)} reconstructions; give as many files "
            "(paired in order) or one folder (paired by file name)"
        )
    return list(zip(recon, ref_files))


def _recon(argv: list[str]) -> int:
    from cogvx.evals.recon import evaluate_pairs
    from cogvx.evals.report import make_run, run_markdown, write_json, write_text

    p = argparse.ArgumentParser(
        prog="cogvx eval recon",
        description="PSNR / SSIM / flicker of reconstructions against references.",
    )
    p.add_argument("videos", nargs="+", help="reconstructed videos or folders")
    p.add_argument(
        "--reference",
        nargs="+",
        required=True,
        help="reference videos (same order) or one folder (same names)",
    )
    p.add_argument("--out", default="eval_recon", help="output folder (default: eval_recon)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    recon = collect_videos(args.videos)
    if not recon:
        raise ValueError(f"no video files found in {args.videos}")
    pairs = [
        (VideoSample.from_path(a), VideoSample.from_path(b, name=str(b)))
        for a, b in _pair_up(recon, [Path(r) for r in args.reference])
    ]
    run = make_run(
        evaluate_pairs(pairs, progress=not args.no_progress),
        [a.name for a, _ in pairs],
        {"mode": "recon"},
    )
    out = Path(args.out)
    write_json(out / "recon.json", run.to_dict())
    md = run_markdown(run, title="cogvx eval recon")
    write_text(out / "recon.md", md)
    print(md)
    return 0


def _fvd(argv: list[str]) -> int:
    from cogvx.evals.frechet import TorchScriptVideoFeatures, frechet_distance, video_features
    from cogvx.evals.report import write_json

    p = argparse.ArgumentParser(
        prog="cogvx eval fvd", description="Frechet Video Distance with a local I3D (TorchScript)."
    )
    p.add_argument("--real", nargs="+", required=True, help="real videos or folders")
    p.add_argument("--fake", nargs="+", required=True, help="generated videos or folders")
    p.add_argument(
        "--i3d",
        required=True,
        help="TorchScript video feature extractor (e.g. StyleGAN-V i3d_torchscript.pt)",
    )
    p.add_argument("--num-frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument(
        "--biased",
        action="store_true",
        help="covariance /N (StyleGAN-V) instead of /(N-1) (original FVD)",
    )
    p.add_argument("--out", default="fvd.json", help="output JSON (default: fvd.json)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.num_frames < 1:
        raise ValueError(f"--num-frames must be >= 1, got {args.num_frames}")
    net = TorchScriptVideoFeatures.from_local(args.i3d, device=args.device)
    skipped: list[dict[str, str]] = []

    def frames(paths: list[Path]):
        for path in paths:
            try:
                v = VideoSample.from_path(path).load().require_frames()
                if len(v) < args.num_frames:
                    raise ValueError(f"{len(v)} frames < --num-frames {args.num_frames}")
            except Exception as e:  # reported in the output, not fatal
                skipped.append({"video": str(path), "reason": f"{type(e).__name__}: {e}"})
                continue
            yield v

    stats = {}
    for side in ("real", "fake"):
        paths = collect_videos(getattr(args, side))
        stats[side] = video_features(frames(paths), net, num_frames=args.num_frames)
        if stats[side].n < 2:
            raise ValueError(f"FVD needs at least 2 readable {side} videos, got {stats[side].n}")
    mu_r, s_r = stats["real"].mean_cov(unbiased=not args.biased)
    mu_f, s_f = stats["fake"].mean_cov(unbiased=not args.biased)
    value = frechet_distance(mu_r, s_r, mu_f, s_f)
    write_json(
        args.out,
        {
            "fvd": value,
            "real": stats["real"].n,
            "fake": stats["fake"].n,
            "num_frames": args.num_frames,
            "covariance": "biased" if args.biased else "unbiased",
            "extractor": net.name,
            "skipped": skipped,
        },
    )
    print(
        f"FVD = {value:.4f} ({stats['real'].n} real, {stats['fake'].n} fake, {len(skipped)} skipped) -> {args.out}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cogvx eval`` (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    sub = {"compare": _compare, "recon": _recon, "fvd": _fvd}
    if args and args[0] in sub and not os.path.exists(args[0]):
        return sub[args[0]](args[1:])
    return _run(args)
