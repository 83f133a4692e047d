"""Generation off the event loop: one worker thread takes requests in arrival order from a
bounded queue; each request gets a future the API awaits."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than the studio accepts."""


class Worker:
    def __init__(self, max_waiting: int = 32):
        self.queue: queue.Queue = queue.Queue(maxsize=max_waiting)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        try:
            self.queue.put_nowait((fn, future))
        except queue.Full:
            raise QueueFull from None
        return future

    def waiting(self) -> int:
        return self.queue.qsize()

    def _run(self) -> None:
        while True:
            fn, future = self.queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the request that asked
                future.set_exception(exc)
