"""Text–video similarity dimensions: appearance style (CLIP), temporal style and overall
consistency (ViCLIP)."""

from __future__ import annotations

import numpy as np

from cogvx.evals.backends.protocols import TextImageModel, VideoTextModel
from cogvx.evals.evaluator import Evaluator
from cogvx.evals.results import Aggregation, VideoScore
from cogvx.evals.samples import VideoSample, middle_frame_indices

__all__ = ["AppearanceStyle", "OverallConsistency", "TemporalStyle"]


class AppearanceStyle(Evaluator):
    """Cosine between each frame's CLIP feature and the style text (VBench reads
    ``logits_per_text / 100``, i.e. the cosine for OpenAI CLIP's logit scale 100); frame-weighted.
    VBench preprocesses with ``clip_transform_Image`` (PIL resize): build the backend with
    ``CLIPBackend.with_pil_resize()``."""

    dimension = "appearance_style"
    reference = "VBench appearance_style.py (CLIP ViT-B/32, all frames)"
    aggregation = Aggregation.FRAME_WEIGHTED
    frames = "all"

    def __init__(self, clip: TextImageModel) -> None:
        self.clip = clip

    def _backend(self) -> object:
        return self.clip

    def score(self, video: VideoSample) -> VideoScore:
        style = self.aux(video)["appearance_style"]
        img = self.clip.embed_images(video.require_frames()).astype(np.float64)
        txt = self.clip.embed_texts([style])[0].astype(np.float64)
        sims = img @ txt
        return VideoScore.weighted(video.name, float(sims.sum()), len(sims), style=style)


class _VideoText(Evaluator):
    frames = "8 (VBench 'middle' sampling)"

    def __init__(self, model: VideoTextModel) -> None:
        self.model = model
        self.frames = f"{model.num_frames} (VBench 'middle' sampling)"

    def _backend(self) -> object:
        return self.model

    def score(self, video: VideoSample) -> VideoScore:
        if not video.prompt:
            raise LookupError(f"video {video.name!r}: {self.dimension} needs the prompt")
        frames = video.require_frames()
        clip = frames[middle_frame_indices(self.model.num_frames, len(frames))]
        v = np.asarray(self.model.embed_video(clip), np.float64)
        t = np.asarray(self.model.embed_texts([video.prompt])[0], np.float64)
        return VideoScore(video.name, float(v @ t))


class TemporalStyle(_VideoText):
    """Cosine of ViCLIP video and prompt embeddings; mean over videos."""

    dimension = "temporal_style"
    reference = "VBench temporal_style.py (ViCLIP-L/14, 8 frames)"


class OverallConsistency(_VideoText):
    """Cosine of ViCLIP video and prompt embeddings; mean over videos."""

    dimension = "overall_consistency"
    reference = "VBench overall_consistency.py (ViCLIP-L/14, 8 frames)"
