"""The text-, image- and video-to-video pipelines, and the builder the Hydra configs instantiate.

``base`` holds the one sampling template (diffusers ``CogVideoXPipeline.__call__``, step for step)
with the task hooks; ``text_to_video``, ``image_to_video``, ``video_to_video`` supply the hooks;
``call`` is what a call takes and returns; ``components`` the model components and folder loaders;
``processing`` turns images and videos into pixels and frames into outputs. The tasks themselves are
listed once, in :data:`cogvx.infer.tasks.TASKS`.
"""

from __future__ import annotations

import os

import torch

from cogvx.infer.model_folder import ModelFolder, VAEInfo
from cogvx.infer.pipelines.base import VideoPipeline
from cogvx.infer.pipelines.call import (
    CALLBACK_TENSOR_INPUTS,
    CallOptions,
    VideoPipelineOutput,
)
from cogvx.infer.pipelines.image_to_video import ImageToVideoPipeline
from cogvx.infer.pipelines.processing import (
    postprocess,
    preprocess_images,
    preprocess_video,
    write_videos,
)
from cogvx.infer.pipelines.text_to_video import TextToVideoPipeline
from cogvx.infer.pipelines.video_to_video import VideoToVideoPipeline
from cogvx.infer.shapes import ShapeRules
from cogvx.infer.tasks import TASKS, get_task

__all__ = [
    "CALLBACK_TENSOR_INPUTS",
    "PIPELINES",
    "CallOptions",
    "ImageToVideoPipeline",
    "TextToVideoPipeline",
    "VAEInfo",
    "VideoPipeline",
    "VideoPipelineOutput",
    "VideoToVideoPipeline",
    "build_pipeline",
    "folder_shape_rules",
    "pipeline_class",
    "postprocess",
    "preprocess_images",
    "preprocess_video",
    "write_videos",
]

#: The pipeline class of each task of :data:`TASKS` (same keys).
PIPELINES: dict[str, type[VideoPipeline]] = {
    cls.task: cls for cls in (TextToVideoPipeline, ImageToVideoPipeline, VideoToVideoPipeline)
}
assert set(PIPELINES) == set(TASKS), "every task of cogvx.infer.tasks.TASKS has one pipeline"


def pipeline_class(task: str) -> type[VideoPipeline]:
    """The pipeline class of ``task`` (``t2v``/``i2v``/``v2v``)."""
    return PIPELINES[get_task(task).name]


def folder_shape_rules(model: str | os.PathLike[str]) -> ShapeRules:
    """The :class:`ShapeRules` of a model folder, read from its configs without loading weights."""
    return ModelFolder.open(model).shape_rules()


def build_pipeline(
    model: str | os.PathLike[str],
    *,
    task: str | None = None,
    sampler: str | None = None,
    dtype: str | None = "auto",
    device: str | None = "auto",
    residency: str = "resident",
) -> VideoPipeline:
    """Open ``model`` as the pipeline of ``task`` (default: the folder's own task from
    ``model_index.json``, else text-to-video). ``device="auto"``: CUDA when available, else the
    CPU. This is the builder the Hydra configs instantiate."""
    if task is None:
        task = ModelFolder.open(model).task or "t2v"
    cls = pipeline_class(task)
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return cls.from_pretrained(
        model, sampler=sampler, device=device, torch_dtype=dtype, residency=residency
    )
