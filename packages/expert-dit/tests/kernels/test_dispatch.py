"""Backend selection, fallback, argument checks and the triton-free import.

Dispatch contract (cogvx.expert_dit.kernels.backend): innermost ``use_kernels``
> ``auto``; ``auto`` runs Triton only on capable CUDA devices; ``triton`` on CPU needs
``TRITON_INTERPRET=1`` and otherwise falls back to the reference with a one-time warning.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest
import torch

from cogvx.expert_dit.kernels import (
    KernelBackend,
    current_backend,
    expert_layernorm_modulate,
    gated_residual,
    reference,
    rope_qk,
    use_kernels,
)
from cogvx.expert_dit.kernels import backend as backend_module
from cogvx.expert_dit.kernels.backend import should_use_triton, triton_importable


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Forget which fallback warnings were already emitted (they are once per process)."""
    monkeypatch.setattr(backend_module, "_warned", set())


def _adaln_args(batch=2, seq=5, dim=12, text_len=2):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, seq, dim, generator=gen)
    mods = [torch.randn(batch, dim, generator=gen) for _ in range(4)]
    return (
        x,
        torch.randn(dim, generator=gen),
        torch.randn(dim, generator=gen),
        1e-5,
        text_len,
        *mods,
    )


def test_enum_values_and_str_behaviour():
    assert [b.value for b in KernelBackend] == ["torch", "triton", "auto"]
    assert KernelBackend.TRITON == "triton"
    assert isinstance(KernelBackend.AUTO, str)


def test_default_is_auto_and_no_environment_variable_changes_it(monkeypatch):
    monkeypatch.setenv("COGVX_KERNELS", "torch")  # the removed variable: ignored
    assert current_backend() is KernelBackend.AUTO


def test_context_nests_and_restores():
    with use_kernels("torch") as chosen:
        assert chosen is KernelBackend.TORCH
        with use_kernels(KernelBackend.AUTO):
            assert current_backend() is KernelBackend.AUTO
        assert current_backend() is KernelBackend.TORCH
    assert current_backend() is KernelBackend.AUTO
    with pytest.raises(ValueError, match="backend must be one of"), use_kernels("fast"):
        pass
    assert current_backend() is KernelBackend.AUTO


def test_auto_and_torch_use_the_reference_on_cpu(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # even with the interpreter available
    x = torch.zeros(1, 2, 4)
    for choice in ("auto", "torch"):
        with use_kernels(choice):
            assert should_use_triton(x) is False


def test_triton_on_cpu_without_interpreter_falls_back_with_one_warning(monkeypatch, fresh_warnings):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    args = _adaln_args()
    with use_kernels("triton"):
        with pytest.warns(RuntimeWarning, match="TRITON_INTERPRET=1 is not set"):
            out = expert_layernorm_modulate(*args)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a second call must not warn again
            again = expert_layernorm_modulate(*args)
    torch.testing.assert_close(out, reference.expert_layernorm_modulate(*args), rtol=0, atol=0)
    torch.testing.assert_close(again, out, rtol=0, atol=0)


@pytest.mark.skipif(not triton_importable(), reason="triton is not importable")
def test_triton_on_cpu_with_interpreter_takes_the_triton_path(monkeypatch):
    from cogvx.expert_dit.kernels import triton_adaln, triton_gate, triton_rope

    calls = []
    for module, name in (
        (triton_adaln, "expert_layernorm_modulate"),
        (triton_rope, "rope_qk"),
        (triton_gate, "gated_residual"),
    ):
        original = getattr(module, name)

        def spy(*a, _original=original, _name=name):
            calls.append(_name)
            return _original(*a)

        monkeypatch.setattr(module, name, spy)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = torch.randn(1, 3, 8)
    gates = torch.randn(1, 8), torch.randn(1, 8)
    q = torch.randn(1, 1, 3, 4)
    with use_kernels("torch"):
        gated_residual(x, x, 1, *gates)
    assert calls == []
    with use_kernels("triton"):
        expert_layernorm_modulate(*_adaln_args(batch=1, seq=3, dim=8))
        rope_qk(q, q, torch.ones(2, 4), torch.zeros(2, 4), 1)
        gated_residual(x, x, 1, *gates)
    assert calls == ["expert_layernorm_modulate", "rope_qk", "gated_residual"]


def test_package_imports_without_triton_and_falls_back(monkeypatch):
    """Re-import the package with ``import triton`` made to fail: the import works (no module
    imports triton at import time), and the ``triton`` backend warns and runs the reference."""
    import cogvx.expert_dit

    stale = [
        name
        for name in sys.modules
        if name == "triton" or name.startswith(("triton.", "cogvx.expert_dit.kernels"))
    ]
    for name in stale:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    original = cogvx.expert_dit.kernels
    monkeypatch.setattr(cogvx.expert_dit, "kernels", original)  # put back after the test
    monkeypatch.setenv("TRITON_INTERPRET", "1")

    fresh = importlib.import_module("cogvx.expert_dit.kernels")
    assert fresh is not original  # really imported again, under the blocked triton
    x, m = torch.randn(1, 3, 8), torch.randn(1, 8)
    with (
        fresh.use_kernels("triton"),
        pytest.warns(RuntimeWarning, match="triton cannot be imported"),
    ):
        out = fresh.expert_layernorm_modulate(x, None, None, 1e-5, 1, m, m, m, m)
    ref = reference.expert_layernorm_modulate(x, None, None, 1e-5, 1, m, m, m, m)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_argument_errors_name_the_parameter():
    x, w, b, eps, _, *mods = _adaln_args(batch=2, seq=5, dim=12)
    with pytest.raises(ValueError, match=r"text_len must be in \[0, 5\].*got 6"):
        expert_layernorm_modulate(x, w, b, eps, 6, *mods)
    with pytest.raises(TypeError, match="text_len must be an int"):
        expert_layernorm_modulate(x, w, b, eps, True, *mods)
    with pytest.raises(ValueError, match=r"video_scale must have shape \(2, 12\), got \(1, 12\)"):
        expert_layernorm_modulate(x, w, b, eps, 2, *mods[:3], mods[3][:1])
    with pytest.raises(ValueError, match=r"weight must have shape \(12,\)"):
        expert_layernorm_modulate(x, w[:5], b, eps, 2, *mods)
    with pytest.raises(ValueError, match="eps must be a float >= 0"):
        expert_layernorm_modulate(x, w, b, -1.0, 2, *mods)
    with pytest.raises(TypeError, match="x must be float32, float16 or bfloat16"):
        expert_layernorm_modulate(x.double(), w, b, eps, 2, *mods)
    with pytest.raises(ValueError, match="all tensors must be on one device"):
        expert_layernorm_modulate(x, w.to("meta"), b, eps, 2, *mods)
    q = torch.randn(1, 2, 5, 6)
    with pytest.raises(ValueError, match=r"cos must have shape \(3, 6\)"):
        rope_qk(q, q, torch.ones(4, 6), torch.ones(3, 6), 2)
    with pytest.raises(ValueError, match=r"head dim .* must be even"):
        rope_qk(q[..., :5], q[..., :5], torch.ones(3, 5), torch.ones(3, 5), 2)
    with pytest.raises(ValueError, match=r"k must have shape \(1, 2, 5, 6\)"):
        rope_qk(q, q[:, :1], torch.ones(3, 6), torch.ones(3, 6), 2)
    with pytest.raises(ValueError, match=r"y must have shape"):
        gated_residual(x, x[:, :4], 2, mods[0], mods[1])


def test_empty_sequence_goes_through(monkeypatch):
    x = torch.zeros(2, 0, 12)
    mods = [torch.zeros(2, 12)] * 4
    for choice in ("torch", "triton"):
        with use_kernels(choice):
            assert expert_layernorm_modulate(x, None, None, 1e-5, 0, *mods).shape == (2, 0, 12)
            assert gated_residual(x, x, 0, *mods[:2]).shape == (2, 0, 12)
