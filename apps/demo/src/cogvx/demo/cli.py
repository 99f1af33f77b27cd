"""``cogvx demo``: the web demo (Gradio) over a model folder.

    cogvx demo                                   # the shipped shapes model at http://127.0.0.1:7860/
    cogvx demo --model DIR --port 8080 --output-dir runs/demo
    cogvx demo --upsample-endpoint http://127.0.0.1:8000/v1   # prompt upsampling via a chat model

Safe by default: bound to 127.0.0.1 (``--host 0.0.0.0`` serves the network, on purpose only), no
share link unless ``--share``, one generation at a time with at most ``--queue-size`` waiting
(the rest are told "busy, try again"), uploads limited by ``--max-upload-mb`` and
``--max-upload-frames``, and everything it writes (runs, uploads, Gradio's cache) inside
``--output-dir``. Arguments are checked before anything heavy is imported (``--help`` loads no
torch or gradio).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from cogvx.cli.usage import ArgumentParser, UsageError, float_arg, int_arg

__all__ = ["main"]

DEFAULT_PORT = 7860


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="cogvx demo",
        description="Serve a web page that generates videos with a CogVideoX model folder "
        "(diffusers layout); without --model, the shipped shapes model.",
    )
    p.add_argument("--model", help="model folder (default: the shipped shapes model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument(
        "--port",
        type=int_arg("--port", minimum=1, maximum=65535),
        default=DEFAULT_PORT,
        help=f"port ({DEFAULT_PORT})",
    )
    p.add_argument(
        "--output-dir",
        default="outputs/demo",
        help="where runs, uploads and Gradio's cache go (outputs/demo)",
    )
    p.add_argument(
        "--queue-size",
        type=int_arg("--queue-size", minimum=0, maximum=1000),
        default=4,
        help="requests that may wait behind the running one (4); more are told busy",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float_arg("--max-upload-mb", minimum=0.0, exclusive_minimum=True, maximum=10_000.0),
        default=50.0,
        help="largest upload in MB (50)",
    )
    p.add_argument(
        "--max-upload-frames",
        type=int_arg("--max-upload-frames", minimum=1, maximum=100_000),
        default=300,
        help="most frames an uploaded video may have (300)",
    )
    p.add_argument(
        "--max-frames",
        type=int_arg("--max-frames", minimum=2, maximum=100_000),
        help="largest frame count offered (default: twice the model's, at least 49)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument(
        "--share",
        action="store_true",
        help="also open a public Gradio share link (off by default; needs internet)",
    )
    g = p.add_argument_group("prompt upsampling (cogvx.captioner; off unless one is given)")
    g.add_argument("--upsample-endpoint", help="OpenAI-compatible chat endpoint URL")
    g.add_argument("--upsample-endpoint-model", default="gpt-4o", help="model name (gpt-4o)")
    g.add_argument("--upsample-model", help="local causal-LM folder (transformers)")
    return p


def _model_folder(model: str | None) -> tuple[Path, bool]:
    """The folder and whether it is the shipped shapes model."""
    from cogvx.infer import default_model_dir

    shipped = default_model_dir()
    if model is None:
        if not (shipped / "model_index.json").is_file():
            raise UsageError(
                "--model",
                None,
                f"the default shapes model is missing ({shipped} has no model_index.json); "
                "pass --model DIR with a CogVideoX model folder",
            )
        return shipped, True
    path = Path(model)
    if not (path / "model_index.json").is_file():
        what = "no model_index.json in it" if path.is_dir() else "no such folder"
        raise UsageError("--model", model, f"a model folder with model_index.json ({what})")
    return path, path.resolve() == shipped.resolve()


def _check_upsample_args(ns: Any) -> None:
    if ns.upsample_endpoint and ns.upsample_model:
        raise UsageError(
            "--upsample-model", ns.upsample_model, "give --upsample-endpoint or it, not both"
        )
    url = ns.upsample_endpoint
    if url is not None and not url.startswith(("http://", "https://")):
        raise UsageError("--upsample-endpoint", url, "a URL starting with http:// or https://")
    if ns.upsample_model is not None and not (Path(ns.upsample_model) / "config.json").is_file():
        raise UsageError("--upsample-model", ns.upsample_model, "a folder with config.json")


def _upsampler(ns: Any) -> Any:
    """The prompt upsampler of the (checked) arguments, or None when none is configured."""
    if not (ns.upsample_endpoint or ns.upsample_model):
        return None
    try:
        from cogvx.captioner.upsample import PromptUpsampler
    except ImportError as e:
        raise UsageError(
            "--upsample-endpoint" if ns.upsample_endpoint else "--upsample-model",
            ns.upsample_endpoint or ns.upsample_model,
            f"prompt upsampling needs cogvx-captioner: pip install 'cogvx-demo[upsample]' ({e})",
        ) from None
    if ns.upsample_endpoint:
        return PromptUpsampler.from_endpoint(ns.upsample_endpoint, model=ns.upsample_endpoint_model)
    return PromptUpsampler.from_pretrained(ns.upsample_model)


def _contain_temporary_files(output: Path) -> None:
    """Point this process's temporary files (``TMPDIR``: torch's and Gradio's caches, uploads;
    matplotlib's font cache unless ``MPLCONFIGDIR`` is set) into ``<output>/.tmp`` and
    ``<output>/.gradio`` before torch or gradio is imported, so the demo writes nothing outside
    its output folder. Telemetry off."""
    tmp = output / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(tmp.resolve())
    tempfile.tempdir = None  # forget a temporary folder looked up before
    os.environ["GRADIO_TEMP_DIR"] = str((output / ".gradio").resolve())
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    # Gradio imports matplotlib, whose font cache would otherwise land in ~/.cache and ~/.config
    os.environ.setdefault("MPLCONFIGDIR", str((tmp / "matplotlib").resolve()))


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from cogvx.infer.outputs import check_writable_folder

    model, shipped = _model_folder(ns.model)
    output = Path(ns.output_dir)
    if output.exists() and not output.is_dir():
        raise UsageError("--output-dir", ns.output_dir, "a folder, not a file")
    check_writable_folder(output, "--output-dir")
    if not ns.host.strip():
        raise UsageError("--host", ns.host, "an address such as 127.0.0.1")
    _check_upsample_args(ns)
    _contain_temporary_files(output)
    upsampler = _upsampler(ns)

    from cogvx.demo.generation import DemoModel
    from cogvx.demo.uploads import UploadLimits

    limits = UploadLimits(
        max_bytes=int(ns.max_upload_mb * 1024 * 1024), max_frames=ns.max_upload_frames
    )
    try:
        demo_model = DemoModel(
            model,
            output,
            device=ns.device,
            dtype=ns.dtype,
            shipped=shipped,
            max_frames=ns.max_frames,
            limits=limits,
            upsampler=upsampler,
        )
    except ValueError as e:
        if "max_frames" in str(e):
            raise UsageError("--max-frames", str(ns.max_frames), str(e)) from None
        raise

    from cogvx.demo.app import serve

    if ns.share:
        print("cogvx demo: --share opens a public link: anyone with it can use this machine",
              file=sys.stderr)  # fmt: skip

    # Ctrl-C and SIGTERM stop the server cleanly (exit 130), also when started in the background,
    # where the shell hands Python an ignored SIGINT
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)

    def announce(url: str) -> None:
        print(f"cogvx demo: serving {model} at {url} (Ctrl-C stops)", file=sys.stderr, flush=True)

    serve(
        demo_model,
        host=ns.host,
        port=ns.port,
        max_waiting=ns.queue_size,
        share=ns.share,
        on_ready=announce,
    )
    return 0
