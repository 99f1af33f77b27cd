"""JSON Lines: file:line in every refusal, skip-and-count or stop by policy, torn and malformed
lines quarantined on resume; hypothesis fuzzing of manifest contents."""

from __future__ import annotations

import io
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogvx.videoio import (
    JsonlAppender,
    JsonlError,
    ManifestError,
    ManifestWriter,
    iter_jsonl,
    quarantine_path,
    read_jsonl,
    read_manifest,
    repair_jsonl,
    scan_manifest,
)

GOOD = {"path": "a.mp4", "caption": "c", "type": "video", "frames": 9, "height": 8, "width": 8}
GOOD_LINE = json.dumps({**GOOD, "fps": 8.0})


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b'{"a": 1}\n{not json}\n', 2, "not valid JSON"),
        (b'{"a": 1}\n\n[1, 2]\n', 3, "expected a JSON object, got list"),
        (b'"text"\n', 1, "expected a JSON object, got str"),
        (b'{"a": 1}\n\xff\xfe{}\n', 2, "not UTF-8 text"),
        (b'{"a": 1}\n{"b": ', 2, "torn last line"),
        (b"null\n", 1, "expected a JSON object, got NoneType"),
    ],
)
def test_raise_policy_names_file_and_line(tmp_path, content, line, reason):
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    with pytest.raises(JsonlError, match=rf"f\.jsonl:{line}: {reason}") as info:
        list(iter_jsonl(path))
    assert info.value.problem.line == line
    rows, problems = read_jsonl(path, policy="skip")
    assert [(p.line, reason in p.reason) for p in problems] == [(line, True)]
    assert rows == ([{"a": 1}] if content.startswith(b'{"a": 1}') else [])


def test_check_refusal_is_reported_at_its_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"path": "a"}\n{"kind": "error"}\n')

    def needs_path(obj):
        if not isinstance(obj.get("path"), str):
            raise ValueError('row has no "path"')

    with pytest.raises(JsonlError, match=r'r\.jsonl:2: row has no "path"'):
        read_jsonl(path, check=needs_path)


def test_missing_file_and_bad_policy(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl: no such file"):
        read_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "a.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="policy='ignore'"):
        read_jsonl(tmp_path / "a.jsonl", policy="ignore")  # type: ignore[arg-type]


def test_repair_quarantines_bad_lines_and_keeps_the_rest(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"i": 1}\n{broken\n{"i": 3}\n{"i": 4, "tor')
    with JsonlAppender(path) as out:
        assert [(p.line, p.reason.split(" (")[0]) for p in out.repaired] == [
            (2, "not valid JSON"),
            (4, "torn last line"),
        ]
        out.write({"i": 5})
    assert [o["i"] for o in read_jsonl(path)[0]] == [1, 3, 5]
    side = [json.loads(x) for x in quarantine_path(path).read_text().splitlines()]
    assert [(s["line"], s["text"]) for s in side] == [(2, "{broken\n"), (4, '{"i": 4, "tor')]
    assert repair_jsonl(path) == []  # already clean: nothing moves again


def test_repair_adds_a_missing_final_newline(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"i": 1}')
    with JsonlAppender(path) as out:
        assert out.repaired == []
        out.write({"i": 2})
    assert [o["i"] for o in read_jsonl(path)[0]] == [1, 2]
    assert not quarantine_path(path).exists()


def test_appender_refuses_a_folder_and_nan(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        JsonlAppender(tmp_path)
    with JsonlAppender(tmp_path / "x.jsonl") as out, pytest.raises(ValueError):
        out.write({"score": math.nan})


def test_manifest_writer_quarantines_invalid_records(tmp_path):
    path = tmp_path / "m.jsonl"
    bad = json.dumps({**GOOD, "path": "b.mp4", "fps": 8, "frames": 0})
    path.write_text(GOOD_LINE + "\n" + bad + "\n")
    with ManifestWriter(path) as w:
        assert [(p.line, "frames must be" in p.reason) for p in w.repaired] == [(2, True)]
        assert w.done_paths() == {"a.mp4"}
    assert [r.path for r in read_manifest(path)] == ["a.mp4"]


# ------------------------------------------------------------------------------------ fuzzing
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_field_values = {
    "path": st.text(max_size=6) | _json,
    "caption": st.text(max_size=6) | _json,
    "type": st.sampled_from(["video", "image", "gif"]) | _json,
    "frames": st.integers(-2, 50) | _json,
    "height": st.integers(-2, 50) | _json,
    "width": st.integers(-2, 50) | _json,
    "fps": st.floats(allow_nan=True, allow_infinity=True) | st.none() | _json,
    "scores": st.dictionaries(st.text(max_size=3), st.floats() | _json, max_size=2) | _json,
    "tags": st.lists(st.text(max_size=3), max_size=2) | _json,
}


@st.composite
def _record_like(draw):
    rec = {**GOOD, "fps": 8.0}
    for key in draw(st.sets(st.sampled_from(sorted(_field_values)), max_size=3)):
        if draw(st.booleans()):
            rec.pop(key, None)
        else:
            rec[key] = draw(_field_values[key])
    return json.dumps(rec).encode()


_line = st.one_of(
    _record_like(),
    _json.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=20).map(lambda t: t.replace("\n", "").replace("\r", "").encode()),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(_line, max_size=8), torn=st.booleans())
def test_fuzzed_manifests_never_crash(tmp_path_factory, lines, torn):
    path = tmp_path_factory.mktemp("fuzz") / "m.jsonl"
    data = b"\n".join(lines) + (b"" if torn or not lines else b"\n")
    path.write_bytes(data)
    records, invalid = scan_manifest(path)
    # every non-blank line is either a record or a listed problem
    physical = [ln for ln in io.BytesIO(data).readlines() if ln.strip()]
    assert len(records) + len(invalid) == len(physical)
    try:
        assert read_manifest(path) == records
        assert not invalid
    except ManifestError as e:
        message = str(e)
        assert "\n" not in message
        assert message.startswith(f"{path}:{invalid[0][0]}: ")
    with ManifestWriter(path) as w:
        assert len(w.repaired) == len(invalid)
        assert len(w.done_paths()) == len({r.path for r in records})
        w.write({**GOOD, "path": "new.mp4", "fps": 8.0})
    after = read_manifest(path)  # repaired: every line valid now
    assert [r.path for r in after] == [r.path for r in records] + ["new.mp4"]
