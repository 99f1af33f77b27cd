"""Run a test function on several local processes joined by a gloo process group on 127.0.0.1.

:func:`run_ranks` starts ``world_size`` fresh Python processes (``python -m
cogvx.testing.distributed``), each of which initialises ``torch.distributed`` (gloo, a free port,
``timeout_s`` on every collective), loads the function from its *file* (test modules are not
importable by name under pytest's importlib mode) and calls ``fn(rank, world_size, *args)``. The
return values come back to the parent (``torch.save`` files), one per rank. Every process has a
deadline: a rank that exits non-zero, or a job that passes the deadline, ends all ranks and raises
:class:`RanksFailed` with each rank's exit code and the tail of its stderr, so a broken collective
can fail a test but never hang it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

__all__ = ["RankResult", "RanksFailed", "free_port", "run_ranks"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RankResult:
    rank: int
    returncode: int | None  # None: still running when the job was ended
    stderr: str


class RanksFailed(RuntimeError):
    """Some rank failed or the job passed its deadline; ``results`` has every rank's outcome."""

    def __init__(self, message: str, results: list[RankResult]) -> None:
        super().__init__(message)
        self.results = results


def run_ranks(
    path: str | os.PathLike[str],
    function: str,
    world_size: int,
    *args: Any,
    timeout_s: float = 120.0,
    collective_timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
    tolerate: Collection[int] = (),
) -> list[Any]:
    """Call ``function`` (defined in the file ``path``) on ``world_size`` ranks; returns the ranks'
    return values in rank order. ``args`` must be picklable by ``torch.save``. Ranks in
    ``tolerate`` may fail (a test that kills one): the others run on, and a failed tolerated
    rank's result is None."""
    with tempfile.TemporaryDirectory(prefix="cogvx-ranks-") as tmp:
        work = Path(tmp)
        torch.save(args, work / "args.pt")
        port = free_port()
        procs = []
        for rank in range(world_size):
            child_env = {
                **os.environ,
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                **(env or {}),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(world_size),
                "LOCAL_WORLD_SIZE": str(world_size),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
            }
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "cogvx.testing.distributed",
                        str(Path(path).resolve()),
                        function,
                        str(work),
                        str(collective_timeout_s),
                    ],
                    env=child_env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(work / f"stderr{rank}.txt", "w"),  # noqa: SIM115 (closed by exit)
                )
            )
        deadline = time.monotonic() + timeout_s
        failed = False
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            if any(c not in (None, 0) and r not in tolerate for r, c in enumerate(codes)):
                failed = True
                break
            if all(c == 0 or (c is not None and r in tolerate) for r, c in enumerate(codes)):
                break
            time.sleep(0.05)
        codes = [p.poll() for p in procs]
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        results = [
            RankResult(r, codes[r], (work / f"stderr{r}.txt").read_text()[-3000:])
            for r in range(world_size)
        ]
        if failed or any(c != 0 and r not in tolerate for r, c in enumerate(codes)):
            why = "a rank failed" if failed else f"deadline of {timeout_s} s passed"
            detail = "; ".join(
                f"rank {r.rank}: exit {r.returncode}: {r.stderr.strip().splitlines()[-1:]}"
                for r in results
            )
            raise RanksFailed(f"{why}: {detail}", results)
        return [
            torch.load(work / f"result{r}.pt", weights_only=False) if codes[r] == 0 else None
            for r in range(world_size)
        ]


def _load(path: str, function: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_cogvx_ranks_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)


def _child(path: str, function: str, work: str, collective_timeout_s: str) -> None:
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group(
        "gloo",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=float(collective_timeout_s)),
    )
    try:
        args = torch.load(Path(work) / "args.pt", weights_only=False)
        out = _load(path, function)(rank, world, *args)
        torch.save(out, Path(work) / f"result{rank}.pt")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _child(*sys.argv[1:5])
