"""The table of evaluation dimensions: name -> what it needs -> how its evaluator is built.

docs/evals.md. Every dimension ``cogvx eval --dims`` accepts is one :class:`Dimension` row of
:data:`DIMENSION_TABLE`; the backends it runs on (optical flow, CLIP, DINO, detectors, ...) are
given as a typed :class:`BackendOptions` and built lazily, once, by :class:`Backends`, so two
dimensions on the same CLIP share one model. A dimension whose backend is not given, or fails to
load, becomes an :class:`~cogvx.evals.evaluator.Unavailable` with the reason: reported, never
skipped silently. Model imports happen inside the builders, so this module is cheap to import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cogvx.evals.evaluator import Evaluator, Unavailable

__all__ = [
    "DEFAULT_DIMENSIONS",
    "DIMENSION_TABLE",
    "BackendNotGiven",
    "BackendOptions",
    "Backends",
    "Dimension",
    "build_evaluators",
    "parse_dimensions",
]


@dataclass(frozen=True)
class BackendOptions:
    """Where the evaluators' models come from. Each field is the ``cogvx eval`` flag of the same
    name (``clip_l`` is ``--clip-l``); ``None`` means "not given"."""

    flow: str = "dis"
    """Optical flow: ``"dis"`` (approximates RAFT), ``"farneback"``, or a RAFT file."""
    interpolator: str = "flow"
    """Motion smoothness: ``"flow"``, ``"blend"``, or an AMT TorchScript file."""
    static_filter: bool = False
    """temporal_flickering: skip non-static videos (VBench static filter)."""
    dino: str | None = None
    clip: str | None = None
    clip_l: str | None = None
    aesthetic_head: str | None = None
    iqa: str | None = None
    detector: str | None = None
    captioner: str | None = None
    action: str | None = None
    judge_url: str | None = None
    judge_model: str | None = None
    judge_local: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "static_filter":
                if not isinstance(value, bool):
                    raise TypeError(f"static_filter={value!r}: expected True or False")
            elif value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{f.name}={value!r}: expected a non-empty string or None")

    @staticmethod
    def flag(name: str) -> str:
        """The command-line flag of option ``name`` (``clip_l`` -> ``--clip-l``)."""
        return "--" + name.replace("_", "-")


class BackendNotGiven(LookupError):
    """A dimension needs a backend option that was not given."""


class Backends:
    """The models the evaluators run on, built on first use and shared between dimensions."""

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self._cache: dict[str, Any] = {}

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def need(self, option: str, what: str) -> str:
        """The value of a required option, or :class:`BackendNotGiven` naming its flag."""
        value = getattr(self.options, option)
        if not value:
            raise BackendNotGiven(f"needs {BackendOptions.flag(option)} ({what})")
        return value

    def flow(self) -> Any:
        from cogvx.evals.flow import DISFlow, FarnebackFlow, RAFTFlow

        spec, device = self.options.flow, self.options.device
        if spec == "dis":
            return self.get("flow", DISFlow)
        if spec == "farneback":
            return self.get("flow", FarnebackFlow)
        return self.get("flow", lambda: RAFTFlow.from_local(spec, device=device))

    def interpolator(self) -> Any:
        from cogvx.evals.interpolation import (
            FlowWarpInterpolator,
            LinearBlendInterpolator,
            TorchScriptInterpolator,
        )

        spec, device = self.options.interpolator, self.options.device
        if spec == "blend":
            return LinearBlendInterpolator()
        if spec == "flow":
            return FlowWarpInterpolator(self.flow())
        return self.get("interp", lambda: TorchScriptInterpolator.from_local(spec, device=device))

    def clip(self, *, pil: bool = False) -> Any:
        from cogvx.evals.backends.clip import CLIPBackend

        path = self.need(
            "clip", "CLIP ViT-B/32 folder in transformers layout, e.g. openai/clip-vit-base-patch32"
        )
        device = self.options.device
        base = self.get("clip", lambda: CLIPBackend.from_local(path, device=device))
        return self.get("clip-pil", base.with_pil_resize) if pil else base

    def detector(self) -> Any:
        from cogvx.evals.backends.vision import TransformersDetector

        path = self.need(
            "detector", "object detector folder in transformers layout (stand-in for GRiT)"
        )
        device = self.options.device
        return self.get("detector", lambda: TransformersDetector.from_local(path, device=device))

    def captioner(self) -> Any:
        from cogvx.evals.backends.vision import TransformersCaptioner

        path = self.need(
            "captioner",
            "image captioner folder in transformers layout, e.g. BLIP (stand-in for Tag2Text)",
        )
        device = self.options.device
        return self.get("captioner", lambda: TransformersCaptioner.from_local(path, device=device))


@dataclass(frozen=True)
class Dimension:
    """One row of the table."""

    name: str
    build: Callable[[Backends], Evaluator]
    needs: tuple[str, ...] = ()
    """The :class:`BackendOptions` fields it cannot run without (documentation and ``--help``)."""
    default: bool = True
    """In the default set (the 16 VBench dimensions); extras are asked for by name."""


# ------------------------------------------------------------------------------------ builders
# One function per dimension; the VBench modules are imported on demand (they pull in models).


def _temporal_flickering(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import temporal

    static = temporal.StaticFilter(b.flow()) if b.options.static_filter else None
    return temporal.TemporalFlickering(static)


def _dynamic_degree(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import temporal

    return temporal.DynamicDegree(b.flow())


def _motion_smoothness(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import temporal

    return temporal.MotionSmoothness(b.interpolator())


def _subject_consistency(b: Backends) -> Evaluator:
    from cogvx.evals.backends.vision import DinoEmbedder
    from cogvx.evals.vbench import consistency

    path = b.need("dino", "DINO ViT-B/16 folder in transformers layout, e.g. facebook/dino-vitb16")
    device = b.options.device
    return consistency.SubjectConsistency(
        b.get("dino", lambda: DinoEmbedder.from_local(path, device=device))
    )


def _background_consistency(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import consistency

    return consistency.BackgroundConsistency(b.clip())


def _aesthetic_quality(b: Backends) -> Evaluator:
    from cogvx.evals.backends.clip import LaionAestheticScorer
    from cogvx.evals.vbench import quality

    clip_l = b.need("clip_l", "CLIP ViT-L/14 folder in transformers layout")
    head = b.need("aesthetic_head", "LAION sa_0_4_vit_l_14_linear.pth")
    return quality.AestheticQuality(
        LaionAestheticScorer.from_local(clip_l, head, device=b.options.device)
    )


def _imaging_quality(b: Backends) -> Evaluator:
    from cogvx.evals.backends.vision import TorchScriptIQA
    from cogvx.evals.vbench import quality

    path = b.need("iqa", "TorchScript export of MUSIQ-SPAQ")
    return quality.ImagingQuality(TorchScriptIQA.from_local(path, device=b.options.device))


def _object_class(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import semantics

    return semantics.ObjectClass(b.detector())


def _multiple_objects(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import semantics

    return semantics.MultipleObjects(b.detector())


def _spatial_relationship(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import semantics

    return semantics.SpatialRelationship(b.detector())


def _color(b: Backends) -> Evaluator:
    from cogvx.evals.backends.vision import CropCaptionDenseCaptioner
    from cogvx.evals.vbench import semantics

    return semantics.Color(CropCaptionDenseCaptioner(b.detector(), b.captioner()))


def _scene(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import semantics

    return semantics.Scene(b.captioner())


def _human_action(b: Backends) -> Evaluator:
    from cogvx.evals.backends.vision import TransformersActionClassifier
    from cogvx.evals.vbench import semantics

    path = b.need(
        "action",
        "video classifier folder in transformers layout, e.g. VideoMAE Kinetics-400 "
        "(stand-in for UMT)",
    )
    return semantics.HumanAction(
        TransformersActionClassifier.from_local(path, device=b.options.device)
    )


def _appearance_style(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import text_video

    return text_video.AppearanceStyle(b.clip(pil=True))


def _video_text(b: Backends) -> Any:
    from cogvx.evals.backends.clip import FrameMeanVideoText

    return b.get("videotext", lambda: FrameMeanVideoText(b.clip()))


def _temporal_style(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import text_video

    return text_video.TemporalStyle(_video_text(b))


def _overall_consistency(b: Backends) -> Evaluator:
    from cogvx.evals.vbench import text_video

    return text_video.OverallConsistency(_video_text(b))


def _gpt4o_mtscore(b: Backends) -> Evaluator:
    from cogvx.evals.mtscore import MTScore, OpenAICompatibleJudge, TransformersChatJudge

    o = b.options
    if o.judge_url:
        if not o.judge_model:
            raise BackendNotGiven("needs --judge-model with --judge-url")
        return MTScore(OpenAICompatibleJudge(o.judge_url, o.judge_model))
    path = b.need(
        "judge_local",
        "a local vision-language chat model folder, or --judge-url URL --judge-model NAME",
    )
    return MTScore(TransformersChatJudge.from_local(path, device=o.device))


def _shapes(aspect: str) -> Callable[[Backends], Evaluator]:
    def build(b: Backends) -> Evaluator:
        from cogvx.evals.shapes.dimension import ShapesAdherence

        return ShapesAdherence(aspect)

    return build


_ROWS = (
    Dimension("subject_consistency", _subject_consistency, ("dino",)),
    Dimension("background_consistency", _background_consistency, ("clip",)),
    Dimension("temporal_flickering", _temporal_flickering),
    Dimension("motion_smoothness", _motion_smoothness),
    Dimension("dynamic_degree", _dynamic_degree),
    Dimension("aesthetic_quality", _aesthetic_quality, ("clip_l", "aesthetic_head")),
    Dimension("imaging_quality", _imaging_quality, ("iqa",)),
    Dimension("object_class", _object_class, ("detector",)),
    Dimension("multiple_objects", _multiple_objects, ("detector",)),
    Dimension("human_action", _human_action, ("action",)),
    Dimension("color", _color, ("detector", "captioner")),
    Dimension("spatial_relationship", _spatial_relationship, ("detector",)),
    Dimension("scene", _scene, ("captioner",)),
    Dimension("temporal_style", _temporal_style, ("clip",)),
    Dimension("appearance_style", _appearance_style, ("clip",)),
    Dimension("overall_consistency", _overall_consistency, ("clip",)),
    Dimension("gpt4o_mtscore", _gpt4o_mtscore, ("judge_local",), default=False),
    Dimension("shapes_color", _shapes("color"), default=False),
    Dimension("shapes_shape", _shapes("shape"), default=False),
    Dimension("shapes_motion", _shapes("motion"), default=False),
)

DIMENSION_TABLE: Mapping[str, Dimension] = MappingProxyType({d.name: d for d in _ROWS})
"""Every dimension by name, in report order (the 16 VBench ones first)."""

DEFAULT_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in _ROWS if d.default)
"""What ``--dims all`` (and no ``--dims``) means: the 16 VBench dimensions."""


def parse_dimensions(text: str | None, *, parameter: str = "--dims") -> list[str]:
    """``"all"``/``None`` -> the defaults; ``"a,b"`` -> those names (deduplicated, in order).

    Unknown names raise ``ValueError("<parameter>=<text>: ...")`` listing the valid ones.
    """
    if text is None or text.strip() == "all":
        return list(DEFAULT_DIMENSIONS)
    dims = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in dims if d not in DIMENSION_TABLE]
    if bad or not dims:
        what = f"unknown dimension(s) {', '.join(bad)}" if bad else "no dimension named"
        raise ValueError(f"{parameter}={text}: {what}; valid: all, {', '.join(DIMENSION_TABLE)}")
    return list(dict.fromkeys(dims))


def build_evaluators(
    dims: Iterable[str], options: BackendOptions | None = None
) -> list[Evaluator | Unavailable]:
    """One evaluator per name, sharing backends; unavailable ones carry the reason."""
    backends = Backends(BackendOptions() if options is None else options)
    out: list[Evaluator | Unavailable] = []
    for name in dims:
        if name not in DIMENSION_TABLE:
            raise ValueError(f"dimension={name!r}: valid: {', '.join(DIMENSION_TABLE)}")
        try:
            out.append(DIMENSION_TABLE[name].build(backends))
        except BackendNotGiven as e:
            out.append(Unavailable(name, str(e)))
        except Exception as e:  # a loader failed: report the dimension, keep the run
            out.append(Unavailable(name, f"backend failed to load: {type(e).__name__}: {e}"))
    return out
