"""cogvx.videoio: video and image files (PyAV), frame sampling, and the cogvx data manifest."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time __getattr__ imports them
    from cogvx.videoio.files import (
        Video,
        VideoInfo,
        VideoReadError,
        atomic_output,
        export_to_video,
        probe_video,
        read_image,
        read_video,
        write_image,
        write_video,
    )
    from cogvx.videoio.jsonl import (
        QUARANTINE_SUFFIX,
        JsonlAppender,
        JsonlError,
        JsonlProblem,
        iter_jsonl,
        quarantine_path,
        read_jsonl,
        repair_jsonl,
    )
    from cogvx.videoio.manifest import (
        ManifestError,
        ManifestRecord,
        ManifestWriter,
        read_manifest,
        resolve_path,
        scan_manifest,
    )
    from cogvx.videoio.paths import (
        IMAGE_SUFFIXES,
        PARTIAL_MARKER,
        VIDEO_SUFFIXES,
        WRITABLE_VIDEO_SUFFIXES,
        collect_media,
        is_image_path,
        is_partial_output,
        is_video_path,
    )
    from cogvx.videoio.tensors import (
        frames_to_tensor,
        sample_frame_indices,
        tensor_to_frames,
    )

# Public name -> submodule, imported on first use: `import cogvx.videoio` (and each CLI's --help) stays
# free of torch and the model backends until a name is used.
_EXPORTS: dict[str, str] = {
    "Video": "files",
    "VideoInfo": "files",
    "VideoReadError": "files",
    "atomic_output": "files",
    "export_to_video": "files",
    "probe_video": "files",
    "read_image": "files",
    "read_video": "files",
    "write_image": "files",
    "write_video": "files",
    "QUARANTINE_SUFFIX": "jsonl",
    "JsonlAppender": "jsonl",
    "JsonlError": "jsonl",
    "JsonlProblem": "jsonl",
    "iter_jsonl": "jsonl",
    "quarantine_path": "jsonl",
    "read_jsonl": "jsonl",
    "repair_jsonl": "jsonl",
    "ManifestError": "manifest",
    "ManifestRecord": "manifest",
    "ManifestWriter": "manifest",
    "read_manifest": "manifest",
    "resolve_path": "manifest",
    "scan_manifest": "manifest",
    "IMAGE_SUFFIXES": "paths",
    "PARTIAL_MARKER": "paths",
    "VIDEO_SUFFIXES": "paths",
    "WRITABLE_VIDEO_SUFFIXES": "paths",
    "collect_media": "paths",
    "is_image_path": "paths",
    "is_partial_output": "paths",
    "is_video_path": "paths",
    "frames_to_tensor": "tensors",
    "sample_frame_indices": "tensors",
    "tensor_to_frames": "tensors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cogvx.videoio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cogvx.videoio.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "IMAGE_SUFFIXES",
    "PARTIAL_MARKER",
    "QUARANTINE_SUFFIX",
    "VIDEO_SUFFIXES",
    "WRITABLE_VIDEO_SUFFIXES",
    "JsonlAppender",
    "JsonlError",
    "JsonlProblem",
    "ManifestError",
    "ManifestRecord",
    "ManifestWriter",
    "Video",
    "VideoInfo",
    "VideoReadError",
    "atomic_output",
    "collect_media",
    "export_to_video",
    "frames_to_tensor",
    "is_image_path",
    "is_partial_output",
    "is_video_path",
    "iter_jsonl",
    "probe_video",
    "quarantine_path",
    "read_image",
    "read_jsonl",
    "read_manifest",
    "read_video",
    "repair_jsonl",
    "resolve_path",
    "sample_frame_indices",
    "scan_manifest",
    "tensor_to_frames",
    "write_image",
    "write_video",
]
