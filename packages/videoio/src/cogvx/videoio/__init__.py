"""cogvx.videoio: video and image files (PyAV), frame sampling, and the cogvx data manifest."""

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
from cogvx.videoio.tensors import frames_to_tensor, sample_frame_indices, tensor_to_frames

__all__ = [
    "IMAGE_SUFFIXES",
    "PARTIAL_MARKER",
    "VIDEO_SUFFIXES",
    "WRITABLE_VIDEO_SUFFIXES",
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
    "probe_video",
    "read_image",
    "read_manifest",
    "read_video",
    "resolve_path",
    "sample_frame_indices",
    "scan_manifest",
    "tensor_to_frames",
    "write_image",
    "write_video",
]
