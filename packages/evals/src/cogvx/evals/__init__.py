"""cogvx.evals: VBench-style evaluators, CogVideoX metrics, reconstruction/distribution metrics."""

from cogvx.evals.flow import DISFlow, FarnebackFlow, FlowBackend, RAFTFlow, RAFTUnavailableError
from cogvx.evals.metrics import (
    adjacent_frame_l1,
    adjacent_frame_l1_per_pair,
    lpips,
    psnr,
    psnr_per_frame,
    ssim,
    ssim_per_frame,
)

__all__ = [
    "DISFlow",
    "FarnebackFlow",
    "FlowBackend",
    "RAFTFlow",
    "RAFTUnavailableError",
    "adjacent_frame_l1",
    "adjacent_frame_l1_per_pair",
    "lpips",
    "psnr",
    "psnr_per_frame",
    "ssim",
    "ssim_per_frame",
]
