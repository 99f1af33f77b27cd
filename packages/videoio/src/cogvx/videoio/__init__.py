"""cogvx.videoio: video and image files (PyAV), frame sampling, and the cogvx data manifest."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

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

# Submodule -> its public names, imported on first use (lazy_loader.attach, PEP 562): `import cogvx.videoio` (and each CLI's --help) stays
# free of torch and the model backends until a name is used.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "files": [
            "Video",
            "VideoInfo",
            "VideoReadError",
            "atomic_output",
            "export_to_video",
            "probe_video",
            "read_image",
            "read_video",
            "write_image",
            "write_video",
        ],
        "jsonl": [
            "JsonlAppender",
            "JsonlError",
            "JsonlProblem",
            "QUARANTINE_SUFFIX",
            "iter_jsonl",
            "quarantine_path",
            "read_jsonl",
            "repair_jsonl",
        ],
        "manifest": [
            "ManifestError",
            "ManifestRecord",
            "ManifestWriter",
            "read_manifest",
            "resolve_path",
            "scan_manifest",
        ],
        "paths": [
            "IMAGE_SUFFIXES",
            "PARTIAL_MARKER",
            "VIDEO_SUFFIXES",
            "WRITABLE_VIDEO_SUFFIXES",
            "collect_media",
            "is_image_path",
            "is_partial_output",
            "is_video_path",
        ],
        "tensors": ["frames_to_tensor", "sample_frame_indices", "tensor_to_frames"],
    },
)


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
