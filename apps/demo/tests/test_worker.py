"""The bounded single-worker queue: one job at a time, overflow refused, failures contained."""

from __future__ import annotations

import threading

import pytest

from cogvx.demo.worker import Busy, GenerationQueue


def _gate_work(gate: threading.Event, log: list[int], n: int):
    def work(job):
        job.step(1, 2)
        gate.wait(10)
        log.append(n)
        job.step(2, 2)
        return n

    return work


def test_one_runs_and_max_waiting_wait_the_rest_are_busy() -> None:
    q = GenerationQueue(max_waiting=2)
    gate = threading.Event()
    log: list[int] = []
    first = q.submit(_gate_work(gate, log, 0))
    assert first.events.get(timeout=10).kind == "queued"
    assert first.events.get(timeout=10).kind == "started"
    waiting = [q.submit(_gate_work(gate, log, n)) for n in (1, 2)]
    with pytest.raises(Busy, match="busy, try again: 3 request"):
        q.submit(_gate_work(gate, log, 3))
    assert q.waiting == 2 and q.busy
    gate.set()
    assert [j.wait(10) for j in [first, *waiting]] == [0, 1, 2]
    assert log == [0, 1, 2]  # in order, one at a time
    # the queue has room again once they ran
    assert q.submit(lambda job: "again").wait(10) == "again"
    assert q.completed == 4 and q.failed == 0
    q.close(5)


def test_a_failing_job_reports_its_error_and_the_worker_goes_on() -> None:
    q = GenerationQueue(max_waiting=1)

    def broken(job):
        raise ValueError("frames=4: one of 9, 17")

    bad = q.submit(broken)
    with pytest.raises(ValueError, match="frames=4"):
        bad.wait(10)
    kinds = []
    while not bad.events.empty():
        kinds.append(bad.events.get().kind)
    assert kinds == ["queued", "started", "error"]
    assert q.submit(lambda job: 7).wait(10) == 7
    assert (q.completed, q.failed) == (1, 1)
    q.close(5)


def test_step_events_reach_the_submitter_in_order() -> None:
    q = GenerationQueue(max_waiting=0)

    def work(job):
        for i in range(1, 4):
            job.step(i, 3)
        job.stage("writing the video")
        return "ok"

    job = q.submit(work)
    assert job.wait(10) == "ok"
    events = []
    while not job.events.empty():
        events.append(job.events.get())
    assert [(e.kind, e.done) for e in events if e.kind == "step"] == [
        ("step", 1),
        ("step", 2),
        ("step", 3),
    ]
    assert events[-1].kind == "done" and events[-1].value == "ok"
    q.close(5)


def test_bad_size_and_closed_queue() -> None:
    with pytest.raises(ValueError, match="max_waiting=-1"):
        GenerationQueue(max_waiting=-1)
    q = GenerationQueue(max_waiting=1)
    q.close(5)
    with pytest.raises(Busy, match="shutting down"):
        q.submit(lambda job: None)
