"""Noise schedule: parity with diffusers' CogVideoX schedulers, the alpha_bar values of docs/diffusion.md §Noise schedule, config round-trips."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

from cogvx.expert_dit.schedule import (
    NoiseSchedule,
    SchedulerConfig,
    inference_timesteps,
    rescale_zero_terminal_snr,
    shift_snr,
)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    ours, ref = ours.double(), ref.double()
    return float((ours - ref).abs().max() / ref.abs().max())


def reference(config: SchedulerConfig):
    """The diffusers scheduler built from our config's JSON dict (the same path a model folder takes)."""
    cls = CogVideoXDDIMScheduler if config.sampler == "ddim" else CogVideoXDPMScheduler
    return cls.from_config(config.to_dict())


CONFIGS = [
    SchedulerConfig.cogvideox_2b(),
    SchedulerConfig.cogvideox_5b(),
    SchedulerConfig(snr_shift_scale=2.0, rescale_betas_zero_snr=False),
    SchedulerConfig(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, sampler="dpm"),
    SchedulerConfig(beta_schedule="squaredcos_cap_v2", rescale_betas_zero_snr=False),
    SchedulerConfig(set_alpha_to_one=False, num_train_timesteps=500),
]


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: f"{c.sampler}-{c.beta_schedule}-{c.snr_shift_scale}"
)
def test_alphas_cumprod_match_reference(config):
    ours = NoiseSchedule(config)
    ref = reference(config)
    assert ours.alphas_cumprod.dtype == ref.alphas_cumprod.dtype
    assert rel_err(ours.alphas_cumprod, ref.alphas_cumprod) <= 1e-12
    # Near the zero-SNR end the values are tiny: compare them on their own scale too.
    tail = slice(-20, None)
    assert torch.allclose(ours.alphas_cumprod[tail], ref.alphas_cumprod[tail], rtol=1e-9, atol=0)
    assert float(ours.final_alpha_cumprod) == float(ref.final_alpha_cumprod)


# docs/diffusion.md §Noise schedule table (derived from diffusers): alpha_bar at t = 0, 249, 499, 749, 998, 999.
SPEC_TABLE = {
    3.0: [0.997454, 0.390890, 0.095970, 0.010966, 6.2e-8, 0.0],
    1.0: [0.999150, 0.654189, 0.242359, 0.033171, 2.0e-7, 0.0],
}


@pytest.mark.parametrize("shift", [3.0, 1.0])
def test_spec_table_values(shift):
    a = NoiseSchedule(SchedulerConfig(snr_shift_scale=shift)).alphas_cumprod
    got = [float(a[t]) for t in (0, 249, 499, 749, 998, 999)]
    want = SPEC_TABLE[shift]
    for g, w in zip(got[:4], want[:4]):
        assert g == pytest.approx(w, abs=5e-7)
    assert got[4] == pytest.approx(want[4], rel=0.05)  # the table gives 2 significant digits
    assert got[5] == 0.0  # zero terminal SNR, exactly


def test_shift_divides_snr_and_rescale_pins_ends():
    a = torch.linspace(0.99, 0.01, 50, dtype=torch.float64)
    shifted = shift_snr(a, 3.0)
    torch.testing.assert_close(shifted / (1 - shifted), a / (1 - a) / 3.0)
    r = rescale_zero_terminal_snr(a)
    assert float(r[-1]) == 0.0
    assert float(r[0]) == pytest.approx(float(a[0]), rel=1e-12)


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_timesteps_match_reference_for_every_step_count(spacing):
    ref = CogVideoXDDIMScheduler(
        timestep_spacing=spacing, steps_offset=1 if spacing == "leading" else 0
    )
    for n in [*list(range(1, 120)), 125, 200, 250, 333, 500, 999, 1000]:
        ref.set_timesteps(n)
        ours = inference_timesteps(
            n, spacing=spacing, steps_offset=1 if spacing == "leading" else 0
        )
        assert torch.equal(ours, ref.timesteps), (spacing, n)


def test_trailing_50_is_the_spec_list():
    ts = inference_timesteps(50, spacing="trailing")
    assert ts[:3].tolist() == [999, 979, 959] and ts[-1].item() == 19 and len(ts) == 50


def test_timestep_count_is_validated():
    with pytest.raises(ValueError, match="num_inference_steps"):
        inference_timesteps(0)
    with pytest.raises(ValueError, match="cannot exceed"):
        inference_timesteps(1001)


@pytest.mark.parametrize("config", CONFIGS[:2], ids=["2b", "5b"])
def test_add_noise_and_velocity_match_reference(config):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 3, 5, 6, 7, generator=g)
    eps = torch.randn(4, 3, 5, 6, 7, generator=g)
    t = torch.tensor([0, 250, 731, 999])
    ours, ref = NoiseSchedule(config), reference(config)
    assert rel_err(ours.add_noise(x0, eps, t), ref.add_noise(x0, eps, t)) <= 1e-6
    assert rel_err(ours.get_velocity(x0, eps, t), ref.get_velocity(x0, eps, t)) <= 1e-6
    # bf16 inputs follow the reference's cast-then-sqrt order exactly.
    xb, eb = x0.bfloat16(), eps.bfloat16()
    assert torch.equal(ours.add_noise(xb, eb, t), ref.add_noise(xb, eb, t))


def test_config_json_round_trip_with_reference(tmp_path):
    for config in CONFIGS:
        ref = reference(config)
        ref.save_config(tmp_path / config.sampler)
        loaded = SchedulerConfig.from_pretrained(tmp_path / config.sampler)
        assert loaded == config
        written = json.loads((tmp_path / config.sampler / "scheduler_config.json").read_text())
        ours = config.to_dict()
        assert ours["_class_name"] == written["_class_name"]
        written.pop("_diffusers_version")
        assert ours == written
        # ...and the file we write loads into the reference class unchanged.
        config.save_pretrained(tmp_path / "ours")
        back = (
            CogVideoXDDIMScheduler if config.sampler == "ddim" else CogVideoXDPMScheduler
        ).from_pretrained(tmp_path / "ours")
        assert {k: back.config[k] for k in ours if not k.startswith("_")} == {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in ours.items()
            if not k.startswith("_")
        }


def test_converter_config_and_class_defaults():
    converter = {
        "_class_name": "CogVideoXDDIMScheduler",
        "_diffusers_version": "0.30.0.dev0",
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "clip_sample": False,
        "clip_sample_range": 1.0,
        "num_train_timesteps": 1000,
        "prediction_type": "v_prediction",
        "rescale_betas_zero_snr": True,
        "sample_max_value": 1.0,
        "set_alpha_to_one": True,
        "snr_shift_scale": 3.0,
        "steps_offset": 0,
        "timestep_spacing": "trailing",
        "trained_betas": None,
    }
    assert SchedulerConfig.from_dict(converter) == SchedulerConfig.cogvideox_2b()
    # Omitted keys take the reference constructor defaults (the same for both classes).
    for cls_name, cls in (
        ("CogVideoXDDIMScheduler", CogVideoXDDIMScheduler),
        ("CogVideoXDPMScheduler", CogVideoXDPMScheduler),
    ):
        ours = SchedulerConfig.from_dict({"_class_name": cls_name})
        ref = cls()
        for key, value in ours.to_dict().items():
            if not key.startswith("_"):
                assert ref.config[key] == value, (cls_name, key)
        torch.testing.assert_close(
            NoiseSchedule(ours).alphas_cumprod, ref.alphas_cumprod, rtol=0, atol=0
        )


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="beta_schedule='cosine'"):
        SchedulerConfig(beta_schedule="cosine")
    with pytest.raises(ValueError, match="unknown key"):
        SchedulerConfig.from_dict({"_class_name": "CogVideoXDDIMScheduler", "snr_shift": 3.0})
    with pytest.raises(ValueError, match="_class_name"):
        SchedulerConfig.from_dict({"_class_name": "DDIMScheduler"})
    with pytest.raises(ValueError, match="trained_betas"):
        SchedulerConfig(trained_betas=(0.1, 0.2))
    # Old DDIM-family keys that CogVideoX never reads are accepted.
    SchedulerConfig.from_dict({"thresholding": False, "dynamic_thresholding_ratio": 0.995})


def test_trained_betas(tmp_path):
    betas = torch.linspace(1e-4, 0.03, 100).tolist()
    config = SchedulerConfig(num_train_timesteps=100, trained_betas=tuple(betas))
    ref = reference(config)
    assert rel_err(NoiseSchedule(config).alphas_cumprod, ref.alphas_cumprod) <= 1e-7
    config.save_pretrained(tmp_path)
    assert SchedulerConfig.from_pretrained(tmp_path) == config
