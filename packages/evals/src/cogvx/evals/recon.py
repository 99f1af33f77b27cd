"""Reconstruction metrics over pairs of videos (e.g. VAE output vs input): PSNR, SSIM,
adjacent-frame flicker and optional LPIPS, reported per pair like the other evaluators.

Pairs must have the same frame count and size; a mismatch is that pair's error (nothing is
truncated or resized to make it fit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from cogvx.evals import metrics
from cogvx.evals.results import Aggregation, DimensionResult, Status, VideoScore, aggregate
from cogvx.evals.samples import VideoSample

__all__ = ["RECON_METRICS", "evaluate_pairs"]

RECON_METRICS = ("psnr", "ssim", "flicker_l1", "flicker_l1_reference", "lpips")

_META = {
    "psnr": {
        "reference": "mean over frames of per-frame PSNR (dB), data_range 1",
        "display_scale": 1.0,
        "unit": "dB",
    },
    "ssim": {
        "reference": "Wang 2004, Gaussian 11x11 sigma 1.5, valid region, frames and channels averaged",
        "display_scale": 1.0,
    },
    "flicker_l1": {
        "reference": "CogVideoX Table 1 'Flickering': mean |x[t+1]-x[t]| of the reconstruction, pixels in [0,1] (scale of the paper unspecified)",
        "display_scale": 1.0,
    },
    "flicker_l1_reference": {
        "reference": "same flicker measure on the reference video",
        "display_scale": 1.0,
    },
    "lpips": {"reference": "LPIPS with the given network, mean over frames", "display_scale": 1.0},
}


def evaluate_pairs(
    pairs: Sequence[tuple[VideoSample, VideoSample]],
    *,
    lpips_net: Callable | None = None,
    progress: bool = True,
) -> dict[str, DimensionResult]:
    """Score ``(reconstruction, reference)`` pairs; returns one result per metric."""
    names = [m for m in RECON_METRICS if m != "lpips" or lpips_net is not None]
    per: dict[str, list[VideoScore]] = {m: [] for m in names}
    for pred_s, ref_s in tqdm(pairs, desc="pairs", unit="pair", disable=not progress):
        name = pred_s.name
        try:
            pred, ref = pred_s.load().require_frames(), ref_s.load().require_frames()
            if pred.shape != ref.shape:
                raise ValueError(
                    f"{pred_s.name!r} has shape {pred.shape} [T,H,W,3] but its reference {ref_s.name!r} has {ref.shape}"
                )
            p, r = pred.astype(np.float64) / 255.0, ref.astype(np.float64) / 255.0
            values = {"psnr": metrics.psnr(p, r), "ssim": metrics.ssim(p, r)}
            if len(p) >= 2:
                values["flicker_l1"] = metrics.adjacent_frame_l1(p)
                values["flicker_l1_reference"] = metrics.adjacent_frame_l1(r)
            if lpips_net is not None:
                values["lpips"] = float(np.mean(metrics.lpips(p, r, lpips_net)))
        except Exception as exc:  # one bad pair is reported, the rest go on
            for m in names:
                per[m].append(VideoScore.error(name, f"{type(exc).__name__}: {exc}"))
            continue
        for m in names:
            if m in values:
                per[m].append(VideoScore(name, float(values[m]), details={"reference": ref_s.name}))
            else:
                per[m].append(VideoScore.skipped(name, "needs at least 2 frames"))
    out = {}
    for m in names:
        value = aggregate(per[m], Aggregation.VIDEO_MEAN)
        md = {
            "backend": "none"
            if m != "lpips"
            else getattr(lpips_net, "name", type(lpips_net).__name__),
            "approximate": False,
            "frames": "all",
            "aggregation": "video_mean",
            **_META[m],
        }
        status = Status.OK if value is not None else Status.ERROR
        out[m] = DimensionResult(
            m, value, status, per[m], md, None if value is not None else "no pair could be scored"
        )
    return out
