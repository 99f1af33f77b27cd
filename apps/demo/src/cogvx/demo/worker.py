"""One worker per model, with a bounded queue in front of it (no gradio, no torch).

Generation holds a whole model and most of a machine, so requests run one at a time on a single
worker thread. At most ``max_waiting`` requests wait behind the running one; a request beyond that
is refused at once with :class:`Busy` (the page says "busy, try again") instead of piling up. A
request that fails delivers its exception to the caller who submitted it; the worker goes on with
the next one, so one bad request never stops the server.

Each :class:`Job` carries a queue of :class:`Event` values (waiting position, denoising steps,
decoding, the result or the error) that the page turns into its progress bar.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Busy", "Event", "GenerationQueue", "Job"]

log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """The queue is full; ``str(e)`` is the message shown to the user."""


@dataclass(frozen=True)
class Event:
    """What a job reports: ``kind`` and, for ``step``, ``done`` of ``total`` steps."""

    kind: Literal["queued", "started", "step", "stage", "done", "error"]
    done: int = 0
    total: int = 0
    text: str = ""
    value: Any = None


class Job:
    """One submitted request: its events, and its result or error once finished."""

    def __init__(self, work: Callable[[Job], Any]) -> None:
        self.work = work
        self.events: queue.Queue[Event] = queue.Queue()
        self.finished = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def report(self, event: Event) -> None:
        """Called by the work (from the worker thread) to report progress."""
        self.events.put(event)

    def step(self, done: int, total: int) -> None:
        self.report(Event("step", done, total))

    def stage(self, text: str) -> None:
        self.report(Event("stage", text=text))

    def wait(self, timeout: float | None = None) -> Any:
        """The result (or raise the work's exception) once the job has run."""
        if not self.finished.wait(timeout):
            raise TimeoutError(f"job not finished after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result


class GenerationQueue:
    """A single worker thread and at most ``max_waiting`` jobs waiting for it.

    ``submit(work)`` returns a :class:`Job` at once (``work(job)`` runs later on the worker) or
    raises :class:`Busy`. ``close()`` stops the worker after the jobs already accepted.
    """

    def __init__(self, max_waiting: int = 4, *, name: str = "cogvx-demo-worker") -> None:
        if isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 0:
            raise ValueError(f"max_waiting={max_waiting!r}: expected an integer >= 0")
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._waiting: list[Job] = []
        self._running: Job | None = None
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self.completed = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running is not None

    def submit(self, work: Callable[[Job], Any]) -> Job:
        """Queue ``work``; :class:`Busy` when ``max_waiting`` jobs already wait."""
        job = Job(work)
        with self._lock:
            if self._closed:
                raise Busy("the demo is shutting down; try again later")
            ahead = len(self._waiting) + (self._running is not None)
            if ahead >= 1 + self.max_waiting:
                raise Busy(
                    f"busy, try again: {ahead} request(s) are ahead of yours (one runs at a "
                    f"time and {self.max_waiting} may wait)"
                )
            self._waiting.append(job)
            position = ahead
            self._wake.notify()
        job.report(Event("queued", done=position, text=f"waiting: {position} ahead"))
        return job

    def close(self, timeout: float | None = None) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if not self._waiting:
                    return  # closed and drained
                job = self._waiting.pop(0)
                self._running = job
            job.report(Event("started"))
            try:
                job.result = job.work(job)
            except BaseException as e:  # the worker outlives every request's failure
                job.error = e
                log.warning("request failed: %s: %s", type(e).__name__, e)
            finally:
                with self._lock:
                    self._running = None
                    if job.error is None:
                        self.completed += 1
                    else:
                        self.failed += 1
                job.finished.set()
                if job.error is None:
                    job.report(Event("done", value=job.result))
                else:
                    job.report(Event("error", text=str(job.error), value=job.error))
