"""The CogVideoX noise schedule: betas, SNR shift, zero-terminal-SNR rescale, inference timesteps.

Matches diffusers' ``CogVideoXDDIMScheduler`` / ``CogVideoXDPMScheduler`` construction (docs/diffusion.md §Noise schedule):

1. betas: ``scaled_linear`` = ``linspace(sqrt(beta_start), sqrt(beta_end), T)^2`` (computed in float64, as
   the reference does), ``linear`` (float32), ``squaredcos_cap_v2`` (the GLIDE cosine schedule, float32)
   or explicit ``trained_betas`` (float32);
2. ``alphas_cumprod = cumprod(1 - betas)``;
3. SNR shift (SD3 style, SAT ``shift_scale``): ``a <- a / (s + (1 - s) a)``, i.e. SNR <- SNR / s;
4. optional zero-terminal-SNR rescale of ``sqrt(a)`` (Lin et al. 2023, Algorithm 1), applied after the
   shift, so that ``alphas_cumprod[-1] == 0`` exactly.

The schedule keeps the reference's tensor dtype (float64 for ``scaled_linear``, float32 otherwise)
because the zero-SNR rescale subtracts two nearly equal square roots near the end of the schedule and
the sampler coefficients there are sensitive to the precision of that difference.

:class:`SchedulerConfig` is a frozen dataclass that reads and writes the reference
``scheduler/scheduler_config.json`` (``_class_name`` ``CogVideoXDDIMScheduler`` or
``CogVideoXDPMScheduler``); which sampler to run is part of that file, so it is part of the config.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from cogvx.modelio import read_config, write_config

__all__ = [
    "SCHEDULER_CONFIG_NAME",
    "NoiseSchedule",
    "SchedulerConfig",
    "inference_timesteps",
    "make_betas",
    "rescale_zero_terminal_snr",
    "shift_snr",
]

SCHEDULER_CONFIG_NAME = "scheduler_config.json"

SamplerName = Literal["ddim", "dpm"]
BetaScheduleName = Literal["linear", "scaled_linear", "squaredcos_cap_v2"]
PredictionType = Literal["epsilon", "sample", "v_prediction"]
TimestepSpacing = Literal["linspace", "leading", "trailing"]

# The reference class names in scheduler_config.json and the sampler each one runs.
_CLASS_NAMES: dict[SamplerName, str] = {
    "ddim": "CogVideoXDDIMScheduler",
    "dpm": "CogVideoXDPMScheduler",
}
_SAMPLER_OF_CLASS: dict[str, SamplerName] = {v: k for k, v in _CLASS_NAMES.items()}

# The reference constructor defaults (identical for both classes, whatever the DPM docstring says).
# A scheduler_config.json that omits a key means "the class default".
_CLASS_DEFAULTS: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "trained_betas": None,
    "clip_sample": True,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "prediction_type": "epsilon",
    "clip_sample_range": 1.0,
    "sample_max_value": 1.0,
    "timestep_spacing": "leading",
    "rescale_betas_zero_snr": False,
    "snr_shift_scale": 3.0,
}
# Keys that older DDIM-family configs carry and the CogVideoX schedulers never read. They are accepted
# (and dropped) so such files load; anything else unknown is an error.
_IGNORED_KEYS = frozenset({"thresholding", "dynamic_thresholding_ratio", "_diffusers_version"})

_BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
_PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
_SPACINGS = ("linspace", "leading", "trailing")


@dataclass(frozen=True)
class SchedulerConfig:
    """The sampler and noise-schedule settings of a CogVideoX model folder (``scheduler_config.json``).

    Field names are the reference's. The defaults are the values the CogVideoX converter writes
    (docs/diffusion.md §Noise schedule) with the DDIM sampler and ``snr_shift_scale=1.0`` (the 5B / 1.5 value); use
    :meth:`cogvideox_2b` / :meth:`cogvideox_5b` for the released models. ``clip_sample``,
    ``clip_sample_range`` and ``sample_max_value`` are stored for round-tripping only: the reference
    CogVideoX samplers never clip.
    """

    sampler: SamplerName = "ddim"
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: BetaScheduleName = "scaled_linear"
    trained_betas: tuple[float, ...] | None = None
    clip_sample: bool = False
    set_alpha_to_one: bool = True
    steps_offset: int = 0
    prediction_type: PredictionType = "v_prediction"
    clip_sample_range: float = 1.0
    sample_max_value: float = 1.0
    timestep_spacing: TimestepSpacing = "trailing"
    rescale_betas_zero_snr: bool = True
    snr_shift_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.sampler not in _CLASS_NAMES:
            raise ValueError(f"sampler={self.sampler!r} is not one of {sorted(_CLASS_NAMES)}")
        if self.beta_schedule not in _BETA_SCHEDULES:
            raise ValueError(
                f"beta_schedule={self.beta_schedule!r} is not one of {list(_BETA_SCHEDULES)}"
            )
        if self.prediction_type not in _PREDICTION_TYPES:
            raise ValueError(
                f"prediction_type={self.prediction_type!r} is not one of {list(_PREDICTION_TYPES)}"
            )
        if self.timestep_spacing not in _SPACINGS:
            raise ValueError(
                f"timestep_spacing={self.timestep_spacing!r} is not one of {list(_SPACINGS)}"
            )
        if not isinstance(self.num_train_timesteps, int) or self.num_train_timesteps < 2:
            raise ValueError(
                f"num_train_timesteps={self.num_train_timesteps!r} must be an integer >= 2"
            )
        if not self.snr_shift_scale > 0:
            raise ValueError(f"snr_shift_scale={self.snr_shift_scale!r} must be > 0")
        if self.trained_betas is not None:
            betas = tuple(float(b) for b in self.trained_betas)
            if len(betas) != self.num_train_timesteps:
                raise ValueError(
                    f"trained_betas has {len(betas)} values but num_train_timesteps="
                    f"{self.num_train_timesteps}"
                )
            object.__setattr__(self, "trained_betas", betas)

    # ---- presets -------------------------------------------------------------------------------

    @classmethod
    def cogvideox_2b(cls, sampler: SamplerName = "ddim") -> SchedulerConfig:
        """CogVideoX-2B: SNR shift 3.0; the model card pairs it with DDIM."""
        return cls(sampler=sampler, snr_shift_scale=3.0)

    @classmethod
    def cogvideox_5b(cls, sampler: SamplerName = "dpm") -> SchedulerConfig:
        """CogVideoX-5B, 5B-I2V and 1.5: SNR shift 1.0; the model card pairs them with DPM."""
        return cls(sampler=sampler, snr_shift_scale=1.0)

    # ---- (de)serialisation ---------------------------------------------------------------------

    @property
    def class_name(self) -> str:
        """The reference ``_class_name`` for this sampler."""
        return _CLASS_NAMES[self.sampler]

    def replace(self, **changes: Any) -> SchedulerConfig:
        """A copy with some fields changed (e.g. ``sampler="dpm"``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The reference ``scheduler_config.json`` content (``_class_name`` first, keys sorted)."""
        out: dict[str, Any] = {"_class_name": self.class_name}
        for f in dataclasses.fields(self):
            if f.name == "sampler":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return {"_class_name": out.pop("_class_name"), **dict(sorted(out.items()))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchedulerConfig:
        """Read a reference ``scheduler_config.json`` dict.

        ``_class_name`` selects the sampler (default DDIM when absent); keys the file omits take the
        reference constructor's default, as diffusers does (``snr_shift_scale`` 3.0, ``epsilon``,
        ``leading``, no zero-SNR rescale: not the CogVideoX values).
        """
        data = dict(data)
        class_name = data.pop("_class_name", _CLASS_NAMES["ddim"])
        if class_name not in _SAMPLER_OF_CLASS:
            raise ValueError(
                f"_class_name={class_name!r} in the scheduler config is not one of "
                f"{sorted(_SAMPLER_OF_CLASS)}"
            )
        sampler = _SAMPLER_OF_CLASS[class_name]
        for key in _IGNORED_KEYS:
            data.pop(key, None)
        known = {f.name for f in dataclasses.fields(cls)} - {"sampler"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown key(s) {unknown} in the scheduler config for {class_name}; valid keys: "
                f"{sorted(known)}"
            )
        defaults = _CLASS_DEFAULTS
        values = {**defaults, **data}
        if values["trained_betas"] is not None:
            values["trained_betas"] = tuple(values["trained_betas"])
        return cls(sampler=sampler, **values)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``<directory>/scheduler_config.json`` and return its path."""
        path = Path(directory) / SCHEDULER_CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_config(path, self.to_dict())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> SchedulerConfig:
        """Read ``scheduler_config.json`` from a file or from a folder that holds one."""
        p = Path(path)
        if p.is_dir():
            p = p / SCHEDULER_CONFIG_NAME
        data = read_config(p)
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{str(p)!r}: {err}") from None


# ---- the schedule ------------------------------------------------------------------------------


def _glide_cosine_betas(num_steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """GLIDE's ``squaredcos_cap_v2`` betas from ``alpha_bar(t) = cos((t + 0.008) / 1.008 * pi / 2)^2``."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta)
        for i in range(num_steps)
    ]
    return torch.tensor(betas, dtype=torch.float32)


def make_betas(config: SchedulerConfig) -> torch.Tensor:
    """The ``num_train_timesteps`` betas of ``config`` in the reference dtype."""
    n = config.num_train_timesteps
    if config.trained_betas is not None:
        return torch.tensor(config.trained_betas, dtype=torch.float32)
    if config.beta_schedule == "linear":
        return torch.linspace(config.beta_start, config.beta_end, n, dtype=torch.float32)
    if config.beta_schedule == "scaled_linear":
        # Latent-diffusion "scaled linear": linear in sqrt(beta). Float64 as in the reference.
        return (
            torch.linspace(config.beta_start**0.5, config.beta_end**0.5, n, dtype=torch.float64)
            ** 2
        )
    return _glide_cosine_betas(n)


def shift_snr(alphas_cumprod: torch.Tensor, shift: float) -> torch.Tensor:
    """Divide the SNR ``a / (1 - a)`` by ``shift``: ``a / (shift + (1 - shift) a)`` (docs/diffusion.md §SNR shift)."""
    return alphas_cumprod / (shift + (1 - shift) * alphas_cumprod)


def rescale_zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Shift and scale ``sqrt(a)`` so its last value is 0 and its first unchanged.

    Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed" (2023), Algorithm 1,
    written on ``alphas_cumprod`` as the CogVideoX schedulers (and SAT ``ZeroSNRDDPMDiscretization``) do.
    """
    root = alphas_cumprod.sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))
    return root**2


def inference_timesteps(
    num_inference_steps: int,
    *,
    spacing: TimestepSpacing = "trailing",
    num_train_timesteps: int = 1000,
    steps_offset: int = 0,
) -> torch.Tensor:
    """The descending int64 timesteps of a sampling run (diffusers ``set_timesteps``).

    - ``trailing``: ``round(arange(T, 0, -T/N)) - 1`` -> 999, 979, ..., 19 for N = 50 (the CogVideoX
      setting, and the only one for which the samplers' hard-coded stride ``T // N`` is right);
    - ``leading``: ``arange(N) * (T // N) + steps_offset``, reversed;
    - ``linspace``: ``round(linspace(0, T - 1, N))``, reversed.
    """
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"num_inference_steps={num_inference_steps!r} must be a positive integer")
    if num_inference_steps > num_train_timesteps:
        raise ValueError(
            f"num_inference_steps={num_inference_steps} cannot exceed num_train_timesteps="
            f"{num_train_timesteps}"
        )
    n, t_max = num_inference_steps, num_train_timesteps
    # Plain float64 Python arithmetic reproducing numpy's linspace/arange element formulas (the
    # reference uses numpy; torch's linspace/arange round differently in the last bit, which flips
    # round() on a few step counts). Python's round() is round-half-even, like numpy's.
    if spacing == "linspace":
        step = (t_max - 1) / (n - 1) if n > 1 else 0.0
        values = [i * step for i in range(n)]
        if n > 1:
            values[-1] = float(t_max - 1)
        ts = [round(v) for v in reversed(values)]
    elif spacing == "leading":
        ts = [i * (t_max // n) + steps_offset for i in reversed(range(n))]
    elif spacing == "trailing":
        # numpy arange(T, 0, -T/N): length ceil(-T / (-T/N)) (may be N + 1), element i = T + i * delta
        # with delta = (T + step) - T.
        step = -t_max / n
        length = math.ceil((0 - t_max) / step)
        delta = (t_max + step) - t_max
        ts = [round(t_max + i * delta) - 1 for i in range(length)]
    else:
        raise ValueError(f"timestep_spacing={spacing!r} is not one of {list(_SPACINGS)}")
    return torch.tensor(ts, dtype=torch.int64)


class NoiseSchedule:
    """The cumulative ``alpha_bar`` table of a :class:`SchedulerConfig`, plus the forward process.

    ``alphas_cumprod[t]`` is the signal fraction at train timestep ``t``; ``final_alpha_cumprod`` is the
    value used "after" timestep 0 (1.0 when ``set_alpha_to_one``).
    """

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        betas = make_betas(config)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        alphas_cumprod = shift_snr(alphas_cumprod, config.snr_shift_scale)
        if config.rescale_betas_zero_snr:
            alphas_cumprod = rescale_zero_terminal_snr(alphas_cumprod)
        self.betas = betas
        self.alphas_cumprod = alphas_cumprod
        self.final_alpha_cumprod = (
            torch.tensor(1.0) if config.set_alpha_to_one else alphas_cumprod[0].clone()
        )
        # Both samplers start from plain N(0, I) and never scale the model input.
        self.init_noise_sigma = 1.0

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    def timesteps(self, num_inference_steps: int, device: torch.device | str | None = None):
        """The inference timesteps of this config (see :func:`inference_timesteps`)."""
        ts = inference_timesteps(
            num_inference_steps,
            spacing=self.config.timestep_spacing,
            num_train_timesteps=self.config.num_train_timesteps,
            steps_offset=self.config.steps_offset,
        )
        return ts.to(device) if device is not None else ts

    def alpha_at(self, timestep: int | torch.Tensor) -> torch.Tensor:
        """``alpha_bar`` at a train timestep; ``final_alpha_cumprod`` for a negative one."""
        t = int(timestep)
        return self.alphas_cumprod[t] if t >= 0 else self.final_alpha_cumprod

    def _coefficients(self, like: torch.Tensor, timesteps: torch.Tensor):
        """``sqrt(a_t)`` and ``sqrt(1 - a_t)`` in ``like``'s dtype, shaped to broadcast over it.

        The table is cast to ``like.dtype`` before the square roots, as the reference does.
        """
        table = self.alphas_cumprod.to(device=like.device, dtype=like.dtype)
        a = table[torch.as_tensor(timesteps, device=like.device)].flatten()
        shape = (-1,) + (1,) * (like.ndim - 1)
        return (a**0.5).reshape(shape), ((1 - a) ** 0.5).reshape(shape)

    def add_noise(
        self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """Forward process ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps``; ``timesteps`` per batch item."""
        sqrt_a, sqrt_1ma = self._coefficients(original, timesteps)
        return sqrt_a * original + sqrt_1ma * noise

    def get_velocity(
        self, sample: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """The v-prediction target ``v = sqrt(a_t) eps - sqrt(1 - a_t) x`` (Salimans & Ho 2022).

        With ``sample = x_0`` this is the training target; the CogVideoX trainers also call it with
        ``(v_hat, x_t)`` in place of ``(x_0, eps)``, which gives ``x0_hat`` (docs/diffusion.md §V-prediction).
        """
        sqrt_a, sqrt_1ma = self._coefficients(sample, timesteps)
        return sqrt_a * noise - sqrt_1ma * sample
