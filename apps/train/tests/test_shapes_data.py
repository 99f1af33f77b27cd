"""The shapes dataset generator and the shapes tokenizer / text encoder builders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cogvx.evals.shapes import (
    HELD_OUT_PAIRS,
    MIN_SIZE_FRACTION,
    MIN_TRAVEL_FRACTION,
    evaluate_shapes,
    vocabulary_words,
)
from cogvx.train.shapes import (
    ShapesDataConfig,
    build_text_encoder,
    build_tokenizer,
    draw_clip,
    make_shapes_dataset,
    sample_clip,
)
from cogvx.videoio import read_manifest, read_video, resolve_path


def test_clips_are_deterministic_and_independent_of_the_dataset_size():
    small, large = ShapesDataConfig(num_clips=4, seed=3), ShapesDataConfig(num_clips=40, seed=3)
    assert [sample_clip(small, i) for i in range(4)] == [sample_clip(large, i) for i in range(4)]
    assert sample_clip(small, 0) != sample_clip(ShapesDataConfig(seed=4), 0)


@pytest.mark.parametrize("pairs", ["train", "held_out"])
def test_geometry_pairs_and_captions_follow_the_vocabulary(pairs):
    cfg = ShapesDataConfig(num_clips=200, pairs=pairs, seed=1)
    specs = [sample_clip(cfg, i) for i in range(200)]
    for s in specs:
        assert s.size >= MIN_SIZE_FRACTION * cfg.width
        if s.motion != "still":
            side = cfg.width if s.motion in ("left", "right") else cfg.height
            assert s.travel >= MIN_TRAVEL_FRACTION * side
        for t in (0.0, 1.0):  # the whole shape stays inside the frame over the clip
            x, y = s.centre(t)
            assert s.size / 2 <= x <= cfg.width - s.size / 2
            assert s.size / 2 <= y <= cfg.height - s.size / 2
        assert s.caption.startswith(f"a {s.color} {s.shape} ")
    held = {(s.color, s.shape) in HELD_OUT_PAIRS for s in specs}
    assert held == ({True} if pairs == "held_out" else {False})
    assert {s.motion for s in specs} == {"left", "right", "up", "down", "still"}


def test_dataset_files_manifest_and_evaluator_agree(tmp_path):
    cfg = ShapesDataConfig(num_clips=6, seed=0)
    manifest = make_shapes_dataset(tmp_path / "d", cfg, progress=False)
    records = read_manifest(manifest)
    assert len(records) == 6
    items = []
    for i, r in enumerate(records):
        assert (r.frames, r.height, r.width, r.fps) == (9, 64, 64, 8.0)
        video = read_video(resolve_path(manifest, r)).frames
        drawn = draw_clip(sample_clip(cfg, i), 9, 64, 64)
        # yuv444p at crf 0: the file holds the drawn frames up to the RGB/YUV rounding
        assert np.abs(video.astype(int) - drawn.astype(int)).max() <= 2
        assert r.extra["shapes"]["color"] in r.caption
        items.append((video, r.caption))
    # the evaluator reads back what each caption says (the data is what it claims to be)
    report = evaluate_shapes(items)
    assert report.all_accuracy == 100.0, report.markdown()
    # a second run keeps the files and writes the same manifest; other settings are refused
    before = manifest.read_text()
    assert make_shapes_dataset(tmp_path / "d", cfg, progress=False).read_text() == before
    with pytest.raises(ValueError, match="other settings"):
        make_shapes_dataset(tmp_path / "d", ShapesDataConfig(num_clips=6, seed=1), progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_clips": 0}, "num_clips=0"),
        ({"size": (0.1, 0.2)}, "size="),
        ({"travel": (0.2, 0.5)}, "travel="),
        ({"pairs": "all"}, "pairs='all'"),
        ({"size": (0.4, 0.5), "travel": (0.5, 0.9)}, "do not fit"),
        ({"caption_drop_color": 1.5}, "caption_drop_color=1.5"),
        ({"twin_shapes": True, "pairs": "held_out"}, "twin_shapes=True needs pairs='train'"),
        ({"twin_shapes": True, "num_clips": 5}, "even num_clips"),
    ],
)
def test_bad_settings_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShapesDataConfig(**kwargs)


def test_colour_free_captions_change_only_the_captions(tmp_path):
    plain, drop = (
        ShapesDataConfig(num_clips=60, seed=2),
        ShapesDataConfig(num_clips=60, seed=2, caption_drop_color=0.5),
    )
    a, b = [sample_clip(plain, i) for i in range(60)], [sample_clip(drop, i) for i in range(60)]
    import dataclasses

    # same clips (pixels, shape, colour, motion), some captions without the colour word
    assert [dataclasses.replace(s, names_color=True) for s in b] == a
    free = [s for s in b if not s.names_color]
    assert 15 <= len(free) <= 45
    for s in free:
        assert s.caption.startswith(f"a {s.shape} ")
        assert s.color not in s.caption.split()
    # one folder serves both: the clips are kept, the manifest follows the captions asked for
    m = make_shapes_dataset(tmp_path / "d", ShapesDataConfig(num_clips=4, seed=2), progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "d" / "clips").iterdir()}
    cfg = ShapesDataConfig(num_clips=4, seed=2, caption_drop_color=1.0)
    make_shapes_dataset(tmp_path / "d", cfg, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "d" / "clips").iterdir()} == before
    captions = [r.caption for r in read_manifest(m)]
    assert captions == [sample_clip(cfg, i).caption for i in range(4)]
    assert all(
        len(c.split()) < len(sample_clip(plain, i).caption.split()) for i, c in enumerate(captions)
    )


def test_tokenizer_has_one_token_per_caption_word_and_loads_as_t5(tmp_path):
    from transformers import T5EncoderModel, T5Tokenizer

    build_tokenizer(tmp_path / "tok", max_length=16)
    build_text_encoder(tmp_path / "te", d_model=16, seed=0)
    tok = T5Tokenizer.from_pretrained(tmp_path / "tok")
    words = vocabulary_words()
    ids = tok(" ".join(words)).input_ids
    assert len(ids) == len(words) + 1 and ids[-1] == tok.eos_token_id  # one piece per word + </s>
    assert tok.unk_token_id not in ids
    assert tok("a purple circle").input_ids[1] == tok.unk_token_id
    assert (
        json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())["model_max_length"]
        == 16
    )
    model = T5EncoderModel.from_pretrained(tmp_path / "te")
    assert model.config.vocab_size >= len(tok)
    out = model(tok(["a red circle rises"], return_tensors="pt").input_ids).last_hidden_state
    assert out.shape == (1, 5, 16)


def test_twin_shapes_draw_each_clip_twice_with_two_training_shapes(tmp_path):
    import dataclasses

    cfg = ShapesDataConfig(num_clips=120, seed=5, twin_shapes=True)
    specs = [sample_clip(cfg, i) for i in range(120)]
    for a, b in zip(specs[0::2], specs[1::2]):
        assert a.shape != b.shape
        assert dataclasses.replace(b, shape=a.shape) == a  # all else is the same clip
        assert (a.color, a.shape) not in HELD_OUT_PAIRS
        assert (b.color, b.shape) not in HELD_OUT_PAIRS
    assert len({(s.color, s.shape) for s in specs}) == 15  # every training pair occurs
    manifest = make_shapes_dataset(
        tmp_path / "d", ShapesDataConfig(num_clips=4, seed=5, twin_shapes=True), progress=False
    )
    records = read_manifest(manifest)
    assert [r.extra["shapes"]["pair"] for r in records] == [0, 0, 1, 1]
    frames = [read_video(resolve_path(manifest, r)).frames.astype(int) for r in records]
    assert np.abs(frames[0] - frames[1]).max() > 100  # the shapes differ on screen
    # a folder of plain clips is not a folder of twins
    with pytest.raises(ValueError, match="twin_shapes"):
        make_shapes_dataset(tmp_path / "d", ShapesDataConfig(num_clips=4, seed=5), progress=False)


def test_twin_shapes_data_module_packs_whole_pairs(tmp_path):
    from cogvx.train.shapes import ShapesVideoDataModule

    dm = ShapesVideoDataModule(
        root=str(tmp_path / "d"), num_clips=8, twin_shapes=True, token_budget=256
    )  # 4 clips of 64 tokens per pack: two pairs
    dm.prepare_data()
    dm.setup("fit")
    assert dm.sample_groups() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    packs = list(dm.make_sampler(0, 1))
    assert sorted(i for p in packs for i in p) == list(range(8))
    for p in packs:
        assert len(p) == 4 and all(b == a + 1 and a % 2 == 0 for a, b in zip(p[0::2], p[1::2]))
    batch = next(iter(dm.train_dataloader()))
    assert batch.packed.num_samples == 4


def test_still_images_are_first_frames_captioned_without_motion(tmp_path):
    """``num_images`` adds PNG stills (frame 0 of the clips after the last one), recorded as
    one-frame image samples that the data module packs with the clips (one latent frame each)."""
    from cogvx.train.shapes import ShapesVideoDataModule
    from cogvx.videoio import read_image

    cfg = ShapesDataConfig(num_clips=4, num_images=6, seed=6)
    manifest = make_shapes_dataset(tmp_path / "d" / "train", cfg, progress=False)
    records = read_manifest(manifest)
    assert [r.type for r in records] == ["video"] * 4 + ["image"] * 6
    for i, r in enumerate(records[4:], start=4):
        spec = sample_clip(cfg, i)
        assert (r.frames, r.fps, r.caption) == (1, None, f"a {spec.color} {spec.shape}")
        assert (spec.color, spec.shape) not in HELD_OUT_PAIRS
        image = read_image(resolve_path(manifest, r))
        assert np.array_equal(image, draw_clip(spec, 9, 64, 64)[0])  # PNG: lossless
    # the clips are the same as without images; the folder serves both settings
    assert records[:4] == read_manifest(
        make_shapes_dataset(tmp_path / "d" / "train", ShapesDataConfig(num_clips=4, seed=6))
    )
    with pytest.raises(ValueError, match="num_images=-1"):
        ShapesDataConfig(num_images=-1)
    dm = ShapesVideoDataModule(
        root=str(tmp_path / "d"), num_clips=4, num_images=6, seed=6, token_budget=4096
    )
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.packed.num_samples == 10
    frames = sorted(t for t, _, _ in batch.packed.grids)
    assert frames == [1] * 6 + [3] * 4  # latent frames: stills 1, clips 3
