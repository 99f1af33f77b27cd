"""cogvx.videoio: video and image files (PyAV), frame sampling, and the cogvx data manifest."""

from cogvx.videoio.files import (
    Video,
    VideoInfo,
    VideoReadError,
    atomic_output,
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
from cogvx.videoio.tensors import frames_to_tensor, sample_frame_indices, tensor_to_frames

__all__ = [
    "ManifestError",
    "ManifestRecord",
    "ManifestWriter",
    "Video",
    "VideoInfo",
    "VideoReadError",
    "atomic_output",
    "frames_to_tensor",
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
