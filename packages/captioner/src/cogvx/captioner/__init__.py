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

from typing import TYPE_CHECKING

import lazy_loader

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

# Submodule -> its public names, imported on first use (lazy_loader.attach, PEP 562): `import cogvx.captioner` (and each CLI's --help) stays
# free of torch and the model backends until a name is used.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "aesthetic": ["AestheticScorer", "ClipAestheticScorer", "load_aesthetic_head"],
        "chat": ["ChatBackend", "EndpointChatModel", "LocalChatModel"],
        "classifiers": [
            "ClassifierHead",
            "FrameFeatureExtractor",
            "HandcraftedFeatures",
            "HeadClassifier",
            "NegativeLabel",
            "TransformersImageFeatures",
            "VideoClassifier",
            "clip_features",
            "train_head",
        ],
        "dense": [
            "CaptionResult",
            "ClipCaptioner",
            "DenseCaptioner",
            "ImageCaptioner",
            "Summarizer",
            "TransformersImageCaptioner",
            "summary_messages",
        ],
        "filters": ["ClipFilter", "FilterConfig", "FilterResult"],
        "pipeline": [
            "CaptionConfig",
            "CaptionPipeline",
            "build_report",
            "collect_inputs",
            "merge_parts",
            "shard",
        ],
        "rules": ["CleanText", "clean_caption", "limit_words", "remove_opener"],
        "scores": ["motion_pairs", "motion_scores", "text_dominance"],
        "shots": ["Shot", "detect_cuts", "split_shots"],
        "upsample": [
            "PromptUpsampler",
            "UpsampleConfig",
            "UpsampleResult",
            "upsample_messages",
            "upsample_prompt",
        ],
    },
)


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
