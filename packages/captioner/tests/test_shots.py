import numpy as np
import pytest

from cogvx.captioner.shots import Shot, detect_cuts, shots_from_cuts, split_shots
from cogvx.videoio import probe_video


def _two_scenes(synth, n1=12, n2=10):
    a = synth.moving(n1, speed=2.0)
    b = 255 - synth.moving(n2, speed=2.0, seed=3)[:, :, ::-1]  # different colours and layout
    return np.concatenate([a, b])


def test_detect_cuts_finds_the_scene_change(synth):
    frames = _two_scenes(synth)
    assert detect_cuts(frames) == [12]
    assert detect_cuts(synth.moving(20, speed=4.0)) == []  # motion inside one shot is not a cut
    with pytest.raises(ValueError, match="threshold"):
        detect_cuts(frames, threshold=1.5)


def test_shots_from_cuts():
    assert shots_from_cuts(10, [4]) == [Shot(0, 4), Shot(4, 10)]
    assert shots_from_cuts(10, [4], min_frames=5) == [Shot(4, 10)]
    assert shots_from_cuts(10, [], max_frames=4) == [Shot(0, 4), Shot(4, 8), Shot(8, 10)]
    assert shots_from_cuts(10, [0, 10, 4, 4]) == [Shot(0, 4), Shot(4, 10)]


def test_split_shots_writes_clips_and_resumes(synth, tmp_path):
    src = synth.write(tmp_path / "long.mp4", _two_scenes(synth, 16, 16), fps=8.0)
    out = tmp_path / "shots"
    paths = split_shots(src, out, min_seconds=1.0, max_seconds=None, window=7)
    assert [p.name for p in paths] == ["long.shot000.mp4", "long.shot001.mp4"]
    assert [probe_video(p).num_frames for p in paths] == [16, 16]
    mtimes = [p.stat().st_mtime_ns for p in paths]
    assert split_shots(src, out, min_seconds=1.0, max_seconds=None) == paths
    assert [p.stat().st_mtime_ns for p in paths] == mtimes  # not rewritten
