"""``cogvx eval``: score videos, compare runs, reconstruction metrics, FVD.

    cogvx eval VIDEOS... [--dims d1,d2|all] [--suite PATH|builtin] [--out DIR] [backend options]
    cogvx eval compare A.json B.json [--out FILE.md]
    cogvx eval recon RECON... --reference REF... [--out DIR]
    cogvx eval fvd --real PATHS... --fake PATHS... --i3d FILE [--out FILE.json]

Dimensions come from the library's table (:data:`cogvx.evals.dimensions.DIMENSION_TABLE`); this
module only turns flags into a :class:`~cogvx.evals.dimensions.BackendOptions`. Dimensions whose
backend is not given (or fails to load) are reported as unavailable with the reason; nothing is
skipped silently. Every path is checked before any work: a missing video, folder or report, or an
output that is an existing file of the wrong kind, is refused with exit code 2.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from cogvx.cli import ArgumentParser, UsageError, int_arg
from cogvx.evals.dimensions import (
    DEFAULT_DIMENSIONS,
    DIMENSION_TABLE,
    BackendOptions,
    build_evaluators,
    parse_dimensions,
)
from cogvx.evals.evaluator import evaluate
from cogvx.evals.samples import VideoSample
from cogvx.videoio import VIDEO_SUFFIXES, collect_media

__all__ = ["main"]


def _videos(paths: list[str], parameter: str) -> list[Path]:
    """The video files of ``paths`` (folders expanded); a missing path or no video is a usage
    error naming ``parameter``."""
    for path in paths:
        if not os.path.exists(path):
            raise UsageError(parameter, path, "no such file or folder")
    found = collect_media(paths, parameter=parameter)
    if not found:
        raise UsageError(
            parameter,
            " ".join(paths),
            f"no video files found (suffixes: {', '.join(VIDEO_SUFFIXES)}; dot-files and "
            "*.partial.* are skipped)",
        )
    return found


def _writable(out: Path, path: str, parameter: str) -> None:
    """The nearest existing folder at or above ``out`` must be a writable folder."""
    existing = next((q for q in (out, *out.parents) if q.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(parameter, path, f"cannot write under {str(existing)!r}")


def _output_folder(path: str, parameter: str = "--out") -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(parameter, path, "is an existing file; give a folder")
    _writable(out, path, parameter)
    return out


def _output_file(path: str, suffix: str, parameter: str = "--out") -> Path:
    out = Path(path)
    if out.is_dir():
        raise UsageError(parameter, path, f"is a folder; give a {suffix} file")
    if out.suffix.lower() != suffix:
        raise UsageError(parameter, path, f"expected a {suffix} file")
    _writable(out.parent, path, parameter)
    return out


def _samples(paths: list[Path], suite) -> list[VideoSample]:
    from cogvx.evals.vbench.suite import samples_from_paths

    samples = samples_from_paths(paths, suite)
    names = [s.name for s in samples]
    dup = {n for n in names if names.count(n) > 1}
    return [s if s.name not in dup else dataclasses.replace(s, name=str(s.path)) for s in samples]


_FILE_OPTIONS = ("dino", "clip", "clip_l", "aesthetic_head", "iqa", "detector", "captioner")
_FILE_OPTIONS += ("action", "judge_local")


def _options(args) -> BackendOptions:
    """Flags -> options, with every given path checked to exist before any model is loaded."""
    names = {f.name for f in dataclasses.fields(BackendOptions)}
    given = {k: v for k, v in vars(args).items() if k in names}
    for name in _FILE_OPTIONS:
        if given.get(name) is not None and not os.path.exists(given[name]):
            raise UsageError(BackendOptions.flag(name), given[name], "no such file or folder")
    for name, keywords in (("flow", ("dis", "farneback")), ("interpolator", ("flow", "blend"))):
        if given[name] not in keywords and not os.path.isfile(given[name]):
            valid = f"expected {' or '.join(repr(k) for k in keywords)}, or an existing file"
            raise UsageError(BackendOptions.flag(name), given[name], valid)
    import torch

    try:
        torch.device(given["device"])
    except (RuntimeError, ValueError):
        raise UsageError(
            "--device", given["device"], "expected a torch device such as cpu, cuda:0"
        ) from None
    try:
        return BackendOptions(**given)
    except (TypeError, ValueError) as e:
        raise UsageError("options", None, str(e)) from None


# ---------------------------------------------------------------------------------------------
# subcommands


def _run_parser() -> ArgumentParser:
    p = ArgumentParser(
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
        help="comma-separated dimensions or 'all' (default: the 16 VBench ones); also "
        + ", ".join(d for d in DIMENSION_TABLE if d not in DEFAULT_DIMENSIONS),
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
    try:
        dims = parse_dimensions(args.dims)
    except ValueError:
        valid = f"valid: all, {', '.join(DIMENSION_TABLE)}"
        raise UsageError("--dims", args.dims, valid) from None
    paths = _videos(args.videos, "videos")
    out = _output_folder(args.out)
    options = _options(args)
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        raise UsageError(
            "--no-plots",
            None,
            "the figures need matplotlib: pip install 'cogvx-evals[plots]', or pass --no-plots",
        )
    suite = None
    if args.suite == "builtin":
        suite = PromptSuite.builtin()
    elif args.suite:
        if not os.path.isfile(args.suite):
            raise UsageError("--suite", args.suite, "no such file (or give 'builtin')")
        suite = PromptSuite.from_file(args.suite)
    samples = _samples(paths, suite)
    evaluators = build_evaluators(dims, options)
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

    p = ArgumentParser(
        prog="cogvx eval compare", description="Compare two 'cogvx eval' results.json files."
    )
    p.add_argument("a", help="first results.json")
    p.add_argument("b", help="second results.json")
    p.add_argument("--out", help="also write the Markdown table here")
    args = p.parse_args(argv)
    for name in ("a", "b"):
        if not os.path.isfile(getattr(args, name)):
            raise UsageError(name, getattr(args, name), "no such file (a cogvx eval results.json)")
    if args.out:
        _output_file(args.out, ".md")
    md = compare_markdown(
        load_run(args.a),
        load_run(args.b),
        names=(Path(args.a).parent.name or "A", Path(args.b).parent.name or "B"),
    )
    if args.out:
        write_text(args.out, md)
    print(md)
    return 0


def _pair_up(recon: list[Path], refs: list[str]) -> list[tuple[Path, Path]]:
    if len(refs) == 1 and Path(refs[0]).is_dir():
        pairs = [(r, Path(refs[0]) / r.name) for r in recon]
        missing = [str(b) for _, b in pairs if not b.is_file()]
        if missing:
            raise UsageError(
                "--reference",
                refs[0],
                f"has no video named like {len(missing)} reconstructions, e.g. {missing[0]!r}",
            )
        return pairs
    ref_files = _videos(refs, "--reference")
    if len(ref_files) != len(recon):
        raise UsageError(
            "--reference",
            " ".join(refs),
            f"gives {len(ref_files)} videos for {len(recon)} reconstructions; give as many files "
            "(paired in order) or one folder (paired by file name)",
        )
    return list(zip(recon, ref_files))


def _recon(argv: list[str]) -> int:
    from cogvx.evals.recon import evaluate_pairs
    from cogvx.evals.report import make_run, run_markdown, write_json, write_text

    p = ArgumentParser(
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
    recon = _videos(args.videos, "videos")
    out = _output_folder(args.out)
    pairs = [
        (VideoSample.from_path(a), VideoSample.from_path(b, name=str(b)))
        for a, b in _pair_up(recon, args.reference)
    ]
    run = make_run(
        evaluate_pairs(pairs, progress=not args.no_progress),
        [a.name for a, _ in pairs],
        {"mode": "recon"},
    )
    write_json(out / "recon.json", run.to_dict())
    md = run_markdown(run, title="cogvx eval recon")
    write_text(out / "recon.md", md)
    print(md)
    return 0


def _fvd(argv: list[str]) -> int:
    from cogvx.evals.frechet import TorchScriptVideoFeatures, frechet_distance, video_features
    from cogvx.evals.report import write_json

    p = ArgumentParser(
        prog="cogvx eval fvd", description="Frechet Video Distance with a local I3D (TorchScript)."
    )
    p.add_argument("--real", nargs="+", required=True, help="real videos or folders")
    p.add_argument("--fake", nargs="+", required=True, help="generated videos or folders")
    p.add_argument(
        "--i3d",
        required=True,
        help="TorchScript video feature extractor (e.g. StyleGAN-V i3d_torchscript.pt)",
    )
    p.add_argument(
        "--num-frames",
        type=int_arg("--num-frames", minimum=1),
        default=16,
        help="frames per clip (default 16)",
    )
    p.add_argument(
        "--biased",
        action="store_true",
        help="covariance /N (StyleGAN-V) instead of /(N-1) (original FVD)",
    )
    p.add_argument("--out", default="fvd.json", help="output JSON (default: fvd.json)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    sides = {side: _videos(getattr(args, side), f"--{side}") for side in ("real", "fake")}
    if not os.path.isfile(args.i3d):
        raise UsageError("--i3d", args.i3d, "no such file (a TorchScript feature extractor)")
    _output_file(args.out, ".json")
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
    for side, paths in sides.items():
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
