"""Hypothesis fuzzing of a model folder's JSON files (docs/reliability.md §Model folders).

Whatever ``model_index.json`` or ``transformer/config.json`` holds, opening and checking the folder
either succeeds or raises one ``ValueError`` / ``TypeError`` / ``FileNotFoundError`` whose message
names the file it could not use: never another exception type, never a hang.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogvx.infer import ModelFolder

T2V = dict(name="t2v-rope-dpm", rope=True, sampler="dpm", tokenizer="json", snr_shift=1.0)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_class_names = st.sampled_from(
    ["CogVideoXPipeline", "CogVideoXImageToVideoPipeline", "StableDiffusionPipeline", "", "x"]
)


@pytest.fixture(scope="module")
def folder(make_folder) -> Path:
    return make_folder(T2V)


def _open_and_check(root: Path) -> None:
    try:
        ModelFolder.open(root).check("t2v")
    except (ValueError, TypeError, FileNotFoundError) as e:
        message = str(e)
        assert "\n" not in message.strip() or len(message) < 2000
        assert str(root) in message, f"the message does not name the folder/file: {message}"


def _mutated_copy(folder: Path, relative: str, text: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix="cogvx-fuzz-")) / "model"
    shutil.copytree(folder, root)
    (root / relative).write_text(text)
    return root


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.one_of(
        _json,
        st.dictionaries(st.text(max_size=8), _json, max_size=4).map(
            lambda d: {"_class_name": "CogVideoXPipeline", **d}
        ),
        st.builds(
            lambda c, d: {**d, "_class_name": c},
            _class_names | _scalars,
            st.dictionaries(
                st.sampled_from(["scheduler", "transformer", "vae", "text_encoder", "tokenizer"]),
                _json,
                max_size=3,
            ),
        ),
    )
)
def test_model_index_contents_never_crash(folder: Path, index) -> None:
    root = _mutated_copy(folder, "model_index.json", json.dumps(index))
    try:
        _open_and_check(root)
    finally:
        shutil.rmtree(root.parent)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(
        [
            "num_attention_heads",
            "attention_head_dim",
            "in_channels",
            "patch_size",
            "num_layers",
            "sample_frames",
            "text_embed_dim",
            "max_text_seq_length",
            "use_rotary_positional_embeddings",
        ]
    ),
    value=_json,
)
def test_transformer_config_values_never_crash(folder: Path, key: str, value) -> None:
    config = json.loads((folder / "transformer" / "config.json").read_text())
    config[key] = value
    root = _mutated_copy(folder, "transformer/config.json", json.dumps(config))
    try:
        _open_and_check(root)
    finally:
        shutil.rmtree(root.parent)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_model_index_bytes_never_crash(folder: Path, text: str) -> None:
    root = _mutated_copy(folder, "model_index.json", text)
    try:
        _open_and_check(root)
    finally:
        shutil.rmtree(root.parent)
