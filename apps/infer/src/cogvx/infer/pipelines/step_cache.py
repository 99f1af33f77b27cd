"""One denoising step's prediction with step caching and cheaper guidance (docs/pipelines.md
§Step caching).

:meth:`VideoPipeline._denoise` calls :func:`cached_prediction` instead of the plain transformer
call + CFG when the call has a ``cache`` or a ``guidance_plan`` that is not the reference's. It
decides which CFG branches the transformer evaluates this step (:class:`GuidancePlan`), runs
:func:`cogvx.expert_dit.caching.cached_forward` on them, and combines the branch predictions into
the guided velocity. The cache state goes in and comes back; nothing is kept on the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from cogvx.expert_dit.caching import (
    CacheState,
    FirstBlockCache,
    GuidancePlan,
    PyramidBroadcast,
    StepCaching,
    TaylorForecast,
    TeaCache,
    cached_forward,
)
from cogvx.expert_dit.transformer import ExpertDiT
from cogvx.infer.validation import describe, invalid

__all__ = ["cached_prediction", "resolve_caching", "resolve_guidance_plan"]

AnyCaching = StepCaching | TeaCache | FirstBlockCache | TaylorForecast | PyramidBroadcast | None


def resolve_caching(cache: AnyCaching) -> StepCaching | None:
    """The call's ``cache`` as a :class:`StepCaching` (None when it caches nothing)."""
    if cache is None:
        return None
    if isinstance(cache, (TeaCache, FirstBlockCache, TaylorForecast)):
        cache = StepCaching(residual=cache)
    elif isinstance(cache, PyramidBroadcast):
        cache = StepCaching(attention=cache)
    if not isinstance(cache, StepCaching):
        raise invalid(
            "cache",
            describe(cache),
            "expected None, a StepCaching, TeaCache, FirstBlockCache, TaylorForecast or "
            "PyramidBroadcast (cogvx.expert_dit.caching)",
            TypeError,
        )
    return cache if cache.active else None


def resolve_guidance_plan(plan: GuidancePlan | None) -> GuidancePlan | None:
    """The call's ``guidance_plan`` (None when it is the reference's: guidance on every step)."""
    if plan is None:
        return None
    if not isinstance(plan, GuidancePlan):
        raise invalid(
            "guidance_plan",
            describe(plan),
            "expected None or a cogvx.expert_dit.caching.GuidancePlan",
            TypeError,
        )
    return None if plan.is_reference else plan


def cached_prediction(
    transformer: Any,
    latents: torch.Tensor,
    embeds: torch.Tensor,
    t: torch.Tensor,
    *,
    step: int,
    num_steps: int,
    do_cfg: bool,
    scale_at: Callable[[], float],
    transformer_input: Callable[[torch.Tensor, bool], torch.Tensor],
    caching: StepCaching | None,
    plan: GuidancePlan | None,
    state: CacheState,
    ofs: torch.Tensor | None,
) -> tuple[torch.Tensor, CacheState, float]:
    """The (guided) velocity of one step ``-> (v, new state, guidance scale used)``.

    ``embeds`` is the call's text batch (``[uncond; cond]`` with ``do_cfg``); ``scale_at()`` the
    step's guidance scale; ``transformer_input(latents, doubled)`` the task's transformer input.
    """
    if not isinstance(transformer, ExpertDiT):
        raise invalid(
            "cache",
            "<set>",
            f"step caching needs a cogvx ExpertDiT transformer, got {type(transformer).__name__}",
            TypeError,
        )
    caching = caching if caching is not None else StepCaching()
    layers = transformer.config.num_layers
    t_value = float(t)

    def run(inp: torch.Tensor, text: torch.Tensor, branches: tuple[str, ...], guidance: str):
        return cached_forward(
            transformer,
            inp,
            text,
            t.expand(inp.shape[0]),
            caching=caching,
            state=state,
            step=step,
            num_steps=num_steps,
            branches=branches,
            ofs=ofs,
            blocks_total=layers * (2 if do_cfg else 1),
            guidance=guidance,
        )

    if not do_cfg:
        v, state = run(transformer_input(latents, False), embeds, ("cond",), "none")
        return v.float(), state, 1.0
    half = embeds.shape[0] // 2
    cond_text = embeds[half:]
    if plan is not None and not plan.guided(step, num_steps, t_value):
        v, state = run(transformer_input(latents, False), cond_text, ("cond",), "off")
        return v.float(), state, 1.0
    scale = scale_at()
    guided_before = sum(d.guidance in ("cfg", "uncond-reused") for d in state.decisions)
    every = 1 if plan is None else plan.uncond_every
    if state.uncond_offset is None or guided_before % every == 0:
        model_input = transformer_input(torch.cat([latents] * 2), True)
        v, state = run(model_input, embeds, ("uncond", "cond"), "cfg")
        v = v.float()
        uncond, cond = v.chunk(2)
        if every > 1:
            state = replace(state, uncond_offset=uncond - cond)
        return uncond + scale * (cond - uncond), state, scale
    cond, state = run(transformer_input(latents, False), cond_text, ("cond",), "uncond-reused")
    cond = cond.float()
    uncond = cond + state.uncond_offset
    return uncond + scale * (cond - uncond), state, scale
