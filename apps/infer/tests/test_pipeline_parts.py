"""Shape rules, precision guard, staging, model folders and the T5 wrapper."""

from __future__ import annotations

import json
import logging
import shutil
from types import SimpleNamespace

import pytest
import torch

from cogvx.infer import (
    ModelFolder,
    NonFiniteError,
    Residency,
    ShapeRules,
    StageReport,
    T5TextEncoder,
    TextToVideoPipeline,
    load_tokenizer,
    resolve_dtype,
)
from cogvx.infer.staging import Component

SPEC = dict(name="t2v-rope-dpm", rope=True, sampler="dpm", tokenizer="json", snr_shift=1.0)


def dit(**kw):
    base = dict(
        temporal_compression_ratio=4,
        patch_size=2,
        patch_size_t=None,
        sample_height=60,
        sample_width=90,
        sample_frames=49,
        use_learned_positional_embeddings=False,
    )
    base.update(kw)
    return SimpleNamespace(**base)


# ---- shapes ------------------------------------------------------------------------------------


def test_v10_rules_errors_and_snapping():
    rules = ShapeRules.for_model(dit())
    assert rules.defaults().num_frames == 49 and rules.defaults().fps == 8
    assert (rules.defaults().height, rules.defaults().width) == (480, 720)
    shape = rules.check(49, 480, 720)
    assert (shape.latent_frames, shape.padded_latent_frames) == (13, 13)
    with pytest.raises(ValueError, match=r"num_frames=50 .* 8N\+1.* nearest valid value is 49"):
        rules.check(50, 480, 720)
    with pytest.raises(ValueError, match=r"num_frames=13 .*nearest valid value is 17"):
        rules.check(13, 480, 720)
    assert rules.check(13, 480, 720, strict_frames=False).latent_frames == 4
    with pytest.raises(
        ValueError, match=r"height=484 is not a multiple of 16.*nearest valid value is 480"
    ):
        rules.check(49, 484, 720)
    snapped = rules.check(50, 484, 725, snap=True)
    assert (snapped.num_frames, snapped.height, snapped.width) == (49, 480, 720)
    with pytest.raises(ValueError, match="num_frames=0"):
        rules.check(0, 480, 720)


def test_v15_rules_pad_and_default_size_is_not_the_2400_pixel_trap():
    rules = ShapeRules.for_model(
        dit(patch_size_t=2, sample_height=300, sample_width=300, sample_frames=81)
    )
    d = rules.defaults()
    assert (d.height, d.width, d.num_frames, d.fps) == (768, 1360, 81, 16)
    shape = rules.check(81, 768, 1360)
    assert (shape.latent_frames, shape.padded_latent_frames, shape.additional_frames) == (21, 22, 1)
    assert rules.check(161, 768, 1360).padded_latent_frames == 42
    with pytest.raises(ValueError, match=r"16N\+1.*nearest valid value is 81"):
        rules.check(85, 768, 1360)
    # Portrait sizes are fine (RoPE grid follows the latents).
    assert rules.check(81, 1360, 768).height == 1360


def test_learned_position_models_run_only_at_their_size():
    rules = ShapeRules.for_model(dit(use_learned_positional_embeddings=True))
    rules.check(49, 480, 720)
    with pytest.raises(
        ValueError, match=r"learned position table.*num_frames=49, height=480, width=720"
    ):
        rules.check(49, 480, 736)


# ---- precision ---------------------------------------------------------------------------------


def test_dtype_resolution():
    assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_dtype(torch.float16, "cpu") == torch.float16
    with pytest.raises(ValueError, match="dtype='fp8'"):
        resolve_dtype("fp8", "cpu")


def test_non_finite_latents_stop_with_a_clear_message(make_folder):
    pipe = TextToVideoPipeline.from_pretrained(make_folder(SPEC))
    with torch.no_grad():
        pipe.transformer.peek().proj_out.bias.fill_(float("inf"))
    with pytest.raises(NonFiniteError, match=r"step 0 \(t=999\).*dtype=torch.float32"):
        pipe("a cat", height=16, width=32, num_frames=9, num_inference_steps=2, progress=False)
    pipe16 = TextToVideoPipeline.from_pretrained(make_folder(SPEC), torch_dtype="fp16")
    with torch.no_grad():
        pipe16.transformer.peek().proj_out.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match=r"fp16 overflows.*bf16"):
        pipe16("a cat", height=16, width=32, num_frames=9, num_inference_steps=2, progress=False)


# ---- staging -----------------------------------------------------------------------------------


def test_staged_pipeline_frees_each_stage_and_matches_resident(make_folder):
    folder = make_folder(SPEC)
    kw = dict(
        prompt="a red car", height=16, width=32, num_frames=9, num_inference_steps=3, progress=False
    )
    resident = TextToVideoPipeline.from_pretrained(folder)
    staged = TextToVideoPipeline.from_pretrained(folder, residency="staged")
    assert all(c.peek() is None for c in (staged.text_encoder, staged.transformer, staged.vae))
    loads = []
    staged.transformer.on_load.append(lambda m: loads.append(type(m).__name__))
    out = staged(**kw, generator=torch.Generator().manual_seed(0))
    assert loads == ["ExpertDiT"]
    assert all(c.peek() is None for c in (staged.text_encoder, staged.transformer, staged.vae))
    ref = resident(**kw, generator=torch.Generator().manual_seed(0)).frames
    assert torch.equal(out.frames, ref)
    names = [s.name for s in out.report.stages]
    assert names == ["text encoding", "denoising", "decoding"]
    assert all(s.seconds > 0 and s.peak_rss_bytes > 0 for s in out.report.stages)
    assert "decoding" in out.report.format()


def test_offload_component_moves_back_to_cpu():
    lin = torch.nn.Linear(2, 2)
    comp = Component("x", module=lin, loader=lambda: lin, residency=Residency.OFFLOAD)
    assert comp.acquire(torch.device("cpu")) is lin
    comp.release()
    assert comp.peek() is lin
    with pytest.raises(ValueError, match="cannot be staged"):
        Component("y", module=lin, residency=Residency.STAGED)


def test_stage_report_format():
    report = StageReport()
    with report.stage("text encoding"):
        torch.ones(10).sum()
    assert report.stages[0].name == "text encoding"
    assert "total" in report.format()


# ---- model folders -----------------------------------------------------------------------------


def test_model_folder_errors(make_folder, tmp_path):
    folder = make_folder(SPEC)
    assert ModelFolder.open(folder).task == "t2v"
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        ModelFolder.open(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(FileNotFoundError, match=r"missing component folder.*vae"):
        ModelFolder.open(broken)
    (broken / "model_index.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"model_index.json"):
        TextToVideoPipeline.from_pretrained(broken)
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    index = json.loads((other / "model_index.json").read_text())
    index["_class_name"] = "StableDiffusionPipeline"
    (other / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="not a CogVideoX pipeline"):
        ModelFolder.open(other)


def test_sampler_override(make_folder):
    from cogvx.expert_dit.schedule import SchedulerConfig

    folder = make_folder(SPEC)
    assert TextToVideoPipeline.from_pretrained(folder).scheduler.sampler == "dpm"
    pipe = TextToVideoPipeline.from_pretrained(folder, sampler="ddim")
    assert pipe.scheduler.sampler == "ddim" and pipe.scheduler.snr_shift_scale == 1.0
    custom = SchedulerConfig.cogvideox_2b()
    assert TextToVideoPipeline.from_pretrained(folder, sampler=custom).scheduler == custom


# ---- text encoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["spiece", "json"])
def test_t5_wrapper_pads_truncates_and_uses_no_mask(make_folder, kind, caplog):
    spec = dict(SPEC, name=f"t2v-tok-{kind}", tokenizer=kind)
    folder = make_folder(spec)
    tok = load_tokenizer(folder / "tokenizer")
    enc = T5TextEncoder.from_pretrained(folder / "tokenizer", folder / "text_encoder")
    assert enc.hidden_size == 32
    ids = enc.tokenize(["a cat", "a panda"], 12)
    assert ids.shape == (2, 12)
    assert int(ids[0, -1]) == tok.pad_token_id  # padded to the full length
    out = enc.encode(["a cat", "a panda"], max_sequence_length=12)
    assert out.shape == (2, 12, 32)
    with torch.no_grad():
        direct = enc.model(ids)
        # transformers' T5 on the same folder: equal without a mask (padding tokens are encoded
        # too, as the reference pipelines do), different with one
        from transformers import T5EncoderModel

        ref = T5EncoderModel.from_pretrained(str(folder / "text_encoder")).eval()
        unmasked = ref(ids).last_hidden_state
        masked = ref(ids, attention_mask=(ids != tok.pad_token_id).long()).last_hidden_state
    torch.testing.assert_close(out, direct, rtol=0, atol=0)
    torch.testing.assert_close(out, unmasked, rtol=1e-6, atol=1e-6)
    assert (masked - direct).abs().max() > 1e-4
    long_prompt = " ".join(["the quick brown fox jumps over the lazy dog"] * 3)
    with caplog.at_level(logging.WARNING):
        assert enc.encode(long_prompt, max_sequence_length=12).shape == (1, 12, 32)
    assert "truncated" in caplog.text
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        load_tokenizer(folder / "transformer")


def test_lifetime_peak_survives_stage_resets():
    from cogvx.infer.staging import peak_rss, stage_peak_rss

    report = StageReport(probe_rss=True)
    with report.stage("big"):
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB touched
        block.add_(1)
    before = peak_rss()
    del block
    with report.stage("small"):
        torch.ones(10).sum()
    # The reset of the second stage does not lose the first peak (the kernel updates its mark
    # lazily, so allow a MiB of slack for small frees between readings).
    assert peak_rss() >= before - 2**20
    assert before > 64 * 2**20
    assert report.stages[0].peak_rss_bytes >= report.stages[1].peak_rss_bytes - 2**20
    assert stage_peak_rss() <= peak_rss()
