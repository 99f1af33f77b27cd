"""Multi-device inference (cogvx.infer.parallel) on CPU: gloo on 127.0.0.1, 2 and 4 processes.

Every mode and composition must give the frames of the single-process pipeline (fp32, max abs
diff <= 1e-5): guidance-parallel, Ulysses and ring sequence-parallel attention, the parallel VAE
decode, and cfg x sp x vae on four ranks. Each job runs all its modes in one set of processes
(starting Python + torch dominates the cost; the 4-process job, which holds the compositions
cfg x sp x vae, runs in CI too), on a tiny RoPE model (4 heads so Ulysses splits 4
ways; 36 video tokens, 8 latent rows). A rank killed mid-run ends the others with an error naming
the failed collective, well before the job's deadline.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from cogvx.testing import TinySpec, build_model_folder
from cogvx.testing.distributed import run_ranks

HERE = str(Path(__file__).resolve())
SPEC = TinySpec(
    name="parallel-rope",
    rope=True,
    transformer_overrides={"num_attention_heads": 4},
)
CALL = dict(
    prompt="a red circle moves to the right",
    num_frames=9,
    height=64,  # latent 8 rows: 4 token rows (patch 2), 8 VAE rows
    width=48,
    num_inference_steps=3,
    guidance_scale=6.0,
    output_type="pt",
    progress=False,
)
TOL = 1e-5

#: (name, ParallelConfig fields) per world size
MODES = {
    2: [
        ("cfg2", dict(cfg=2)),
        ("sp2-ulysses", dict(sp=2)),
        ("sp2-ring", dict(sp=2, sp_mode="ring")),
        ("sp2-ulysses-vae2", dict(sp=2, vae=2)),
        ("cfg2-vae2", dict(cfg=2, vae=2)),
    ],
    4: [
        ("cfg2xsp2-ulysses-vae4", dict(cfg=2, sp=2, vae=4)),
        ("cfg2xsp2-ring-vae2", dict(cfg=2, sp=2, sp_mode="ring", vae=2)),
        ("sp4-ulysses", dict(sp=4)),
        ("sp4-ring-vae4", dict(sp=4, sp_mode="ring", vae=4)),
    ],
}


def _pipe(folder: str):
    from cogvx.infer import TextToVideoPipeline

    return TextToVideoPipeline.from_pretrained(folder, torch_dtype=torch.float32, device="cpu")


def _frames(pipe) -> torch.Tensor:
    return pipe(generator=torch.Generator().manual_seed(0), **CALL).frames


# ---- run on every rank (loaded from this file by cogvx.testing.distributed) --------------------
def rank_modes(rank: int, world: int, folder: str) -> dict[str, tuple[torch.Tensor, dict, float]]:
    from cogvx.infer.parallel import CommMeter, use_parallel

    pipe = _pipe(folder)
    out = {}
    for name, degrees in MODES[world]:
        meter = CommMeter()
        start = time.perf_counter()
        with use_parallel(meter=meter, **degrees):
            frames = _frames(pipe)
        out[name] = (frames, dict(meter.bytes), time.perf_counter() - start)
    try:  # degrees that do not multiply to the number of processes
        with use_parallel(cfg=2, sp=world):
            pass
    except ValueError as e:
        out["world-mismatch"] = str(e)
    return out


def rank_killed(rank: int, world: int, folder: str) -> dict:
    from cogvx.infer.parallel import use_parallel

    pipe = _pipe(folder)

    def die(pipe, step, t, kwargs):
        if rank == 1 and step == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return kwargs

    start = time.perf_counter()
    with use_parallel(sp=2):
        try:
            _frames_with = pipe(
                generator=torch.Generator().manual_seed(0), callback_on_step_end=die, **CALL
            )
        except RuntimeError as e:
            return {"error": str(e), "seconds": time.perf_counter() - start}
    return {"error": None, "frames": _frames_with.frames}


# ---- the tests ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return str(build_model_folder(tmp_path_factory.mktemp("parallel"), SPEC))


@pytest.fixture(scope="module")
def reference(folder) -> dict[str, torch.Tensor]:
    """Single-process frames, decoded with the VAE's fast kernels and with its reference kernels
    (the parallel decode is the reference-kernel form of the decoder layers)."""
    pipe = _pipe(folder)
    with pipe.vae.peek().runtime(fast_kernels=True):
        fast = _frames(pipe)
    with pipe.vae.peek().runtime(fast_kernels=False):
        plain = _frames(pipe)
    return {"fast": fast, "plain": plain}


#: The VAE's fast kernels vs its reference kernels on these random weights (their own tolerance is
#: packages/vae3d/tests/test_fast_path.py's); a parallel decode is compared with both.
FAST_KERNEL_TOL = 5e-5


@pytest.mark.parametrize("world", [2, 4])
def test_every_mode_matches_single_process(world, folder, reference):
    results = run_ranks(HERE, "rank_modes", world, folder, timeout_s=1500)
    for name, degrees in MODES[world]:
        frames = [r[name][0] for r in results]
        split_decode = degrees.get("vae", 1) > 1
        for rank, f in enumerate(frames):
            diff = (f - reference["fast"]).abs().max().item()
            plain = (f - reference["plain"]).abs().max().item()
            print(
                f"{name} rank {rank}: max abs diff {diff:.2e} (reference VAE kernels {plain:.2e})"
            )
            assert f.shape == reference["fast"].shape
            if split_decode:
                assert plain <= TOL, (name, rank, plain)
                assert diff <= FAST_KERNEL_TOL, (name, rank, diff)
            else:
                assert diff <= TOL, (name, rank, diff)
        comm = results[0][name][1]
        assert sum(comm.values()) > 0, name  # the mode really exchanged data
    message = results[0]["world-mismatch"]
    assert f"= {2 * world}: must equal the number of processes (WORLD_SIZE={world})" in message


def test_killed_rank_fails_fast(folder):
    collective_timeout = 120.0
    results = run_ranks(
        HERE,
        "rank_killed",
        2,
        folder,
        timeout_s=1500,
        collective_timeout_s=collective_timeout,
        tolerate=(1,),
    )
    survivor = results[0]
    print(f"rank 0 after rank 1 was killed: {survivor}")
    assert results[1] is None  # rank 1 was killed
    assert survivor["error"] is not None, "rank 0 finished although rank 1 died"
    assert "rank 0: a collective with the other ranks failed" in survivor["error"]
    assert survivor["seconds"] < collective_timeout  # the dead peer is noticed, not waited out


def test_bad_degrees_are_refused_before_work():
    from cogvx.infer.parallel import ParallelConfig

    with pytest.raises(ValueError, match=r"parallel.cfg=3: 1 or 2"):
        ParallelConfig(cfg=3)
    with pytest.raises(
        ValueError, match=r"parallel.vae=3: must divide .* = 4 \(valid: \[1, 2, 4\]"
    ):
        ParallelConfig(cfg=2, sp=2, vae=3)
    with pytest.raises(ValueError, match=r"parallel.sp_mode='tree': choose from ulysses, ring"):
        ParallelConfig(sp=2, sp_mode="tree")
    from cogvx.expert_dit.config import DiTConfig

    dit = DiTConfig.tiny(num_attention_heads=2)
    with pytest.raises(ValueError, match=r"parallel.sp=4: must divide .*num_attention_heads=2"):
        ParallelConfig(sp=4).check_model(dit)
    ParallelConfig(sp=4, sp_mode="ring").check_model(dit)  # the ring has no head limit
    with pytest.raises(ValueError, match=r"parallel.sp=4: must divide the video tokens .*N=18"):
        ParallelConfig(sp=4, sp_mode="ring").check_shape(dit, (1, 3, 4, 4, 6), do_cfg=True)
    with pytest.raises(ValueError, match=r"parallel.vae=2: must divide the latent height h=3"):
        ParallelConfig(sp=2, vae=2).check_shape(dit, (1, 2, 4, 3, 4), do_cfg=True)
    with pytest.raises(ValueError, match=r"parallel.cfg=2: needs classifier-free guidance"):
        ParallelConfig(cfg=2).check_shape(dit, (1, 2, 4, 4, 4), do_cfg=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["parallel.cfg=2"],
            "parallel.cfg x parallel.sp=2 x 1: must equal the number of processes (1); launch with "
            "--nproc-per-node 2",
        ),
        (["--nproc-per-node", "2", "parallel.sp=4"], "must equal the number of processes (2)"),
        (
            ["--nproc-per-node", "3", "parallel.sp=3"],
            "parallel.sp=3: must divide the transformer's num_attention_heads=4 with "
            "parallel.sp_mode=ulysses (valid: [1, 2, 4])",
        ),
        (
            ["--nproc-per-node", "2", "parallel.cfg=2", "--guidance", "1"],
            "parallel.cfg=2: needs classifier-free guidance",
        ),
        (["parallel.sp_mode=tree"], "parallel.sp_mode=tree: choose from ulysses, ring"),
        (["parallel.timeout=0"], "parallel.timeout=0.0: a finite number > 0.0"),
        (["--seed", "1,2", "parallel.sp=2"], "parallel.*=cfg=1 sp=2 vae=1: not with a multirun"),
    ],
)
def test_cli_refuses_bad_degrees_before_launch(args, message):
    """`cogvx generate` checks the degrees against the process count and the shipped model (4
    heads, 3 x 4 x 4 tokens) before it starts any rank or loads any weight."""
    from cogvx.cli.usage import UsageError
    from cogvx.infer.cli import main

    with pytest.raises(UsageError) as err:
        main(["a red circle moves to the right", *args])
    assert message in str(err.value)


def test_launcher_ends_all_ranks_when_one_fails(capsys):
    """launch_local: a failing rank's exit code comes back and the still-running ranks are ended
    (rank 0 would otherwise sleep for 10 minutes)."""
    import sys

    from cogvx.infer.parallel import launch_local

    script = (
        "import os, sys, time; rank = int(os.environ['RANK']); "
        "assert os.environ['WORLD_SIZE'] == '3' and os.environ['MASTER_ADDR'] == '127.0.0.1'; "
        "sys.exit(3) if rank == 1 else time.sleep(600)"
    )
    start = time.monotonic()
    code = launch_local(3, [sys.executable, "-c", script])
    assert code == 3
    assert time.monotonic() - start < 120
    assert "rank 1 of 3 failed (exit code 3); ended the other ranks" in capsys.readouterr().err
    assert launch_local(2, [sys.executable, "-c", "pass"]) == 0


@pytest.mark.slow
def test_cli_launcher_writes_one_video(tmp_path):
    """`cogvx generate --nproc-per-node 2 parallel.cfg=2` with the shipped model: one set of
    outputs, written by rank 0, paths printed once."""
    import subprocess
    import sys

    out = tmp_path / "v.mp4"
    code = "import sys; from cogvx.cli.main import main; sys.exit(main(sys.argv[1:]))"
    args = ["generate", "a red circle moves to the right", "--steps", "2", "--no-progress"]
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            *args,
            "--nproc-per-node",
            "2",
            "parallel.cfg=2",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.is_file() and out.with_suffix(".gif").is_file()
    assert run.stdout.count(str(out)) == 1
