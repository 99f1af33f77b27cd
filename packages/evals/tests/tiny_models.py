"""Tiny random transformers models saved to a folder, to exercise the real local loaders."""

from __future__ import annotations

import json
from pathlib import Path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet (256 printable stand-ins for the 256 byte values)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def save_tiny_clip(folder: Path, *, seed: int = 0) -> Path:
    """A 1-layer CLIP (32-d, 16-d projection) with a byte-level CLIP tokenizer (no merges)."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    eos = vocab["<|endoftext|>"]
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=eos,
            pad_token_id=eos,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        ),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(cfg).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def save_tiny_vit(folder: Path, *, seed: int = 0) -> Path:
    """A 1-layer ViT in the ``facebook/dino-vitb16`` layout (ViTModel, no pooler)."""
    import torch
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=32,
        patch_size=16,
    )
    torch.manual_seed(seed)
    ViTModel(cfg, add_pooling_layer=False).save_pretrained(str(folder))
    return folder


def save_tiny_yolos(folder: Path, labels: list[str], *, seed: int = 0) -> Path:
    """A 1-layer YOLOS detector with its image processor (small resize) in one folder."""
    import torch
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    cfg = YolosConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=[64, 64],
        patch_size=16,
        num_detection_tokens=5,
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    torch.manual_seed(seed)
    YolosForObjectDetection(cfg).save_pretrained(str(folder))
    YolosImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}).save_pretrained(str(folder))
    return folder


def save_tiny_videomae(folder: Path, labels: list[str], *, favourite: int, seed: int = 0) -> Path:
    """A 1-layer VideoMAE classifier whose head always prefers class ``favourite`` strongly."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    cfg = VideoMAEConfig(
        image_size=224,
        patch_size=16,
        num_frames=16,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = VideoMAEForVideoClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(-5.0)
        model.classifier.bias[favourite] = 5.0
    model.save_pretrained(str(folder))
    return folder


def save_tiny_blip(folder: Path, words: list[str], *, seed: int = 0) -> Path:
    """A 1-layer BLIP captioner with a word-level BERT tokenizer and a 32² image processor."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]")
    proc = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok
    )
    cfg = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=2,
            encoder_hidden_size=32,
            bos_token_id=5,
            pad_token_id=0,
            sep_token_id=3,
            eos_token_id=3,
            max_position_embeddings=64,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        ),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    BlipForConditionalGeneration(cfg).save_pretrained(str(folder))
    proc.save_pretrained(str(folder))
    return folder
