"""Samplers and guidance: step-by-step parity with diffusers' CogVideoX schedulers (fp32, rel <= 1e-5)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

from cogvx.expert_dit.sampling import (
    DDIMSampler,
    DPMSolverSampler,
    GuidanceSchedule,
    apply_guidance,
    guidance_scale_at,
    make_sampler,
    randn,
)
from cogvx.expert_dit.schedule import SchedulerConfig

SHAPE = (2, 3, 4, 5, 6)  # [B, F, C, h, w] latents


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours.double() - ref.double()).abs().max() / ref.double().abs().max())


def fake_model(x: torch.Tensor, t: int) -> torch.Tensor:
    """A deterministic stand-in for the transformer: depends on the input and the timestep."""
    return torch.tanh(0.7 * x + 0.001 * t) + 0.1 * torch.cos(x * (1 + t / 500))


def run_reference(config: SchedulerConfig, steps: int, x: torch.Tensor, seed: int):
    cls = CogVideoXDDIMScheduler if config.sampler == "ddim" else CogVideoXDPMScheduler
    sched = cls.from_config(config.to_dict())
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    old, trace = None, []
    for i, t in enumerate(sched.timesteps):
        v = fake_model(x, int(t))
        if config.sampler == "ddim":
            x, x0 = sched.step(v, t, x, return_dict=False)
        else:
            back = sched.timesteps[i - 1] if i > 0 else None
            x, old = sched.step(v, old, t, back, x, generator=g, return_dict=False)
            x0 = old
        trace.append((x.clone(), x0.clone()))
    return sched.timesteps, trace


def run_ours(config: SchedulerConfig, steps: int, x: torch.Tensor, seed: int):
    sampler = make_sampler(config, steps)
    g = torch.Generator().manual_seed(seed)
    old, trace = None, []
    for i, t in enumerate(sampler.timesteps):
        v = fake_model(x, int(t))
        back = sampler.timesteps[i - 1] if i > 0 else None
        x, old = sampler.step(v, x, t, timestep_back=back, old_pred_x0=old, generator=g)
        trace.append((x.clone(), old.clone()))
    return sampler.timesteps, trace


CASES = [
    ("ddim", 3.0, "trailing", 50),
    ("ddim", 1.0, "trailing", 50),
    ("ddim", 1.0, "trailing", 3),
    ("dpm", 3.0, "trailing", 50),
    ("dpm", 1.0, "trailing", 50),
    ("dpm", 1.0, "trailing", 2),
    ("dpm", 1.0, "trailing", 7),  # 1000 % 7 != 0: the stride and the list disagree
    ("ddim", 1.0, "leading", 10),  # the reference's prev_t bug, reproduced
    ("dpm", 3.0, "linspace", 9),
]


@pytest.mark.parametrize(("sampler", "shift", "spacing", "steps"), CASES)
def test_trajectory_matches_reference_step_by_step(sampler, shift, spacing, steps):
    config = SchedulerConfig(sampler=sampler, snr_shift_scale=shift, timestep_spacing=spacing)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    ts_ref, ref = run_reference(config, steps, x.clone(), seed=7)
    ts_ours, ours = run_ours(config, steps, x.clone(), seed=7)
    assert torch.equal(ts_ours, ts_ref)
    assert len(ours) == len(ref)
    for i, ((xo, x0o), (xr, x0r)) in enumerate(zip(ours, ref)):
        assert torch.isfinite(xo).all()
        assert rel_err(xo, xr) <= 1e-5, (i, rel_err(xo, xr))
        assert rel_err(x0o, x0r) <= 1e-5, (i, rel_err(x0o, x0r))


def test_dpm_random_number_order():
    """One draw on the first and last steps, two on the others: the generator ends in the same state."""
    config = SchedulerConfig(sampler="dpm")
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    for steps in (1, 2, 5):
        ref_sched = CogVideoXDPMScheduler.from_config(config.to_dict())
        ref_sched.set_timesteps(steps)
        g_ref, g_ours = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        sampler = DPMSolverSampler(config, steps)
        old_r = old_o = None
        for i, t in enumerate(sampler.timesteps):
            back = sampler.timesteps[i - 1] if i > 0 else None
            _, old_r = ref_sched.step(x, old_r, t, back, x, generator=g_ref, return_dict=False)
            _, old_o = sampler.step(
                x, x, t, timestep_back=back, old_pred_x0=old_o, generator=g_ours
            )
        expected_draws = 1 if steps == 1 else 2 + 2 * (steps - 2)
        probe = torch.Generator().manual_seed(3)
        for _ in range(expected_draws):
            torch.randn(SHAPE, generator=probe)
        assert torch.equal(g_ours.get_state(), probe.get_state()), steps
        assert torch.equal(g_ref.get_state(), probe.get_state()), steps


def test_dpm_last_step_returns_x0_and_first_step_limit():
    config = SchedulerConfig(sampler="dpm")
    sampler = DPMSolverSampler(config, 50)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    v = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    out = sampler.step(v, x, 19, timestep_back=39, old_pred_x0=x, generator=torch.Generator())
    torch.testing.assert_close(out.prev_sample, out.pred_x0)
    # At t = 999 (alpha_bar = 0): sqrt(a_p) x0 + sqrt(1 - a_p) z.
    g = torch.Generator().manual_seed(5)
    out = sampler.step(v, x, 999, generator=g)
    a_p = sampler.schedule.alphas_cumprod[979].float()
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(out.prev_sample, a_p.sqrt() * out.pred_x0 + (1 - a_p).sqrt() * z)
    torch.testing.assert_close(out.pred_x0, -v)  # v-prediction with a_t = 0: x0 = -v


def test_ddim_is_deterministic_and_ignores_generator():
    config = SchedulerConfig(sampler="ddim")
    sampler = DDIMSampler(config, 10)
    x = torch.randn(SHAPE)
    a = sampler.step(x, x, 999, generator=torch.Generator().manual_seed(1))
    b = sampler.step(x, x, 999, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.prev_sample, b.prev_sample)


def test_epsilon_and_sample_predictions_match_reference():
    for pred in ("epsilon", "sample"):
        config = SchedulerConfig(prediction_type=pred, rescale_betas_zero_snr=False)
        x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
        _, ref = run_reference(config, 5, x.clone(), seed=0)
        _, ours = run_ours(config, 5, x.clone(), seed=0)
        for (xo, _), (xr, _) in zip(ours, ref):
            assert rel_err(xo, xr) <= 1e-5


def test_randn_matches_reference_randn_tensor():
    from diffusers.utils.torch_utils import randn_tensor

    shape = (3, 2, 4, 5)
    a = randn(shape, generator=torch.Generator().manual_seed(4), dtype=torch.float32)
    b = randn_tensor(shape, generator=torch.Generator().manual_seed(4), dtype=torch.float32)
    assert torch.equal(a, b)
    gens = [torch.Generator().manual_seed(i) for i in range(3)]
    gens_ref = [torch.Generator().manual_seed(i) for i in range(3)]
    assert torch.equal(randn(shape, generator=gens), randn_tensor(shape, generator=gens_ref))
    a = randn(shape, generator=torch.Generator().manual_seed(4), dtype=torch.bfloat16)
    b = randn_tensor(shape, generator=torch.Generator().manual_seed(4), dtype=torch.bfloat16)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        randn(shape, generator=gens[:2])


# ---- guidance ----------------------------------------------------------------------------------


def reference_dynamic(g: float, t: int, n: int) -> float:
    """The formula as written in diffusers' CogVideoX pipelines (raw timestep)."""
    return 1 + g * ((1 - math.cos(math.pi * ((n - t) / n) ** 5.0)) / 2)


def test_dynamic_cfg_reference_values():
    ts = make_sampler(SchedulerConfig(), 50).timesteps
    got = [
        guidance_scale_at(6.0, timestep=t, step_index=i, num_inference_steps=50, schedule="dynamic")
        for i, t in enumerate(ts)
    ]
    # docs/diffusion.md §Dynamic CFG: 2.29, 2.54, 6.97, 6.42, 2.79, 4.27, 1.04, ... (oscillating, intentional).
    assert [round(v, 2) for v in got[:7]] == [2.29, 2.54, 6.97, 6.42, 2.79, 4.27, 1.04]
    for t, v in zip(ts, got):
        assert v == reference_dynamic(6.0, int(t), 50)
        assert 1.0 <= v <= 7.0


def test_dynamic_cfg_step_index_is_a_smooth_decay():
    vals = [
        guidance_scale_at(
            4.0,
            timestep=0,
            step_index=i,
            num_inference_steps=50,
            schedule=GuidanceSchedule.DYNAMIC_STEP_INDEX,
        )
        for i in range(50)
    ]
    # diffusers PR #13172 quotes 5.00, 4.91, 4.67, 4.34, 3.96 for g = 4.
    assert [round(v, 2) for v in vals[:5]] == [5.00, 4.91, 4.67, 4.34, 3.96]
    assert all(a >= b for a, b in itertools.pairwise(vals))
    assert guidance_scale_at(4.0, timestep=999, step_index=3, num_inference_steps=50) == 4.0


def test_apply_guidance():
    u, c = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(apply_guidance(torch.cat([u, c]), 6.0), u + 6.0 * (c - u))
    with pytest.raises(ValueError, match="even"):
        apply_guidance(torch.randn(3, 2), 2.0)
