"""Vision backends through transformers and TorchScript, all loaded from local paths.

| role | VBench model | loader here | exact? |
|---|---|---|---|
| subject consistency features | DINO ViT-B/16 (torch hub) | :class:`DinoEmbedder` (``facebook/dino-vitb16`` layout, ViTModel CLS) | same weights, decoder differs |
| imaging quality | MUSIQ-SPAQ (pyiqa) | :class:`TorchScriptIQA` (export of the model) | yes if exported from pyiqa |
| object/multiple/spatial | GRiT-B ObjectDet | :class:`TransformersDetector` (DETR, OWL-ViT, ...) | approximate |
| colour | GRiT-B DenseCap | :class:`CropCaptionDenseCaptioner` (detector + captioner on crops) | approximate |
| scene | Tag2Text Swin-B | :class:`TransformersCaptioner` (BLIP, ...) | approximate |
| human action | UMT-L/16 K400 | :class:`TransformersActionClassifier` (VideoMAE K400, ...) | approximate |
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cogvx.evals.backends.clip import _require_dir
from cogvx.evals.backends.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    center_crop,
    normalize,
    resize_shorter,
)
from cogvx.evals.backends.protocols import DenseCaption, Detection, Detector

__all__ = [
    "CropCaptionDenseCaptioner",
    "DinoEmbedder",
    "TorchScriptIQA",
    "TransformersActionClassifier",
    "TransformersCaptioner",
    "TransformersDetector",
]


class DinoEmbedder:
    """CLS features of a transformers ViT/DINOv2 model, VBench ``dino_transform`` preprocessing.

    ``dino_transform(224)``: shorter side to 224 (bilinear, no antialias), **no crop**, ImageNet
    mean/std; position embeddings are interpolated for non-square frames (as the hub model does).
    The feature is ``last_hidden_state[:, 0]`` (the final-norm CLS token), L2-normalised.
    """

    approximate = False

    def __init__(
        self,
        model,
        *,
        name: str = "dino",
        size: int = 224,
        batch_size: int = 16,
        device: str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.name = name
        self.size = size
        self.batch_size = batch_size
        self.device = torch.device(device)

    @classmethod
    def from_local(cls, path: str | os.PathLike, *, device: str = "cpu", **kw) -> DinoEmbedder:
        from transformers import AutoModel

        p = _require_dir(path, "DINO")
        model = AutoModel.from_pretrained(str(p))
        return cls(model, name=kw.pop("name", f"dino:{p.name}"), device=device, **kw)

    @torch.no_grad()
    def embed_images(self, frames: np.ndarray) -> np.ndarray:
        out = []
        kwargs = {"interpolate_pos_encoding": True} if self.model.config.model_type == "vit" else {}
        for i in range(0, len(frames), self.batch_size):
            x = normalize(
                resize_shorter(frames[i : i + self.batch_size], self.size, "bilinear"),
                IMAGENET_MEAN,
                IMAGENET_STD,
            )
            h = self.model(pixel_values=x.to(self.device), **kwargs).last_hidden_state[:, 0].float()
            out.append(F.normalize(h, dim=-1).cpu().numpy())
        return np.concatenate(out)


class TransformersDetector:
    """An object detector from a local transformers folder (``AutoModelForObjectDetection``).

    Labels come from ``config.id2label`` (lower-cased); ``threshold`` is VBench's GRiT score
    threshold (0.5). Stand-in for GRiT ObjectDet: label vocabularies differ (COCO vs GRiT's open
    vocabulary), so results are approximate.
    """

    approximate = True

    def __init__(
        self,
        model,
        processor,
        *,
        name: str = "detector",
        threshold: float = 0.5,
        device: str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.processor = processor
        self.name = name
        self.threshold = threshold
        self.device = torch.device(device)

    @classmethod
    def from_local(
        cls, path: str | os.PathLike, *, device: str = "cpu", **kw
    ) -> TransformersDetector:
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        p = _require_dir(path, "detector")
        return cls(
            AutoModelForObjectDetection.from_pretrained(str(p)),
            AutoImageProcessor.from_pretrained(str(p)),
            name=kw.pop("name", f"detector:{p.name}"),
            device=device,
            **kw,
        )

    @torch.no_grad()
    def detect(self, frame: np.ndarray) -> list[Detection]:
        inputs = self.processor(images=frame, return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        res = self.processor.post_process_object_detection(
            outputs, threshold=self.threshold, target_sizes=[frame.shape[:2]]
        )[0]
        id2label = self.model.config.id2label
        return [
            Detection(str(id2label[int(lbl)]).lower(), tuple(float(v) for v in box), float(s))
            for s, lbl, box in zip(res["scores"], res["labels"], res["boxes"])
        ]


class TransformersCaptioner:
    """An image captioner from a local transformers folder (``AutoModelForImageTextToText``,
    e.g. BLIP). Stand-in for Tag2Text (VBench: 384², beams 3, length 10..30)."""

    approximate = True

    def __init__(
        self,
        model,
        processor,
        *,
        name: str = "captioner",
        num_beams: int = 3,
        max_new_tokens: int = 30,
        device: str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.processor = processor
        self.name = name
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.device = torch.device(device)

    @classmethod
    def from_local(
        cls, path: str | os.PathLike, *, device: str = "cpu", **kw
    ) -> TransformersCaptioner:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        p = _require_dir(path, "captioner")
        return cls(
            AutoModelForImageTextToText.from_pretrained(str(p)),
            AutoProcessor.from_pretrained(str(p)),
            name=kw.pop("name", f"captioner:{p.name}"),
            device=device,
            **kw,
        )

    @torch.no_grad()
    def caption(self, frames: np.ndarray) -> list[str]:
        inputs = self.processor(images=list(frames), return_tensors="pt").to(self.device)
        ids = self.model.generate(
            **inputs, num_beams=self.num_beams, max_new_tokens=self.max_new_tokens
        )
        return [
            t.strip().lower() for t in self.processor.batch_decode(ids, skip_special_tokens=True)
        ]


class CropCaptionDenseCaptioner:
    """Dense captions from a detector and a captioner: caption each detected box's crop.

    Approximates GRiT DenseCap for VBench colour: the region label is the detector's class.
    """

    approximate = True

    def __init__(self, detector: Detector, captioner: TransformersCaptioner) -> None:
        self.detector = detector
        self.captioner = captioner
        self.name = f"crop-caption[{detector.name}+{captioner.name}]"

    def dense_captions(self, frame: np.ndarray) -> list[DenseCaption]:
        dets = self.detector.detect(frame)
        out = []
        for d in dets:
            x0, y0, x1, y1 = (round(v) for v in d.box)
            crop = frame[max(0, y0) : max(y0 + 1, y1), max(0, x0) : max(x0 + 1, x1)]
            if crop.size == 0:
                continue
            out.append(DenseCaption(self.captioner.caption(crop[None])[0], d.label, d.box))
        return out


class TransformersActionClassifier:
    """A video classifier from a local transformers folder (``AutoModelForVideoClassification``,
    e.g. VideoMAE fine-tuned on Kinetics-400). Stand-in for UMT-L/16; VBench's preprocessing:
    shorter side 256 (bilinear), center crop 224, ImageNet mean/std, 16 frames."""

    approximate = True

    def __init__(
        self,
        model,
        *,
        name: str = "action",
        size: int = 224,
        resize: int = 256,
        device: str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.name = name
        self.size, self.resize = size, resize
        self.num_frames = int(getattr(model.config, "num_frames", 16))
        id2label = model.config.id2label
        self.labels = [str(id2label[i]).lower() for i in range(len(id2label))]
        self.device = torch.device(device)

    @classmethod
    def from_local(
        cls, path: str | os.PathLike, *, device: str = "cpu", **kw
    ) -> TransformersActionClassifier:
        from transformers import AutoModelForVideoClassification

        p = _require_dir(path, "action classifier")
        return cls(
            AutoModelForVideoClassification.from_pretrained(str(p)),
            name=kw.pop("name", f"action:{p.name}"),
            device=device,
            **kw,
        )

    @torch.no_grad()
    def logits(self, frames: np.ndarray) -> np.ndarray:
        x = normalize(
            center_crop(resize_shorter(frames, self.resize, "bilinear"), self.size),
            IMAGENET_MEAN,
            IMAGENET_STD,
        )
        # [T,3,H,W] -> [1,T,3,H,W] (transformers video layout)
        return self.model(pixel_values=x[None].to(self.device)).logits[0].float().cpu().numpy()


class TorchScriptIQA:
    """An image-quality model exported with ``torch.jit.save`` (e.g. pyiqa's MUSIQ-SPAQ).

    Called with one float32 image ``[1,3,H,W]`` in ``[0,1]``; returns a score on MUSIQ's 0–100 scale.
    """

    approximate = False

    def __init__(self, module: torch.nn.Module, *, name: str = "iqa", device: str = "cpu") -> None:
        self.module = module.eval().to(device)
        self.name = name
        self.device = torch.device(device)

    @classmethod
    def from_local(cls, path: str | os.PathLike, *, device: str = "cpu") -> TorchScriptIQA:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"image-quality model not found: path={str(p)!r}")
        try:
            module = torch.jit.load(str(p), map_location="cpu")
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"{p} is not a TorchScript archive; MUSIQ's architecture is not shipped with cogvx, "
                "so export it with torch.jit.save (see the evals README)"
            ) from e
        return cls(module, name=f"iqa:{p.name}", device=device)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> float:
        return float(self.module(image.to(self.device)).reshape(-1)[0])
