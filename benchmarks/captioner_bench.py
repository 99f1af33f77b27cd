"""Throughput of the captioner pipeline on CPU (synthetic clips, tiny random models).

    UV_PROJECT_ENVIRONMENT=/work/venvs/captioner uv run --package cogvx-captioner \
        python benchmarks/captioner_bench.py [--clips 24] [--repeats 2]

Each configuration runs in a fresh subprocess (peak RSS from ``getrusage`` in the child);
configurations are interleaved across repeats so machine load hits them alike. Measures:

- filter-only runs (decode + DIS flow + text/cut scores) with 1 and 2 reader threads;
- a full run with tiny random models (decode + filters + ViT-GPT2 frame captions + Llama summary):
  this is the pipeline's own overhead, not the speed of a real captioner;
- a resumed run with everything done (the cost of skipping);
- the cost of reading the done-set of a 100,000-line manifest.

Results (Markdown) go to ``benchmarks/results/captioner.md`` with ``--write``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_clips(folder: Path, n: int) -> None:
    import numpy as np

    from cogvx.videoio import write_video

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w, t = 240, 360, 49  # 49 frames at 8 fps: CogVideoX's clip length
    yy, xx = np.mgrid[:h, :w]
    bg = np.stack([xx * 200 // w + 20, yy * 200 // h + 20, np.full_like(xx, 90)], -1).astype(
        np.uint8
    )
    for i in range(n):
        tex = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        speed = 0.0 if i % 4 == 0 else 2.0 + i % 5  # a quarter are static
        frames = []
        for k in range(t):
            f = bg.copy()
            x = round(10 + speed * k) % (w - 64)
            f[80:144, x : x + 64] = tex
            frames.append(f)
        write_video(folder / f"clip{i:04d}.mp4", np.stack(frames), 8.0)


def make_models(folder: Path) -> tuple[Path, Path]:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        GPT2Config,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessorPil,
    )

    words = [
        "a",
        "the",
        "man",
        "dog",
        "runs",
        "on",
        "beach",
        "red",
        "square",
        "moves",
        "left",
        "right",
        "camera",
        "pans",
        "sky",
    ]
    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    torch.manual_seed(0)
    cap, lm = folder / "captioner", folder / "lm"
    enc = ViTConfig(
        image_size=64,
        patch_size=16,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    )
    dec = GPT2Config(
        vocab_size=len(vocab),
        n_embd=64,
        n_layer=2,
        n_head=2,
        n_positions=64,
        add_cross_attention=True,
        is_decoder=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 1, 0, 2
    m = VisionEncoderDecoderModel(config=cfg)
    m.generation_config.suppress_tokens = [0, 1, 2, 3]
    m.save_pretrained(cap)
    fast.save_pretrained(cap)
    ViTImageProcessorPil(size={"height": 64, "width": 64}).save_pretrained(cap)
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        )
    )
    llm.generation_config.suppress_tokens = [0, 1, 2, 3]
    llm.save_pretrained(lm)
    fast.save_pretrained(lm)
    return cap, lm


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    from cogvx.captioner.cli import main

    argv = [
        "run",
        args.clips_dir,
        "--output",
        args.output,
        "--no-progress",
        "--workers",
        str(args.workers),
        "--device",
        "cpu",
    ]
    if args.captioner:
        argv += [
            "--captioner",
            args.captioner,
            "--summarizer",
            args.summarizer,
            "--batch",
            "8",
            "--image-batch",
            "16",
        ]
    else:
        argv += ["--filter-only"]
    t0 = time.perf_counter()  # includes loading the models, not importing torch
    main(argv)
    elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = json.loads(
        Path(args.output).with_name(Path(args.output).stem + ".report.json").read_text()
    )
    run = report["this_run"]
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "run_seconds": run["seconds"],
                "processed": run["accepted"] + run["filtered"] + run["errors"],
                "peak_rss_mib": rss,
            }
        )
    )


def run_child(
    tmp: Path,
    name: str,
    clips: Path,
    *,
    workers: int,
    models: tuple[Path, Path] | None,
    keep_output: bool = False,
) -> dict:
    out = tmp / f"{name}.jsonl"
    if not keep_output:
        for p in tmp.glob(f"{name}.*"):
            p.unlink()
        if out.exists():
            out.unlink()
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--clips-dir",
        str(clips),
        "--output",
        str(out),
        "--workers",
        str(workers),
    ]
    if models:
        cmd += ["--captioner", str(models[0]), "--summarizer", str(models[1])]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def done_set_cost(tmp: Path) -> float:
    from cogvx.captioner.pipeline import _done

    out = tmp / "big.jsonl"
    line = {
        "path": "",
        "caption": "x " * 80,
        "type": "video",
        "frames": 49,
        "height": 480,
        "width": 720,
        "fps": 8.0,
        "scores": {"motion": 1.0, "motion_top": 2.0, "text": 0.0},
    }
    with out.open("w") as f:
        for i in range(100_000):
            line["path"] = f"clips/{i:06d}.mp4"
            f.write(json.dumps(line) + "\n")
    t0 = time.perf_counter()
    n = len(_done(out, retry_errors=False))
    assert n == 100_000
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--clips-dir")
    parser.add_argument("--output")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--captioner")
    parser.add_argument("--summarizer")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clips = tmp / "clips"
        make_clips(clips, args.clips)
        models = make_models(tmp / "models")
        configs = {
            "filter-only, 1 reader thread": dict(workers=1, models=None),
            "filter-only, 2 reader threads": dict(workers=2, models=None),
            "filter + tiny captioner + tiny summariser, 2 threads": dict(workers=2, models=models),
        }
        results: dict[str, list[dict]] = {k: [] for k in configs}
        resumed = []
        for _ in range(args.repeats):
            for i, (name, cfg) in enumerate(configs.items()):
                results[name].append(run_child(tmp, f"run{i}", clips, **cfg))
            resumed.append(
                run_child(tmp, "run2", clips, workers=2, models=models, keep_output=True)
            )
        done_cost = done_set_cost(tmp)
    load_after = os.getloadavg()

    rows = []
    for name, runs in [
        *list(results.items()),
        ("resumed run, all clips done (tiny models loaded)", resumed),
    ]:
        secs = statistics.median(r["seconds"] for r in runs)
        run_secs = statistics.median(r["run_seconds"] for r in runs)
        processed = runs[0]["processed"]
        rate = f"{processed / run_secs:.2f}" if processed else "-"
        rss = max(r["peak_rss_mib"] for r in runs)
        rows.append(f"| {name} | {secs:.1f} | {run_secs:.2f} | {processed} | {rate} | {rss:.0f} |")
    text = "\n".join(
        [
            "# cogvx-captioner benchmarks",
            "",
            f"CPU only (no GPU on this machine), 2 cores shared with other engineers: load average "
            f"{load_before[0]:.1f} before and {load_after[0]:.1f} after. {args.clips} synthetic clips of 49 frames at "
            f"240x360, 8 fps (a quarter static), median of {args.repeats} interleaved repeats, each run a fresh "
            "process (`cogvx caption run`, torch on 1 thread). 'main() s' is the command from argument parsing to exit (transformers import and model loading included, interpreter and torch import excluded); 'run s' is `CaptionPipeline.run` alone (the report's `this_run.seconds`).",
            "",
            "| configuration | main() s (incl. model loading) | run s (pipeline only) | clips processed | clips/s (pipeline) | peak RSS MiB |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Reading the done-set of a 100,000-line manifest (resume check): {done_cost:.2f} s.",
            "",
            "The tiny models (ViT-GPT2 2-layer captioner, 2-layer Llama summariser, random weights) measure the "
            "pipeline's own cost; a real captioner's speed is set by the model. `benchmarks/captioner_bench.py` "
            "reproduces these numbers.",
            "",
        ]
    )
    print(text)
    if args.write:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "captioner.md").write_text(text)


if __name__ == "__main__":
    main()
