"""A linear change of the latent basis, folded into the VAE's weights (docs/vae.md §Latent basis).

The CogVideoX pipelines see a VAE only through ``z = encode(x).sample() * scaling_factor`` and
``decode(z / scaling_factor)``. Any invertible channel map ``z' = A z`` can be folded into the
weights so that a VAE folder keeps this interface, loads in diffusers unchanged, and decodes
exactly what it decoded before:

- the encoder's ``conv_out`` rows of the posterior mean become ``scaling_factor * A @ rows``;
- every decoder layer that reads the latent (``conv_in`` and the ``conv_y``/``conv_b`` of each
  ``SpatialNorm3D``) gets its input columns multiplied by ``A^-1 / scaling_factor``;
- the new ``scaling_factor`` is 1.

The decoder's only uses of the latent are these convolutions, a nearest resize and zero padding,
all linear, so decoding is exact up to rounding. The posterior's log-variance is per channel and
cannot express ``A diag(var) A^T``; its rows are kept and shifted by ``2 log ||row_c(s A)||``,
exact for a diagonal ``A`` and for equal variances (a trained VAE's posterior std is ~1e-3 of its
latents' spread, so this only matters to ``sample()`` at that scale).

:func:`latent_whitening` gives the map that makes the latents' second moment the identity
(ZCA, uncentred: zero padding forbids a shift). On the shapes VAE it triples the share of the
latent power that separates one shape from another (docs/shapes-model.md).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from cogvx.vae3d.model import CausalVAE3D, Decoder3D, SpatialNorm3D

__all__ = ["fold_latent_transform", "latent_whitening"]

#: Eigenvalues of the second moment below this fraction of the largest are raised to it, so a
#: near-dead latent direction is amplified at most ``1 / sqrt(_MIN_EIGEN_FRACTION)`` times.
_MIN_EIGEN_FRACTION = 1e-4


def latent_whitening(latents: Tensor) -> Tensor:
    """``A [C, C]`` with ``E[(A z)(A z)^T] = I`` over the cells of ``latents [N, C, ...]`` (scaled).

    Symmetric (ZCA) and uncentred: ``A = M^{-1/2}`` for ``M = E[z z^T]``; of all whitening maps it
    moves the latents least. Eigenvalues below ``1e-4`` of the largest are raised to that floor.
    """
    if latents.ndim < 2 or latents.shape[0] == 0:
        raise ValueError(
            f"latents must be [N, C, ...] with N >= 1, got shape {tuple(latents.shape)}"
        )
    channels = latents.shape[1]
    cells = latents.movedim(1, -1).reshape(-1, channels).double()  # [N * cells, C]
    moment = cells.T @ cells / cells.shape[0]  # [C, C]
    eigvals, eigvecs = torch.linalg.eigh(moment)
    if not torch.isfinite(eigvals).all() or eigvals.max() <= 0:
        raise ValueError("latents have no finite, nonzero second moment to whiten")
    eigvals = eigvals.clamp_min(float(eigvals.max()) * _MIN_EIGEN_FRACTION)
    return (eigvecs * eigvals.rsqrt()) @ eigvecs.T


def _latent_readers(decoder: Decoder3D) -> list[nn.Conv3d]:
    """The decoder convolutions whose input is the latent itself."""
    convs = [decoder.conv_in.conv]
    for module in decoder.modules():
        if isinstance(module, SpatialNorm3D):
            convs += [module.conv_y.conv, module.conv_b.conv]
    return convs


@torch.no_grad()
def fold_latent_transform(vae: CausalVAE3D, matrix: Tensor) -> CausalVAE3D:
    """A copy of ``vae`` whose scaled latents are ``matrix @`` those of ``vae``, ``scaling_factor`` 1.

    ``matrix [C, C]`` must be invertible (C = ``latent_channels``). Needs both encoder and
    decoder. Decoding the new latents gives the old reconstruction (fp32 rounding); see the
    module docstring for the posterior variance.
    """
    channels = vae.config.latent_channels
    if tuple(matrix.shape) != (channels, channels):
        raise ValueError(
            f"matrix must be [{channels}, {channels}] (latent_channels), got {tuple(matrix.shape)}"
        )
    if vae.encoder is None or vae.decoder is None:
        raise ValueError("fold_latent_transform needs a VAE with both encoder and decoder")
    if vae.config.use_quant_conv or vae.config.use_post_quant_conv:
        raise ValueError("fold_latent_transform does not support quant_conv/post_quant_conv VAEs")
    a = matrix.double() * vae.config.scaling_factor  # unscaled old latents -> new latents
    if not torch.isfinite(a).all() or torch.linalg.matrix_rank(a) < channels:
        raise ValueError("matrix must be finite and invertible")
    a_inv = torch.linalg.inv(a)
    out = copy.deepcopy(vae)
    encoder, decoder = out.encoder, out.decoder
    assert encoder is not None and decoder is not None  # checked on vae above

    conv = encoder.conv_out.conv  # [2C, C_in, k, k, k]: mean rows, then log-variance rows
    if conv.bias is None:
        raise ValueError("fold_latent_transform needs the encoder's conv_out bias")
    w, b = conv.weight.double(), conv.bias.double()
    w[:channels] = torch.einsum("ij,j...->i...", a, w[:channels])
    b[:channels] = a @ b[:channels]
    b[channels:] += 2 * torch.log(a.norm(dim=1))
    conv.weight.copy_(w)
    conv.bias.copy_(b)

    for reader in _latent_readers(decoder):  # weight [C_out, C, k, k, k]
        reader.weight.copy_(torch.einsum("oc...,cd->od...", reader.weight.double(), a_inv))
    out.config = out.config.replace(scaling_factor=1.0)
    return out
