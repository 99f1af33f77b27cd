"""The workspace's one dtype parser."""

from __future__ import annotations

import pytest
import torch

from cogvx.modelio import DTYPE_NAMES, dtype_name, parse_dtype


@pytest.mark.parametrize(
    ("text", "dtype"),
    [
        ("fp32", torch.float32),
        ("float32", torch.float32),
        ("BF16", torch.bfloat16),
        (" bfloat16 ", torch.bfloat16),
        ("fp16", torch.float16),
        ("float16", torch.float16),
        (torch.bfloat16, torch.bfloat16),
    ],
)
def test_names(text, dtype):
    assert parse_dtype(text) == dtype


def test_canonical_names_round_trip():
    for name in DTYPE_NAMES:
        assert dtype_name(parse_dtype(name)) == name


def test_auto_only_where_allowed():
    assert parse_dtype("auto", allow_auto=True) is None
    assert parse_dtype(None, allow_auto=True) is None
    with pytest.raises(ValueError, match=r"^dtype='auto': expected one of fp32"):
        parse_dtype("auto")


@pytest.mark.parametrize("bad", ["int8", "", "fp64", None, 16, torch.int64, torch.float64])
def test_refusals_name_the_parameter(bad):
    with pytest.raises(ValueError, match=r"^--dtype="):
        parse_dtype(bad, parameter="--dtype")
    with pytest.raises(ValueError, match="expected one of"):
        parse_dtype(bad, parameter="--dtype", allow_auto=bad is not None)  # auto allowed, still bad


def test_dtype_name_refuses_others():
    with pytest.raises(ValueError, match=r"dtype=torch\.int64"):
        dtype_name(torch.int64)
