"""A real 2-process DDP job on CPU (gloo on 127.0.0.1, Lightning's DDP strategy, subprocesses
with a timeout): parameters identical on both ranks after 4 steps, each rank's timesteps in its
own interval, the two intervals disjoint and covering [0, 1000), the ranks' frame packs disjoint
and together the whole epoch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

JOB = Path(__file__).with_name("ddp_job.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_two_process_ddp(tmp_path, clips, tiny_t2v_folder):
    manifest = clips(8)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(
        os.environ,
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        OMP_NUM_THREADS="1",
        PYTHONHASHSEED="0",
    )
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, str(JOB), str(out), str(tiny_t2v_folder), str(manifest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in runs] == [2, 2]

    params = [load_file(out / f"rank{r}.safetensors") for r in (0, 1)]
    assert params[0].keys() == params[1].keys()
    for k in params[0]:
        assert torch.equal(params[0][k], params[1][k]), k

    (lo0, hi0), (lo1, hi1) = (r["interval"] for r in runs)
    assert (lo0, hi0, lo1, hi1) == (0, 500, 500, 1000)  # disjoint, covering [0, 1000)
    for run in runs:
        lo, hi = run["interval"]
        drawn = [t for s in run["steps"] for t in s["timesteps"]]
        assert len(run["steps"]) == 4 and drawn and all(lo <= t < hi for t in drawn)

    shards = [{i for s in r["steps"] for i in s["indices"]} for r in runs]
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(range(8))
