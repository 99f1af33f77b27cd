import json

import pytest

from cogvx.videoio import (
    ManifestError,
    ManifestRecord,
    ManifestWriter,
    read_manifest,
    resolve_path,
    scan_manifest,
)

GOOD = {
    "path": "clips/0001.mp4",
    "caption": "a cat",
    "type": "video",
    "frames": 49,
    "height": 480,
    "width": 720,
    "fps": 8.0,
    "scores": {"motion": 1.5},
    "tags": ["cat"],
}


def test_round_trip_keeps_unknown_keys(tmp_path):
    path = tmp_path / "m.jsonl"
    img = {
        "path": "/abs/img.png",
        "caption": "",
        "type": "image",
        "frames": 1,
        "height": 64,
        "width": 64,
        "source": "laion",
    }
    with ManifestWriter(path) as w:
        w.write(GOOD)
        w.write(ManifestRecord.from_dict(img))
    records = read_manifest(path)
    assert records[0].to_dict() == GOOD
    assert records[1].extra == {"source": "laion"} and records[1].fps is None
    assert resolve_path(path, records[0]) == tmp_path / "clips/0001.mp4"
    assert str(resolve_path(path, records[1])) == "/abs/img.png"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"type": "gif"}, "type must be one of"),
        ({"frames": 0}, "frames must be an integer >= 1"),
        ({"height": 4.5}, "height must be an integer"),
        ({"fps": -1}, "fps must be a finite number > 0"),
        ({"fps": None}, "needs fps"),
        ({"tags": "cat"}, "tags must be a list"),
        ({"path": ""}, "path must be a non-empty"),
    ],
)
def test_invalid_lines_name_the_line_and_field(tmp_path, change, match):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps({**GOOD, **change}) + "\n")
    with pytest.raises(ManifestError, match=rf"m\.jsonl:3: .*{match}"):
        read_manifest(path)


def test_missing_fields_and_bad_json(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"path": "a.mp4"}\n')
    with pytest.raises(ManifestError, match=r"m\.jsonl:1: missing required field"):
        read_manifest(path)
    path.write_text("{not json\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:1: not valid JSON"):
        read_manifest(path)
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path / "none.jsonl")


def test_writer_quarantines_a_torn_last_line_after_a_crash(tmp_path):
    path = tmp_path / "m.jsonl"
    torn = '{"path": "clips/0002.mp4", "capt'
    path.write_text(json.dumps(GOOD) + "\n" + torn)
    with ManifestWriter(path) as w:
        assert [(p.line, p.reason) for p in w.repaired] == [
            (2, "torn last line (an interrupted write)")
        ]
        assert w.done_paths() == {"clips/0001.mp4"}
        w.write({**GOOD, "path": "clips/0002.mp4"})
    assert [r.path for r in read_manifest(path)] == ["clips/0001.mp4", "clips/0002.mp4"]
    side = [json.loads(x) for x in (tmp_path / "m.jsonl.quarantine").read_text().splitlines()]
    assert side == [{"line": 2, "reason": "torn last line (an interrupted write)", "text": torn}]


def test_scan_lists_every_invalid_line_and_read_names_the_first(tmp_path):
    path = tmp_path / "m.jsonl"
    lines = [GOOD, {**GOOD, "frames": 0}, GOOD, {**GOOD, "type": "gif"}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    records, invalid = scan_manifest(path)
    assert len(records) == 2
    assert [n for n, _ in invalid] == [2, 4] and "type must be one of" in invalid[1][1]
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: frames .* \(and 1 more invalid lines\)"):
        read_manifest(path)
