"""Generation off the server: one worker process takes requests in arrival order, so neither
the event loop nor the interpreter lock that serves the page waits for the model, the audio
renderer or the plots. At most `max_waiting` requests wait; each gets a future the API awaits."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than the studio accepts."""


class Worker:
    def __init__(self, max_waiting: int = 32):
        self.max_waiting = max_waiting
        self.pool = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_leave_a_core_free
        )
        self.lock = threading.Lock()
        self.pending = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run fn(*args) (picklable) in the worker process after the requests before it."""
        with self.lock:
            if self.pending >= self.max_waiting:
                raise QueueFull
            self.pending += 1
        future = self.pool.submit(fn, *args)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future) -> None:
        with self.lock:
            self.pending -= 1

    def waiting(self) -> int:
        with self.lock:
            return self.pending

    def close(self, grace: float = 5.0) -> None:
        """Cancel what waits and end the worker process now (a piece being made is abandoned).
        Only the pool's own process is ended, not other children of the process that serves.
        Certain: SIGTERM, up to `grace` seconds to go, then SIGKILL; the process is reaped either
        way, so it is gone when close returns (one still importing torch or busy in native code
        can outlive a SIGTERM)."""
        # the pool has no public handle on its processes before Python 3.14's terminate_workers,
        # and shutdown() forgets them: take them first
        workers = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        for process in workers:
            if not _reaped(process, grace):
                log.warning("the generation worker (pid %s) ignored SIGTERM; killing it", process.pid)
                process.kill()
                _reaped(process, None)


def _reaped(process: multiprocessing.process.BaseProcess, timeout: float | None) -> bool:
    """Wait up to `timeout` seconds (None: for ever) until the process has ended and been reaped.
    The pool's own manager thread also joins its processes: when it reaps one first, our join
    returns at once with the exit code not yet recorded, so wait for the code, not for join."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while process.exitcode is None:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        process.join(0.05)
    return True


def _leave_a_core_free() -> None:
    """In the worker: torch uses all cores but one, so the server stays responsive."""
    import os

    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
