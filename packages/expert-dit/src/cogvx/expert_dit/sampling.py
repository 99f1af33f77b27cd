"""CogVideoX samplers (DDIM, DPM-Solver++(2M) SDE) and classifier-free guidance.

Both samplers follow diffusers' ``CogVideoXDDIMScheduler.step`` / ``CogVideoXDPMScheduler.step``
(docs/diffusion.md §DDIM, §DPM-Solver++), which port SAT's ``VideoDDIMSampler`` and ``VPSDEDPMPP2MSampler``:

- the "previous" timestep is ``t - T // N`` (a hard-coded stride: exact for ``trailing`` spacing with
  ``N`` dividing ``T``; with ``leading``/``linspace`` spacing it can differ from the next timestep in the
  list, a known reference bug, diffusers#13125, reproduced on purpose);
- ``alpha_bar`` before timestep 0 is ``final_alpha_cumprod`` (1.0 with ``set_alpha_to_one``);
- the DPM sampler draws a fresh normal tensor at every step and, on steps that use the second-order
  update, a second one; the first draw of such a step is thrown away. The draws use the caller's
  generator in this order so the same seed gives the same video as the reference.

Sampler state is explicit: ``step`` returns ``(prev_sample, pred_x0)`` and the DPM sampler takes the
previous step's ``pred_x0`` and timestep as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import NamedTuple

import torch

from cogvx.expert_dit.schedule import NoiseSchedule, SchedulerConfig

__all__ = [
    "DDIMSampler",
    "DPMSolverSampler",
    "GuidanceSchedule",
    "Sampler",
    "StepOutput",
    "apply_guidance",
    "guidance_scale_at",
    "make_sampler",
    "predict_x0",
    "randn",
]

Generator = torch.Generator | Sequence[torch.Generator] | None


def randn(
    shape: Sequence[int],
    *,
    generator: Generator = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Standard normal noise drawn exactly as diffusers' ``randn_tensor`` draws it.

    - a list of generators draws batch item ``i`` from ``generator[i]`` (a list of one is one generator);
    - a CPU generator with a non-CPU ``device`` draws on the CPU and moves the result, so the numbers do
      not depend on the accelerator;
    - the draw happens directly in ``dtype`` (not in float32 then cast).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    shape = tuple(int(s) for s in shape)
    if isinstance(generator, Sequence) and not isinstance(generator, torch.Generator):
        generators = list(generator)
        if len(generators) == 1:
            generator = generators[0]
        elif len(generators) != shape[0]:
            raise ValueError(
                f"got {len(generators)} generators for a batch of {shape[0]}: pass one generator "
                "or one per batch item"
            )
        else:
            draw_device = device
            if generators[0].device.type == "cpu" and device.type != "cpu":
                draw_device = torch.device("cpu")
            parts = [
                torch.randn((1, *shape[1:]), generator=g, device=draw_device, dtype=dtype)
                for g in generators
            ]
            return torch.cat(parts, dim=0).to(device)
    draw_device = device
    if isinstance(generator, torch.Generator):
        if generator.device.type == "cpu" and device.type != "cpu":
            draw_device = torch.device("cpu")
        elif generator.device.type != device.type:
            raise ValueError(
                f"cannot draw a {device.type} tensor from a generator on {generator.device.type}"
            )
    return torch.randn(shape, generator=generator, device=draw_device, dtype=dtype).to(device)


def predict_x0(
    model_output: torch.Tensor,
    sample: torch.Tensor,
    alpha_prod_t: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """The clean-sample estimate from a model output at ``alpha_bar_t`` (docs/diffusion.md §V-prediction).

    ``v_prediction``: ``sqrt(a) x_t - sqrt(1 - a) v``; ``epsilon``: ``(x_t - sqrt(1 - a) eps) / sqrt(a)``;
    ``sample``: the output itself.
    """
    beta_prod_t = 1 - alpha_prod_t
    if prediction_type == "v_prediction":
        return alpha_prod_t**0.5 * sample - beta_prod_t**0.5 * model_output
    if prediction_type == "epsilon":
        return (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5
    if prediction_type == "sample":
        return model_output
    raise ValueError(
        f"prediction_type={prediction_type!r} is not one of 'epsilon', 'sample', 'v_prediction'"
    )


class StepOutput(NamedTuple):
    """One sampler step: the sample at the previous (less noisy) timestep and the ``x0`` estimate."""

    prev_sample: torch.Tensor
    pred_x0: torch.Tensor


class _SamplerBase:
    """Shared set-up: the schedule, the number of steps and the timesteps of the run."""

    def __init__(
        self,
        schedule: NoiseSchedule | SchedulerConfig,
        num_inference_steps: int,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(schedule, SchedulerConfig):
            schedule = NoiseSchedule(schedule)
        self.schedule = schedule
        self.config = schedule.config
        self.num_inference_steps = num_inference_steps
        self.timesteps = schedule.timesteps(num_inference_steps, device=device)
        self.init_noise_sigma = schedule.init_noise_sigma

    def previous_timestep(self, timestep: int | torch.Tensor) -> int:
        """``t - T // N``: the reference's fixed stride (see the module docstring)."""
        return int(timestep) - self.config.num_train_timesteps // self.num_inference_steps

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor):
        """See :meth:`NoiseSchedule.add_noise`."""
        return self.schedule.add_noise(original, noise, timesteps)


class DDIMSampler(_SamplerBase):
    """Deterministic DDIM on v-prediction (``CogVideoXDDIMScheduler``; SAT ``VideoDDIMSampler``).

    ``x_prev = sqrt((1 - a_p) / (1 - a_t)) x_t + (sqrt(a_p) - sqrt(a_t) sqrt((1 - a_p) / (1 - a_t))) x0``.
    The reference accepts ``eta`` and ignores it; so does this class (no noise is ever added).
    """

    stochastic = False

    def step(
        self,
        model_output: torch.Tensor,
        sample: torch.Tensor,
        timestep: int | torch.Tensor,
        *,
        timestep_back: int | torch.Tensor | None = None,
        old_pred_x0: torch.Tensor | None = None,
        generator: Generator = None,
    ) -> StepOutput:
        """One step from ``timestep``; ``timestep_back``, ``old_pred_x0`` and ``generator`` are unused."""
        del timestep_back, old_pred_x0, generator
        a_t = self.schedule.alpha_at(timestep)
        a_p = self.schedule.alpha_at(self.previous_timestep(timestep))
        x0 = predict_x0(model_output, sample, a_t, self.config.prediction_type)
        c_sample = ((1 - a_p) / (1 - a_t)) ** 0.5
        c_x0 = a_p**0.5 - a_t**0.5 * c_sample
        return StepOutput(c_sample * sample + c_x0 * x0, x0)


class DPMSolverSampler(_SamplerBase):
    """Stochastic DPM-Solver++(2M) SDE (``CogVideoXDPMScheduler``; SAT ``VPSDEDPMPP2MSampler``).

    With ``lambda(a) = log sqrt(a / (1 - a))`` and ``h = lambda(a_p) - lambda(a_t)``:
    ``x_prev = sqrt((1 - a_p)/(1 - a_t)) e^-h x_t - expm1(-2h) sqrt(a_p) D + sqrt(1 - a_p) sqrt(1 - e^-2h) z``
    where ``D = x0`` on the first and last steps and otherwise the second-order combination
    ``(1 + 1/(2r)) x0 - 1/(2r) x0_old`` with ``r = (lambda(a_t) - lambda(a_back)) / h`` (docs/diffusion.md §DPM-Solver++).
    At ``t = T - 1`` the zero-SNR schedule has ``a_t = 0`` and ``lambda = -inf``; the float arithmetic
    then gives the exact limit ``sqrt(a_p) x0 + sqrt(1 - a_p) z``, as in the reference.
    """

    stochastic = True

    @staticmethod
    def _log_snr_half(a: torch.Tensor) -> torch.Tensor:
        return ((a / (1 - a)) ** 0.5).log()

    def step(
        self,
        model_output: torch.Tensor,
        sample: torch.Tensor,
        timestep: int | torch.Tensor,
        *,
        timestep_back: int | torch.Tensor | None = None,
        old_pred_x0: torch.Tensor | None = None,
        generator: Generator = None,
    ) -> StepOutput:
        """One step from ``timestep``.

        ``timestep_back`` is the timestep of the previous step (``None`` on the first) and
        ``old_pred_x0`` that step's ``pred_x0``. Noise is drawn from ``generator`` in ``sample``'s dtype.
        """
        prev_t = self.previous_timestep(timestep)
        a_t = self.schedule.alpha_at(timestep)
        a_p = self.schedule.alpha_at(prev_t)
        x0 = predict_x0(model_output, sample, a_t, self.config.prediction_type)

        lam_t, lam_p = self._log_snr_half(a_t), self._log_snr_half(a_p)
        h = lam_p - lam_t
        c_sample = ((1 - a_p) / (1 - a_t)) ** 0.5 * (-h).exp()
        c_x0 = (-2 * h).expm1() * a_p**0.5
        c_noise = (1 - a_p) ** 0.5 * (1 - (-2 * h).exp()) ** 0.5

        noise = randn(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
        first_order = c_sample * sample - c_x0 * x0 + c_noise * noise
        if old_pred_x0 is None or prev_t < 0:
            # First step (no history) or last step (a_p = 1: the result is x0 itself).
            return StepOutput(first_order, x0)
        if timestep_back is None:
            raise ValueError("timestep_back is required with old_pred_x0 (the previous timestep)")

        # Second-order multistep update; the reference draws fresh noise for it.
        a_back = self.schedule.alpha_at(timestep_back)
        r = (lam_t - self._log_snr_half(a_back)) / h
        denoised = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * old_pred_x0
        noise = randn(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
        return StepOutput(c_sample * sample - c_x0 * denoised + c_noise * noise, x0)


Sampler = DDIMSampler | DPMSolverSampler

_SAMPLER_CLASSES: dict[str, type[DDIMSampler] | type[DPMSolverSampler]] = {
    "ddim": DDIMSampler,
    "dpm": DPMSolverSampler,
}


def make_sampler(
    config: SchedulerConfig | NoiseSchedule,
    num_inference_steps: int,
    *,
    device: torch.device | str | None = None,
) -> Sampler:
    """The sampler ``config.sampler`` names (from ``_class_name``), set up for ``num_inference_steps``."""
    schedule = config if isinstance(config, NoiseSchedule) else NoiseSchedule(config)
    return _SAMPLER_CLASSES[schedule.config.sampler](schedule, num_inference_steps, device=device)


# ---- classifier-free guidance ------------------------------------------------------------------


class GuidanceSchedule(StrEnum):
    """How the guidance scale varies over the sampling run.

    - ``CONSTANT``: ``g`` at every step (the pipelines' default, ``use_dynamic_cfg=False``).
    - ``DYNAMIC``: the reference dynamic CFG, ``1 + g (1 - cos(pi ((N - t) / N)^5)) / 2`` with ``t`` the
      **raw timestep** (999 ... 19). ``(N - t) / N`` is far below -1, so the scale oscillates in
      ``[1, 1 + g]`` pseudo-randomly (2.29, 2.54, 6.97, 6.42, ... for g = 6, N = 50). SAT and diffusers
      both do this and the CogVideoX maintainers called the wave-like schedule intentional
      (zai-org/CogVideo#267), so it is the default dynamic mode.
    - ``DYNAMIC_STEP_INDEX``: the same curve on the step index ``i`` (0 ... N-1), a smooth decay from
      ``1 + g`` towards 1 (the schedule proposed in diffusers#9641 / PR #13172). An explicit option.
    """

    CONSTANT = "constant"
    DYNAMIC = "dynamic"
    DYNAMIC_STEP_INDEX = "dynamic_step_index"


def guidance_scale_at(
    guidance_scale: float,
    *,
    timestep: int | torch.Tensor,
    step_index: int,
    num_inference_steps: int,
    schedule: GuidanceSchedule | str = GuidanceSchedule.CONSTANT,
    exponent: float = 5.0,
) -> float:
    """The guidance scale to use at one step (see :class:`GuidanceSchedule`).

    ``num_inference_steps`` is the ``N`` of the formula: in video-to-video the reference uses the
    number of steps actually run (after ``strength``), so pass that.
    """
    schedule = GuidanceSchedule(schedule)
    if schedule is GuidanceSchedule.CONSTANT:
        return float(guidance_scale)
    position = int(timestep) if schedule is GuidanceSchedule.DYNAMIC else int(step_index)
    n = num_inference_steps
    return 1 + guidance_scale * ((1 - math.cos(math.pi * ((n - position) / n) ** exponent)) / 2)


def apply_guidance(
    model_output: torch.Tensor, scale: float, *, uncond_first: bool = True
) -> torch.Tensor:
    """``u + scale (c - u)`` on a CFG batch ``[uncond; cond]`` (split in two along dim 0)."""
    if model_output.shape[0] % 2:
        raise ValueError(
            f"a guidance batch must be [uncond; cond] with an even size, got {model_output.shape[0]}"
        )
    first, second = model_output.chunk(2)
    uncond, cond = (first, second) if uncond_first else (second, first)
    return uncond + scale * (cond - uncond)
