"""Step caching (cogvx.expert_dit.caching) against the plain forward (ExpertDiT.forward).

A short "sampling" loop feeds each step's output back as a slightly changed input, so that the
caches see a realistic sequence of similar steps.
"""

from __future__ import annotations

import pytest
import torch

from cogvx.expert_dit import DiTConfig, ExpertDiT
from cogvx.expert_dit.caching import (
    CacheState,
    FirstBlockCache,
    GuidancePlan,
    PyramidBroadcast,
    StepCaching,
    TaylorForecast,
    TeaCache,
    cached_forward,
    forecast_residual,
)
from cogvx.expert_dit.geometry import unpatchify
from cogvx.expert_dit.positions import token_grid

STEPS = 8
VARIANTS = {
    "2b-sincos": DiTConfig.tiny(),
    "5b-rope": DiTConfig.tiny(use_rotary_positional_embeddings=True),
}
TIMESTEPS = torch.linspace(900, 50, STEPS).round()


def _model(name: str = "5b-rope", layers: int = 3) -> ExpertDiT:
    torch.manual_seed(0)
    model = ExpertDiT(VARIANTS[name].replace(num_layers=layers)).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():  # every weight, the zero-initialised modulation too
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm) and m.weight is not None:
                m.weight.add_(1.0)  # gains near 1 keep activations in range
    return model


def _inputs(model: ExpertDiT, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    c = model.config
    g = torch.Generator().manual_seed(3)
    latents = torch.randn(
        batch, c.sample_latent_frames, c.in_channels, c.sample_height, c.sample_width, generator=g
    )
    text = torch.randn(batch, 8, c.text_embed_dim, generator=g)
    return latents, text


def _loop(model, caching: StepCaching | None, branches=("uncond", "cond"), timesteps=TIMESTEPS):
    """-> (outputs per step, final state); the next input moves a little towards the output."""
    latents, text = _inputs(model, batch=len(branches))
    state = CacheState()
    outs = []
    with torch.no_grad():
        for i, t in enumerate(timesteps):
            if caching is None:
                out = model(latents, text, t.expand(latents.shape[0]))
            else:
                out, state = cached_forward(
                    model,
                    latents,
                    text,
                    t.expand(latents.shape[0]),
                    caching=caching,
                    state=state,
                    step=i,
                    num_steps=STEPS,
                    branches=branches,
                )
            outs.append(out)
            latents = latents + 0.01 * out
    return outs, state


@pytest.mark.parametrize(
    "caching",
    [
        StepCaching(),
        StepCaching(TeaCache(0.0)),
        StepCaching(TeaCache(0.0, signal="modulated", coefficients=())),
        StepCaching(FirstBlockCache(0.0)),
        StepCaching(attention=PyramidBroadcast(every=1, timestep_range=(0, 1000))),
        StepCaching(FirstBlockCache(0.0), PyramidBroadcast(every=1)),
        StepCaching(FirstBlockCache(0.0, order=2)),
        StepCaching(TaylorForecast(interval=1, order=2, warmup=1)),
    ],
    ids=[
        "none",
        "teacache0",
        "teacache-mod0",
        "fbcache0",
        "pab1",
        "fbcache0+pab1",
        "fbcache0-order2",
        "taylor-interval1",
    ],
)
@pytest.mark.parametrize("variant", ["2b-sincos", "5b-rope"])
def test_exact_settings_equal_plain_forward_bitwise(caching: StepCaching, variant: str) -> None:
    model = _model(variant)
    plain, _ = _loop(model, None)
    cached, state = _loop(model, caching)
    for step, (a, b) in enumerate(zip(plain, cached, strict=True)):
        assert torch.equal(a, b), f"step {step} differs"
    report = state.report()
    assert report.steps == STEPS
    assert report.blocks_computed == report.blocks_total == STEPS * 2 * model.config.num_layers
    assert report.branch_passes == (2 * STEPS, 0)


@pytest.mark.parametrize(
    ("caching", "what"),
    [
        (StepCaching(TeaCache(0.4, signal="modulated", coefficients=())), "skipped"),
        (StepCaching(FirstBlockCache(0.5)), "skipped"),
        (StepCaching(attention=PyramidBroadcast(every=2, timestep_range=(0, 1000))), "attention"),
    ],
    ids=["teacache", "fbcache", "pab"],
)
def test_thresholds_skip_work_and_report_it(caching: StepCaching, what: str) -> None:
    model = _model()
    fine = torch.linspace(520, 480, STEPS)  # a fine schedule: neighbouring steps are similar
    plain, _ = _loop(model, None, timesteps=fine)
    cached, state = _loop(model, caching, timesteps=fine)
    report = state.report()
    if what == "skipped":
        assert report.branch_passes[1] > 0
        assert report.blocks_computed < report.blocks_total
    else:
        assert report.attention_reused > 0
    # The first and the last step always compute: the first is exact.
    assert torch.equal(plain[0], cached[0])
    assert not report.decisions[0].skipped and not report.decisions[-1].skipped
    # A random model is far from smooth in t, so closeness is checked on the trained shapes model
    # (apps/infer/tests/test_step_cache.py); here: reuse changed the outputs, all finite.
    assert any(not torch.equal(a, b) for a, b in zip(plain, cached, strict=True))
    assert all(bool(torch.isfinite(b).all()) for b in cached)
    assert "blocks computed" in report.format()


def test_fbcache_skip_adds_the_cached_residual_of_the_remaining_blocks() -> None:
    """A skipped step's output is the first block's output plus the remaining blocks' residual
    from the last computed step (diffusers FirstBlockCache), recomputed here by hand."""
    model = _model("2b-sincos")
    latents, text = _inputs(model)
    caching = StepCaching(FirstBlockCache(1e9))  # skip whenever allowed
    t0, t1 = torch.tensor(500.0), torch.tensor(480.0)
    with torch.no_grad():
        _, state = cached_forward(
            model, latents, text, t0, caching=caching, state=CacheState(), step=0, num_steps=4,
            branches=("uncond", "cond"),
        )  # fmt: skip
        out, state = cached_forward(
            model, latents, text, t1, caching=caching, state=state, step=1, num_steps=4,
            branches=("uncond", "cond"),
        )  # fmt: skip
        assert state.decisions[-1].skipped == ("uncond", "cond")
        assert state.decisions[-1].blocks_computed == 2  # the first block of each branch
        # By hand: the residual of blocks 2.. at t0, added to block 1's output at t1.
        blocks = model.blocks()
        _, frames, _, height, width = latents.shape
        grid = token_grid(model.config, frames, height, width)
        x0 = model.patch_embed(text, latents)
        x0 = model._add_absolute_positions(x0, 8, grid)

        def first(t):
            temb = model.embed_time(t, batch=2)
            return blocks[0](x0, temb, 8), temb

        h0, temb0 = first(t0)
        rest = h0
        for block in blocks[1:]:
            rest = block(rest, temb0, 8)
        h1, temb1 = first(t1)
        x = h1 + (rest - h0)
        video = model.proj_out(model.norm_out(model.norm_final(x[:, 8:]), temb1))
        expected = unpatchify(video, grid, model.config.patch_size, model.config.patch_t)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_forecast_residual_reproduces_polynomials_of_its_degree() -> None:
    """Degree m through m + 1 points is exact for polynomials of degree <= m, on unequal steps."""
    g = torch.Generator().manual_seed(5)
    a, b, c = (torch.randn(2, 7, 5, generator=g, dtype=torch.float64) for _ in range(3))

    def poly(s: float) -> torch.Tensor:
        return a + b * s + c * s * s

    history = [(s, poly(s)) for s in (1, 2, 5, 8)]  # warm-up steps 1, 2, then interval 3
    for step in (9, 10, 13):
        torch.testing.assert_close(forecast_residual(history, step, 2), poly(step))
        # degree 1 uses the last two points only: exact for a line through them
        line = history[-2][1] + (history[-1][1] - history[-2][1]) * (step - 5) / 3
        torch.testing.assert_close(forecast_residual(history, step, 1), line)
        assert torch.equal(forecast_residual(history, step, 0), history[-1][1])
    assert torch.equal(forecast_residual(history[:1], 9, 2), history[0][1])  # one point: reuse
    with pytest.raises(ValueError, match="history is empty"):
        forecast_residual([], 3, 1)


def test_taylor_forecast_schedule_and_forecast_step() -> None:
    """Blocks run on the warm-up steps, every interval-th step after them and the last step; a
    forecast step's output is the patch embedding plus the linear extrapolation of the two last
    computed blocks' residuals, recomputed here by hand."""
    cache = TaylorForecast(interval=3, order=1, warmup=2)
    assert [i for i in range(12) if cache.computes(i, 12)] == [0, 1, 2, 5, 8, 11]
    model = _model("2b-sincos")
    latents, text = _inputs(model)
    caching = StepCaching(cache)
    timesteps = torch.tensor([900.0, 860.0, 820.0, 780.0])
    branches = ("uncond", "cond")
    state = CacheState()
    outs = []
    with torch.no_grad():
        for i, t in enumerate(timesteps):
            out, state = cached_forward(
                model, latents + 0.1 * i, text, t, caching=caching, state=state, step=i,
                num_steps=12, branches=branches,
            )  # fmt: skip
            outs.append(out)
        decisions = state.decisions
        assert [d.skipped for d in decisions] == [(), (), (), branches]
        assert [d.blocks_computed for d in decisions] == [6, 6, 6, 0]
        _, frames, _, height, width = latents.shape
        grid = token_grid(model.config, frames, height, width)

        def embed(i: int) -> torch.Tensor:
            x = model.patch_embed(text, latents + 0.1 * i)
            return model._add_absolute_positions(x, 8, grid)

        def residual(i: int) -> torch.Tensor:
            x = x_in = embed(i)
            temb = model.embed_time(timesteps[i], batch=2)
            for block in model.blocks():
                x = block(x, temb, 8)
            return x - x_in

        forecast = 2 * residual(2) - residual(1)  # the line through steps 1 and 2, at step 3
        x = embed(3) + forecast
        temb3 = model.embed_time(timesteps[3], batch=2)
        video = model.proj_out(model.norm_out(model.norm_final(x[:, 8:]), temb3))
        expected = unpatchify(video, grid, model.config.patch_size, model.config.patch_t)
        plain2 = model(latents + 0.2, text, timesteps[2].expand(2))
    torch.testing.assert_close(outs[2], plain2, rtol=1e-5, atol=1e-6)  # a computed step
    torch.testing.assert_close(outs[3], expected, rtol=1e-5, atol=1e-5)


def test_fbcache_order1_forecasts_the_skipped_residual() -> None:
    """FirstBlockCache(order=1) skips on the same decisions as order 0, and a skipped step adds
    the linear extrapolation of the remaining blocks' residuals instead of the last one."""
    model = _model()
    fine = torch.linspace(520, 480, STEPS)
    _, reuse = _loop(model, StepCaching(FirstBlockCache(0.5)), timesteps=fine)
    outs, forecast = _loop(model, StepCaching(FirstBlockCache(0.5, order=1)), timesteps=fine)
    assert reuse.report().branch_passes[1] > 0
    first_skip = next(i for i, d in enumerate(forecast.decisions) if d.skipped)
    # Up to the first skip both runs are identical, so they decide the same there.
    assert [d.skipped for d in reuse.decisions[: first_skip + 1]] == [
        d.skipped for d in forecast.decisions[: first_skip + 1]
    ]
    kept = forecast.branch("cond").history
    assert 1 <= len(kept) <= 2 and all(isinstance(s, int) for s, _ in kept)
    assert all(bool(torch.isfinite(o).all()) for o in outs)


def test_partial_branches_compute_only_the_branches_that_need_it() -> None:
    """Per-branch decisions: a branch without a cache computes while the other reuses."""
    model = _model()
    latents, text = _inputs(model)
    caching = StepCaching(TeaCache(1e9))
    with torch.no_grad():
        # Warm only the "cond" branch, then evaluate both: uncond computes, cond skips.
        _, state = cached_forward(
            model, latents[1:], text[1:], 500.0, caching=caching, state=CacheState(),
            step=0, num_steps=4, branches=("cond",),
        )  # fmt: skip
        out, state = cached_forward(
            model, latents, text, 480.0, caching=caching, state=state, step=1, num_steps=4,
            branches=("uncond", "cond"),
        )  # fmt: skip
        plain = model(latents[:1], text[:1], 480.0)
    assert state.decisions[-1].skipped == ("cond",)
    assert state.decisions[-1].blocks_computed == model.config.num_layers
    torch.testing.assert_close(out[:1], plain, rtol=1e-5, atol=1e-5)


def test_guidance_plan_schedule() -> None:
    plan = GuidancePlan(stop_fraction=0.5)
    assert [plan.guided(i, 10, 500) for i in range(10)] == [True] * 5 + [False] * 5
    interval = GuidancePlan(interval=(200, 700))
    assert [interval.guided(0, 10, t) for t in (900, 700, 400, 200, 100)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert GuidancePlan().is_reference and GuidancePlan(stop_fraction=1.0).is_reference
    assert not GuidancePlan(uncond_every=2).is_reference


def test_teacache_rescale_uses_the_published_polynomial() -> None:
    cache = TeaCache(0.1)
    # TeaCache4CogVideoX's 2B polynomial at 0.1, evaluated independently with numpy.
    import numpy as np

    coeffs = [-3.10658903e01, 2.54732368e01, -5.92380459e00, 1.75769064e00, -3.61568434e-03]
    assert cache.rescale(0.1, rope=False) == pytest.approx(float(np.poly1d(coeffs)(0.1)))
    assert TeaCache(0.1, coefficients=()).rescale(0.25, rope=True) == 0.25


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: TeaCache(-0.1), "cache.threshold=-0.1"),
        (lambda: TeaCache(float("nan")), "cache.threshold=nan"),
        (lambda: TeaCache(0.1, signal="x"), "cache.signal='x'"),
        (lambda: TeaCache(0.1, coefficients=(1.0, float("inf"))), "cache.coefficients"),
        (lambda: FirstBlockCache(-1), "cache.threshold=-1"),
        (lambda: FirstBlockCache(0.1, order=-1), "cache.order=-1"),
        (lambda: TeaCache(0.1, order=1.5), "cache.order=1.5"),
        (lambda: TaylorForecast(interval=0), "cache.interval=0"),
        (lambda: TaylorForecast(order=True), "cache.order=True"),
        (lambda: TaylorForecast(warmup=0), "cache.warmup=0"),
        (lambda: PyramidBroadcast(every=0), "cache.attention_every=0"),
        (lambda: PyramidBroadcast(timestep_range=(800, 100)), "cache.attention_range"),
        (lambda: GuidancePlan(stop_fraction=1.5), "guidance.stop_fraction=1.5"),
        (lambda: GuidancePlan(interval=(1, 2, 3)), "guidance.interval"),
        (lambda: GuidancePlan(uncond_every=0), "guidance.uncond_every=0"),
    ],
)
def test_bad_options_name_the_parameter(build, match: str) -> None:
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(".", r"\.")):
        build()


def test_bad_state_and_branches() -> None:
    model = _model()
    latents, text = _inputs(model)
    with pytest.raises(ValueError, match="branches"):
        cached_forward(
            model, latents, text, 1.0, caching=StepCaching(), state=CacheState(), step=0,
            num_steps=1, branches=("a", "a"),
        )  # fmt: skip
    with pytest.raises(TypeError, match="CacheState"):
        cached_forward(
            model, latents, text, 1.0, caching=StepCaching(), state=None, step=0, num_steps=1
        )
    with pytest.raises(TypeError, match="residual="):
        StepCaching(residual=PyramidBroadcast())
