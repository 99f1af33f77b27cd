"""A ``cogvx train`` run SIGKILLed at a random step and resumed with ``resume=auto`` matches the
uninterrupted run bit for bit: every per-step loss and the final weights (subprocesses, real kill)."""

from __future__ import annotations

import random
import signal
import subprocess
import time

import torch

from cogvx.train.logs import read_metrics

STEPS, EVERY = 24, 3
ARGS = (
    "model=double",
    "data=double",
    "optim.lr=1e-2",
    "model.step_sleep=0.15",
    f"trainer.max_steps={STEPS}",
    f"checkpoint.every_n_steps={EVERY}",
    "checkpoint.keep=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
)


def _weights(run) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / f"step={STEPS:08d}.ckpt", weights_only=True)[
        "state_dict"
    ]


def test_sigkill_then_resume_auto_is_bit_exact(tmp_path, script_env, script_command):
    rng = random.Random()
    kill_after = EVERY * rng.randint(2, STEPS // EVERY - 2)  # wait for this checkpoint ...
    # ... then kill at once (the checkpoint's own step row must already be on disk) or
    # somewhere in the next steps
    delay = rng.choice((0.0, rng.uniform(0.0, 0.3)))
    full, killed = tmp_path / "full", tmp_path / "killed"
    quiet = dict(env=script_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    uninterrupted = subprocess.Popen(script_command(*ARGS, f"hydra.run.dir={full}"), **quiet)
    victim = subprocess.Popen(script_command(*ARGS, f"hydra.run.dir={killed}"), **quiet)
    target = killed / "checkpoints" / f"step={kill_after:08d}.ckpt"
    deadline = time.monotonic() + 600
    while not target.exists():
        assert victim.poll() is None, victim.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.01)
    time.sleep(delay)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    victim.stderr.close()
    assert not (killed / "checkpoints" / f"step={STEPS:08d}.ckpt").exists(), "killed too late"

    resumed = subprocess.run(
        script_command(*ARGS, "resume=auto", f"hydra.run.dir={killed}"),
        env=script_env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Restoring states from the checkpoint" in resumed.stderr
    assert uninterrupted.wait() == 0, uninterrupted.stderr.read().decode()[-2000:]
    uninterrupted.stderr.close()

    note = f"killed {delay:.2f} s after the step-{kill_after} checkpoint"
    want, got = read_metrics(full)["train/loss"], read_metrics(killed)["train/loss"]
    assert sorted(want) == list(range(1, STEPS + 1)), note
    assert got == want, note  # floats written with repr: equal text = equal bits
    a, b = _weights(full), _weights(killed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), note
