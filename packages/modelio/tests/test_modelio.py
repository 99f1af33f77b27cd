"""The model-I/O layer: round trips, sharding, strict checks and every error naming its file."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

from cogvx.modelio import (
    atomic_write,
    check_state_dict,
    find_weights,
    load_checked,
    parse_size,
    read_config,
    read_state_dict,
    resolve_model_folder,
    write_config,
    write_state_dict,
)
from cogvx.modelio.fields import check_bool, check_choice, check_float, check_int, check_int_tuple


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "a.weight": torch.randn(8, 4, generator=g),
        "a.bias": torch.randn(8, generator=g),
        "b.weight": torch.randn(16, 8, generator=g),
        "steps": torch.tensor([3], dtype=torch.long),
    }


def test_single_file_round_trip_and_dtype(tmp_path):
    state = _state()
    written = write_state_dict(tmp_path, state)
    assert [p.name for p in written] == ["diffusion_pytorch_model.safetensors"]
    back = read_state_dict(tmp_path, dtype=torch.bfloat16)
    assert back.keys() == state.keys()
    assert back["a.weight"].dtype == torch.bfloat16 and back["steps"].dtype == torch.long
    assert torch.equal(back["b.weight"].float(), state["b.weight"].bfloat16().float())


def test_sharded_round_trip_index_layout_and_stale_files(tmp_path):
    state = _state()
    written = write_state_dict(tmp_path, state, max_shard_size=200)
    index = tmp_path / "diffusion_pytorch_model.safetensors.index.json"
    assert index in written and len(written) >= 3
    data = json.loads(index.read_text())
    assert set(data["weight_map"]) == set(state)
    assert data["metadata"]["total_size"] == sum(
        t.numel() * t.element_size() for t in state.values()
    )
    assert find_weights(tmp_path) == index
    back = read_state_dict(tmp_path)
    assert all(torch.equal(back[k], state[k]) for k in state)
    # A later single-file save removes the shards and the index.
    write_state_dict(tmp_path, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diffusion_pytorch_model.safetensors"]


def test_keep_filter_and_variant(tmp_path):
    write_state_dict(tmp_path, _state(), variant="fp16")
    assert find_weights(tmp_path, "fp16").name == "diffusion_pytorch_model.fp16.safetensors"
    back = read_state_dict(tmp_path, variant="fp16", keep=lambda k: k.startswith("a."))
    assert sorted(back) == ["a.bias", "a.weight"]
    with pytest.raises(FileNotFoundError, match="pass variant"):
        find_weights(tmp_path)
    with pytest.raises(ValueError, match="variant="):
        find_weights(tmp_path, "../x")


def test_truncated_safetensors_names_the_file(tmp_path):
    write_state_dict(tmp_path, _state())
    file = tmp_path / "diffusion_pytorch_model.safetensors"
    file.write_bytes(file.read_bytes()[:-40])
    with pytest.raises(ValueError, match="truncated or corrupt") as err:
        read_state_dict(tmp_path)
    assert str(file) in str(err.value)
    file.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=re.escape(str(file))):
        read_state_dict(file)


def test_index_errors_name_the_index(tmp_path):
    write_state_dict(tmp_path, _state(), max_shard_size=200)
    index = tmp_path / "diffusion_pytorch_model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["ghost"] = "diffusion_pytorch_model-00001-of-00003.safetensors"
    index.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="does not hold: ghost") as err:
        read_state_dict(tmp_path)
    assert str(index) in str(err.value)
    data["weight_map"] = {"a.weight": "missing.safetensors"}
    index.write_text(json.dumps(data))
    with pytest.raises(FileNotFoundError, match=r"missing\.safetensors"):
        read_state_dict(tmp_path)
    data["weight_map"] = {"a.weight": "../outside.safetensors"}
    index.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="plain file names"):
        read_state_dict(tmp_path)
    index.write_text("{broken")
    with pytest.raises(ValueError, match="not valid") as err:
        read_state_dict(tmp_path)
    assert str(index) in str(err.value)


def test_duplicate_key_across_shards(tmp_path):
    save_file({"a": torch.zeros(2)}, str(tmp_path / "s1.safetensors"))
    save_file({"a": torch.ones(2)}, str(tmp_path / "s2.safetensors"))
    (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})
    )
    with pytest.raises(ValueError, match="already read from another shard"):
        read_state_dict(tmp_path)


def test_check_state_dict_lists_every_problem():
    expected = {"a": (2, 3), "b": (4,), "c": (1,)}
    state = {"a": torch.zeros(3, 2), "b": torch.zeros(4), "x": torch.zeros(1)}
    with pytest.raises(ValueError) as err:
        check_state_dict(state, expected, source="/some/folder", what="Net")
    msg = str(err.value)
    assert "/some/folder" in msg and "Net" in msg
    assert "missing keys (1): c" in msg and "unexpected keys (1): x" in msg
    assert "a: checkpoint (3, 2) vs model (2, 3)" in msg


def test_load_checked_on_meta_and_real_modules(tmp_path):
    net = nn.Linear(4, 3)
    write_state_dict(tmp_path, net.state_dict())
    state = read_state_dict(tmp_path)
    with torch.device("meta"):
        meta_net = nn.Linear(4, 3)
    load_checked(meta_net, state, source=str(tmp_path), dtype=torch.float64)
    assert meta_net.weight.dtype == torch.float64 and not meta_net.weight.is_meta
    real = nn.Linear(4, 3)
    load_checked(real, state, source=str(tmp_path))
    assert torch.equal(real.weight, net.weight)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        load_checked(nn.Linear(4, 5), state, source=str(tmp_path))


def test_bin_weights_only(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "diffusion_pytorch_model.bin")
    assert torch.equal(read_state_dict(tmp_path)["w"], torch.ones(2))
    (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"\x80garbage")
    with pytest.raises(ValueError, match="weights_only"):
        read_state_dict(tmp_path)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    with pytest.raises(IsADirectoryError):
        write_config(tmp_path, {})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_config(tmp_path / "no" / "config.json", {})


def test_config_read_write(tmp_path):
    path = tmp_path / "config.json"
    write_config(path, {"_class_name": "X", "a": [1, 2], "b": 0.5})
    assert read_config(path) == {"_class_name": "X", "a": [1, 2], "b": 0.5}
    with pytest.raises(ValueError, match="not finite"):
        write_config(path, {"a": math.nan})
    for text in ("[1, 2]", "{", '{"a": NaN}', "\xff"):
        path.write_bytes(text.encode("latin-1"))
        with pytest.raises(ValueError, match=re.escape(str(path))):
            read_config(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_config(tmp_path / "none.json")


def test_resolve_model_folder(tmp_path):
    (tmp_path / "transformer").mkdir()
    write_config(tmp_path / "transformer" / "config.json", {})
    assert (
        resolve_model_folder(tmp_path, default_subfolder="transformer") == tmp_path / "transformer"
    )
    assert resolve_model_folder(tmp_path, "transformer") == tmp_path / "transformer"
    with pytest.raises(FileNotFoundError, match="subfolder='vae'"):
        resolve_model_folder(tmp_path, "vae")
    with pytest.raises(FileNotFoundError, match="looked for"):
        resolve_model_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_model_folder(tmp_path / "nope")


@pytest.mark.parametrize(
    ("size", "expected"), [(1000, 1000), ("1KB", 1000), ("2KiB", 2048), (" 1.5 mb ", 1_500_000)]
)
def test_parse_size(size, expected):
    assert parse_size(size) == expected


@pytest.mark.parametrize(
    ("size", "error"),
    [
        (0, ValueError),
        ("-1GB", ValueError),
        ("ten", ValueError),
        (True, TypeError),
        (1.5, TypeError),
    ],
)
def test_parse_size_refuses(size, error):
    with pytest.raises(error, match="max_shard_size"):
        parse_size(size)


@pytest.mark.parametrize(
    ("check", "value", "error"),
    [
        (lambda v: check_int("C", "n", v, minimum=1), 0, ValueError),
        (lambda v: check_int("C", "n", v, minimum=1), True, TypeError),
        (lambda v: check_int("C", "n", v, minimum=1), 2.0, TypeError),
        (lambda v: check_float("C", "n", v, minimum=0, exclusive_minimum=True), 0.0, ValueError),
        (lambda v: check_float("C", "n", v), math.inf, ValueError),
        (lambda v: check_float("C", "n", v), "1", TypeError),
        (lambda v: check_bool("C", "n", v), 1, TypeError),
        (lambda v: check_choice("C", "n", v, ("a", "b")), "c", ValueError),
        (lambda v: check_choice("C", "n", v, ("a", "b")), ["a"], TypeError),
        (lambda v: check_int_tuple("C", "n", v, minimum=1), [1, 0], ValueError),
        (lambda v: check_int_tuple("C", "n", v), "12", TypeError),
    ],
)
def test_field_checks_name_key_and_value(check, value, error):
    with pytest.raises(error, match=r"^C\.n="):
        check(value)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_weight_files_fail_cleanly(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(data)
    try:
        read_state_dict(folder)
    except ValueError as err:
        assert str(folder) in str(err)


def test_atomic_write_temp_name_keeps_suffix_and_parents(tmp_path):
    target = tmp_path / "a" / "b" / "clip.mp4"
    with pytest.raises(FileNotFoundError, match="does not exist"), atomic_write(target):
        pass
    with atomic_write(target, parents=True) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".clip.")
        assert tmp.name.endswith(".partial.mp4")
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"
    assert sorted(p.name for p in target.parent.iterdir()) == ["clip.mp4"]
