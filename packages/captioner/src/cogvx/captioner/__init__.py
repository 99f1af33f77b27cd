"""cogvx.captioner: the CogVideoX data pipeline (paper §3.4, App. F, G, K).

- Filtering: :class:`ClipFilter` with thresholds in :class:`FilterConfig` (motion from
  :mod:`cogvx.evals.flow`, aesthetic score, negative-label classifiers, text dominance, cuts).
- Shot splitting: :func:`split_shots` (histogram-difference cuts).
- Dense captioning: :class:`DenseCaptioner` = :class:`TransformersImageCaptioner` on frames
  every 2 s + :class:`Summarizer` on a chat model, with the caption rules of
  :func:`clean_caption`.
- :class:`CaptionPipeline`: a folder -> data manifest, resumable, sharded, with rejects and a report.
- Prompt upsampling: :func:`upsample_prompt` / :class:`PromptUpsampler`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time __getattr__ imports them
    from cogvx.captioner.aesthetic import (
        AestheticScorer,
        ClipAestheticScorer,
        load_aesthetic_head,
    )
    from cogvx.captioner.chat import (
        ChatBackend,
        EndpointChatModel,
        LocalChatModel,
    )
    from cogvx.captioner.classifiers import (
        ClassifierHead,
        FrameFeatureExtractor,
        HandcraftedFeatures,
        HeadClassifier,
        NegativeLabel,
        TransformersImageFeatures,
        VideoClassifier,
        clip_features,
        train_head,
    )
    from cogvx.captioner.dense import (
        CaptionResult,
        ClipCaptioner,
        DenseCaptioner,
        ImageCaptioner,
        Summarizer,
        TransformersImageCaptioner,
        summary_messages,
    )
    from cogvx.captioner.filters import (
        ClipFilter,
        FilterConfig,
        FilterResult,
    )
    from cogvx.captioner.pipeline import (
        CaptionConfig,
        CaptionPipeline,
        build_report,
        collect_inputs,
        merge_parts,
        shard,
    )
    from cogvx.captioner.rules import (
        CleanText,
        clean_caption,
        limit_words,
        remove_opener,
    )
    from cogvx.captioner.scores import (
        motion_pairs,
        motion_scores,
        text_dominance,
    )
    from cogvx.captioner.shots import (
        Shot,
        detect_cuts,
        split_shots,
    )
    from cogvx.captioner.upsample import (
        PromptUpsampler,
        UpsampleConfig,
        UpsampleResult,
        upsample_messages,
        upsample_prompt,
    )

# Public name -> submodule, imported on first use: `import cogvx.captioner` (and each CLI's --help) stays
# free of torch and the model backends until a name is used.
_EXPORTS: dict[str, str] = {
    "AestheticScorer": "aesthetic",
    "ClipAestheticScorer": "aesthetic",
    "load_aesthetic_head": "aesthetic",
    "ChatBackend": "chat",
    "EndpointChatModel": "chat",
    "LocalChatModel": "chat",
    "ClassifierHead": "classifiers",
    "FrameFeatureExtractor": "classifiers",
    "HandcraftedFeatures": "classifiers",
    "HeadClassifier": "classifiers",
    "NegativeLabel": "classifiers",
    "TransformersImageFeatures": "classifiers",
    "VideoClassifier": "classifiers",
    "clip_features": "classifiers",
    "train_head": "classifiers",
    "CaptionResult": "dense",
    "ClipCaptioner": "dense",
    "DenseCaptioner": "dense",
    "ImageCaptioner": "dense",
    "Summarizer": "dense",
    "TransformersImageCaptioner": "dense",
    "summary_messages": "dense",
    "ClipFilter": "filters",
    "FilterConfig": "filters",
    "FilterResult": "filters",
    "CaptionConfig": "pipeline",
    "CaptionPipeline": "pipeline",
    "build_report": "pipeline",
    "collect_inputs": "pipeline",
    "merge_parts": "pipeline",
    "shard": "pipeline",
    "CleanText": "rules",
    "clean_caption": "rules",
    "limit_words": "rules",
    "remove_opener": "rules",
    "motion_pairs": "scores",
    "motion_scores": "scores",
    "text_dominance": "scores",
    "Shot": "shots",
    "detect_cuts": "shots",
    "split_shots": "shots",
    "PromptUpsampler": "upsample",
    "UpsampleConfig": "upsample",
    "UpsampleResult": "upsample",
    "upsample_messages": "upsample",
    "upsample_prompt": "upsample",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cogvx.captioner' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cogvx.captioner.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AestheticScorer",
    "CaptionConfig",
    "CaptionPipeline",
    "CaptionResult",
    "ChatBackend",
    "ClassifierHead",
    "CleanText",
    "ClipAestheticScorer",
    "ClipCaptioner",
    "ClipFilter",
    "DenseCaptioner",
    "EndpointChatModel",
    "FilterConfig",
    "FilterResult",
    "FrameFeatureExtractor",
    "HandcraftedFeatures",
    "HeadClassifier",
    "ImageCaptioner",
    "LocalChatModel",
    "NegativeLabel",
    "PromptUpsampler",
    "Shot",
    "Summarizer",
    "TransformersImageCaptioner",
    "TransformersImageFeatures",
    "UpsampleConfig",
    "UpsampleResult",
    "VideoClassifier",
    "build_report",
    "clean_caption",
    "clip_features",
    "collect_inputs",
    "detect_cuts",
    "limit_words",
    "load_aesthetic_head",
    "merge_parts",
    "motion_pairs",
    "motion_scores",
    "remove_opener",
    "shard",
    "split_shots",
    "summary_messages",
    "text_dominance",
    "train_head",
    "upsample_messages",
    "upsample_prompt",
]
