"""Single-process checks of cogvx.expert_dit.parallel (the multi-process runs, 2 and 4 gloo ranks
against the single-process pipeline, are in apps/infer/tests/test_parallel.py)."""

import pytest
import torch

from cogvx.expert_dit.attention import math_attention
from cogvx.expert_dit.parallel import (
    SequenceParallel,
    SequenceParallelMode,
    ring_attention_reference,
)


@pytest.mark.parametrize("blocks", [1, 2, 5])
def test_ring_merge_equals_one_softmax(blocks):
    """Block-wise softmax merged by log-sum-exp equals full attention over all keys (the ring's
    arithmetic), with scores large enough that an unstabilised merge would overflow."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 7, 16, generator=g) * 4
    k = torch.randn(2, 3, 5 * blocks, 16, generator=g) * 4
    v = torch.randn(2, 3, 5 * blocks, 16, generator=g)
    full = math_attention(q, k, v)
    parts = list(zip(k.chunk(blocks, dim=2), v.chunk(blocks, dim=2)))
    ring = ring_attention_reference(q, parts)
    assert (ring - full).abs().max().item() < 1e-5


def test_sequence_parallel_mode_is_checked():
    assert SequenceParallel(None, "ring").mode is SequenceParallelMode.RING
    with pytest.raises(
        ValueError, match=r"parallel.sp_mode='tree': expected one of 'ulysses', 'ring'"
    ):
        SequenceParallel(None, "tree")
