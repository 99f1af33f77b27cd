"""cogvx.testing: dev-only test support shared by the workspace's tests and benchmarks.

Tiny CogVideoX model folders in the diffusers layout (:func:`build_model_folder`, :class:`TinySpec`)
and tokenizers trained on a few sentences (:func:`build_spiece_tokenizer`,
:func:`build_json_tokenizer`), so no test downloads anything. pytest fixtures are in
:mod:`cogvx.testing.fixtures`. Never a dependency of product code.
"""

from cogvx.testing.folders import (
    PIPELINE_CLASS_NAMES,
    T5_KWARGS,
    VAE_KWARGS,
    TinySpec,
    Writer,
    build_model_folder,
    randomize,
    read_index,
    transformer_kwargs,
    vae_kwargs,
)
from cogvx.testing.tokenizer import (
    CORPUS,
    TokenizerKind,
    build_json_tokenizer,
    build_spiece_tokenizer,
    build_tokenizer,
)

__all__ = [
    "CORPUS",
    "PIPELINE_CLASS_NAMES",
    "T5_KWARGS",
    "VAE_KWARGS",
    "TinySpec",
    "TokenizerKind",
    "Writer",
    "build_json_tokenizer",
    "build_model_folder",
    "build_spiece_tokenizer",
    "build_tokenizer",
    "randomize",
    "read_index",
    "transformer_kwargs",
    "vae_kwargs",
]
