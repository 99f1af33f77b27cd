"""VideoDataModule: manifest and sidecar folders, frame packs, bad files skipped and counted, the
pre-encoding cache (reuse, rebuild, resume), deterministic and resumable order, T2V / I2V fits."""

from __future__ import annotations

import logging
import shutil

import lightning as L
import pytest
import torch

from cogvx.train import DiTModule, VideoDataModule
from cogvx.train.cache import CachedSample, LatentCache
from cogvx.train.data import TrainBatch, build_catalog


def datamodule(source, folder, **kw) -> VideoDataModule:
    src = {"video_folder": str(source)} if source.is_dir() else {"manifest": str(source)}
    kw = {
        "short_side": 32,
        "max_frames": 9,
        "fps": 8.0,
        "max_text_length": 12,
        "token_budget": 60,
        **kw,
    }
    return VideoDataModule(**src, model_folder=str(folder), **kw)


def batches(dm: VideoDataModule) -> list[TrainBatch]:
    return list(dm.train_dataloader())


def test_manifest_gives_frame_packs_covering_every_sample_once(clips, tiny_t2v_folder):
    dm = datamodule(clips(5), tiny_t2v_folder)
    dm.setup("fit")
    seen = []
    for b in batches(dm):
        p = b.packed
        n = p.num_samples
        assert p.latent_tokens.shape == (n * 3 * 2 * 3, 4 * 2 * 2)  # 3 latent frames of 2x3 tokens
        assert p.text_embeds.shape == (n * 12, 32) and b.uncond.shape == (12, 32)
        assert p.seq_len <= 60
        seen += list(p.indices)
    assert sorted(seen) == list(range(5))


def test_folder_with_caption_sidecars(clips, tiny_t2v_folder):
    folder = clips(2, sidecars=True)
    shutil.copy(folder / "clip0.mp4", folder / "uncaptioned.mp4")
    cat = build_catalog(video_folder=str(folder))
    assert [r.caption for r in cat.records] == ["a red car drives", "a cat sits on a mat"]
    assert [(p.rsplit("/", 1)[-1], r.split(":")[0]) for p, r in cat.skipped] == [
        ("uncaptioned.mp4", "no_caption")
    ]
    dm = datamodule(folder, tiny_t2v_folder)
    dm.setup("fit")
    assert sum(b.packed.num_samples for b in batches(dm)) == 2


def test_bad_files_are_skipped_counted_and_logged(clips, tiny_t2v_folder, caplog):
    manifest = clips(3)
    folder = manifest.parent
    (folder / "clip1.mp4").write_bytes(b"not a video at all" * 20)  # corrupt
    (folder / "clip2.mp4").unlink()  # missing
    with manifest.open("a") as f:
        f.write('{"path": "clip9.mp4", "type": "video"}\n')  # invalid line
    with caplog.at_level(logging.WARNING, logger="cogvx.train.data"):
        cat = build_catalog(manifest=str(manifest))
    assert len(cat.records) == 1
    assert cat.reasons() == {"unreadable": 1, "missing": 1, "invalid_record": 1}
    assert "clip1.mp4" in caplog.text and "clip2.mp4" in caplog.text


def test_a_file_that_breaks_at_load_time_is_skipped_in_the_batch(clips, tiny_t2v_folder, caplog):
    dm = datamodule(clips(3), tiny_t2v_folder, token_budget=90)
    dm.setup("fit")
    bad = dm.catalog.records[1].path
    with open(bad, "r+b") as f:  # truncate after cataloguing: the header was fine
        f.truncate(600)
    with caplog.at_level(logging.WARNING, logger="cogvx.train.data"):
        got = batches(dm)
    skipped = [s for b in got for s in b.skipped]
    assert [s.index for s in skipped] == [1] and bad in skipped[0].reason
    assert bad in caplog.text
    assert sum(b.packed.num_samples for b in got if b.packed is not None) == 2


def test_all_bad_data_stops_with_a_clear_error(clips):
    manifest = clips(2)
    for p in manifest.parent.glob("*.mp4"):
        p.write_bytes(b"\x00" * 100)
    with pytest.raises(RuntimeError, match=r"no usable training sample .* 2 skipped .*unreadable"):
        build_catalog(manifest=str(manifest))


def test_order_is_deterministic_from_the_seed_and_resumable(clips, tiny_t2v_folder):
    manifest = clips(6)

    def order(dm):
        return [b.packed.indices for b in batches(dm)]

    a, b = datamodule(manifest, tiny_t2v_folder, token_budget=30), None
    a.setup("fit")
    full = order(a)
    assert len(full) == 6
    b = datamodule(manifest, tiny_t2v_folder, token_budget=30)
    b.setup("fit")
    it = iter(b.train_dataloader())
    first = [next(it).packed.indices for _ in range(2)]
    state = b.state_dict()
    assert first == full[:2] and state["sampler"]["step"] == 2
    c = datamodule(manifest, tiny_t2v_folder, token_budget=30)
    c.load_state_dict(state)
    c.setup("fit")
    loader = c.train_dataloader()
    assert len(loader) == 6  # the whole epoch, as Lightning counts it on resume
    assert [x.packed.indices for x in loader] == full[2:]
    other = datamodule(manifest, tiny_t2v_folder, token_budget=30, seed=1)
    other.setup("fit")
    assert order(other) != full


def test_cache_is_reused_rebuilt_for_new_encoders_and_equal_to_on_the_fly(
    clips, tiny_t2v_folder, tmp_path
):
    manifest = clips(3)
    cache_dir = tmp_path / "cache"
    dm = datamodule(manifest, tiny_t2v_folder, cache_dir=str(cache_dir))
    dm.prepare_data()
    dm.setup("fit")
    (fp_dir,) = list(cache_dir.iterdir())
    shards = {p.name: p.stat().st_mtime_ns for p in fp_dir.glob("*.safetensors")}
    cached = dm.dataset[0]

    again = datamodule(manifest, tiny_t2v_folder, cache_dir=str(cache_dir))
    again.prepare_data()  # everything valid: nothing re-encoded, no shard rewritten
    assert {p.name: p.stat().st_mtime_ns for p in fp_dir.glob("*.safetensors")} == shards

    live = datamodule(manifest, tiny_t2v_folder)
    live.setup("fit")
    fresh = live.dataset[0]
    assert torch.equal(cached["latents"], fresh["latents"])
    assert torch.equal(cached["text_embeds"], fresh["text_embeds"])

    other_vae = tmp_path / "vae2"
    shutil.copytree(tiny_t2v_folder / "vae", other_vae)
    cfg = other_vae / "config.json"
    cfg.write_text(cfg.read_text().replace('"scaling_factor": 1.15258426', '"scaling_factor": 0.7'))
    changed = datamodule(
        manifest, tiny_t2v_folder, cache_dir=str(cache_dir), vae_folder=str(other_vae)
    )
    changed.prepare_data()
    assert len(list(cache_dir.iterdir())) == 2  # a new fingerprint folder, built from scratch
    changed.setup("fit")
    assert not torch.equal(changed.dataset[0]["latents"], cached["latents"])


def test_interrupted_cache_build_resumes_with_the_missing_samples(tmp_path):
    calls: list[str] = []

    def encode(key: str) -> CachedSample:
        calls.append(key)
        if key == "k3" and len(calls) == 4:
            raise KeyboardInterrupt  # killed while encoding the 4th sample
        if key == "bad":
            raise ValueError("bad.mp4: cannot decode")
        return CachedSample(torch.full((1, 2), float(key[1:])), torch.zeros(3, 4))

    keys = ["k0", "k1", "k2", "k3", "bad", "k5"]
    cache = LatentCache(tmp_path, "fp", shard_size=2)
    with pytest.raises(KeyboardInterrupt):
        cache.build(keys, encode, progress=False)
    resumed = LatentCache(tmp_path, "fp", shard_size=2)
    assert resumed.num_entries == 2  # the one finished shard survived; nothing half-written
    assert not list((tmp_path / "fp").glob("*.partial*"))
    calls.clear()
    done, bad = resumed.build(keys, encode, progress=False)
    assert calls == ["k2", "k3", "bad", "k5"] and (done, bad) == (3, 1)
    assert resumed.bad_reason("bad") == "bad.mp4: cannot decode"
    assert LatentCache(tmp_path, "fp").load("k5").latents[0, 0] == 5.0
    calls.clear()
    assert LatentCache(tmp_path, "fp").build(keys, encode, progress=False) == (0, 0)
    assert calls == []


def trainer(**kw) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        **kw,
    )


def test_t2v_fit_from_a_manifest_from_scratch_exports_a_model_folder(
    clips, tiny_t2v_folder, tmp_path
):
    import json

    from cogvx.expert_dit import DiTConfig, ExpertDiT
    from cogvx.infer import TextToVideoPipeline

    cfg = DiTConfig.from_dict(json.loads((tiny_t2v_folder / "transformer/config.json").read_text()))
    module = DiTModule(transformer=cfg, export=True)
    tr = trainer(max_steps=3, default_root_dir=str(tmp_path / "run"))
    tr.fit(module, datamodule(clips(4), tiny_t2v_folder))
    metrics = tr.logged_metrics
    assert tr.global_step == 3 and torch.isfinite(metrics["train/loss"])
    assert metrics["train/real_tokens"] > 0
    assert {f"train/loss_bucket_{k}" for k in range(10)} <= set(metrics)

    out = tmp_path / "run" / "model"
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "CogVideoXPipeline"
    exported = ExpertDiT.from_pretrained(out / "transformer")
    for k, v in module.dit.state_dict().items():
        assert torch.equal(exported.state_dict()[k], v), k
    pipe = TextToVideoPipeline.from_pretrained(out)
    video = pipe(
        prompt="a red car drives",
        height=32,
        width=48,
        num_frames=9,
        num_inference_steps=2,
        max_sequence_length=12,
        output_type="pt",
        progress=False,
    )
    assert torch.isfinite(video.frames).all()


def test_i2v_fast_dev_run(clips, tiny_i2v_folder):
    module = DiTModule(model_folder=str(tiny_i2v_folder), image_dropout=0.0)
    dm = datamodule(clips(2), tiny_i2v_folder, image_conditioning=True, token_budget=30)
    tr = trainer(fast_dev_run=2)
    tr.fit(module, dm)
    assert tr.global_step == 2 and torch.isfinite(tr.logged_metrics["train/loss"])
