"""The bf16-on-CPU matmul policy: fp32 upcast path vs PyTorch's native half matmul."""

from __future__ import annotations

import pytest
import torch

from cogvx.expert_dit import DiTConfig, ExpertDiT
from cogvx.expert_dit.precision import half_matmul_mode, linear, use_half_matmul


def test_fp32_inputs_untouched():
    x, w, b = torch.randn(5, 7), torch.randn(3, 7), torch.randn(3)
    for mode in ("fp32", "native", "auto"):
        with use_half_matmul(mode):
            torch.testing.assert_close(
                linear(x, w, b), torch.nn.functional.linear(x, w, b), rtol=0, atol=0
            )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_upcast_equals_fp32_math_rounded_once(dtype):
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, generator=g).to(dtype) for s in ((9, 33), (17, 33), (17,)))
    with use_half_matmul("fp32"):
        up = linear(x, w, b)
    with use_half_matmul("native"):
        native = linear(x, w, b)
    expected = torch.nn.functional.linear(x.float(), w.float(), b.float()).to(dtype)
    assert up.dtype == native.dtype == dtype
    torch.testing.assert_close(up, expected, rtol=0, atol=0)
    torch.testing.assert_close(native.float(), expected.float(), rtol=2e-2, atol=2e-2)


def test_model_bf16_modes_agree_and_gradients_flow():
    torch.manual_seed(0)
    model = ExpertDiT(DiTConfig.tiny(use_rotary_positional_embeddings=True)).to(torch.bfloat16)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    latents, text = torch.randn(1, 2, 4, 8, 12), torch.randn(1, 5, 32)
    with use_half_matmul("fp32"):
        up = model(latents, text, 3)
        up.float().square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in model.parameters())
    with torch.no_grad(), use_half_matmul("native"):
        native = model(latents, text, 3)
    assert ((up.float() - native.float()).abs().max() / native.float().abs().max()) < 5e-2


def test_mode_validation(monkeypatch):
    with pytest.raises(ValueError, match="mode must be one of"), use_half_matmul("fast"):
        pass
    monkeypatch.setenv("COGVX_CPU_HALF_MATMUL", "fp32")  # the removed variable: ignored
    assert half_matmul_mode() == "auto"
    with use_half_matmul("FP32"):
        assert half_matmul_mode() == "fp32"
