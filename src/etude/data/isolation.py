"""Work on untrusted files in worker processes, where a crash, a hang or a memory blow-up costs
one file and never the run.

A MIDI parser is native code: a crafted file can abort it (`double free or corruption`), loop
for ever, or ask for gigabytes. `isolated_map` runs a function over items in worker processes,
each with an address-space limit (RLIMIT_AS) and a wall-clock limit per item. A worker that dies
or overruns is killed and replaced, and its item comes back as a `Failed` with the reason; the
results are yielded in the items' order. Workers die with their parent (Linux) and leave quietly
when it goes away, so a `kill -9` of the run leaves no orphan printing tracebacks.
"""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

_STOP = ("stop",)


@dataclass(frozen=True)
class Failed:
    """An item whose worker crashed, overran its time or memory, or raised."""

    kind: str  # "crashed" | "timed out" | "out of memory" | "error"
    detail: str


@dataclass(frozen=True)
class Limits:
    """What one item may cost its worker."""

    seconds: float = 60.0  # wall-clock time per item
    memory_mb: int = 4096  # address space a worker may add to what it starts with (RLIMIT_AS)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent exits (elsewhere: a no-op); exit now if
    the parent (pid `parent`) is already gone, since it may die before the request is made (on a
    busy machine a forked worker can wait long before it first runs)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(0)


def _quiet() -> None:
    """Send what native code prints on a crash ("double free or corruption", a fault handler's
    dump) to /dev/null: the parent reports the file as rejected, with the cause."""
    faulthandler.disable()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)


def _limit_memory(extra_mb: int) -> None:
    """Cap this process's address space at its current size plus `extra_mb` (Linux)."""
    try:
        import resource

        with open("/proc/self/status") as fh:
            size_kb = int(re.search(r"VmSize:\s+(\d+)", fh.read()).group(1))
        cap = (size_kb << 10) + (extra_mb << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, OSError, AttributeError, ValueError):
        pass  # no /proc or no RLIMIT_AS: the time limit still holds


def _serve(conn, fn: Callable, init: Callable | None, initargs: tuple, memory_mb: int, parent: int) -> None:
    """A worker of process `parent`: items in, ("ok", result) | ("error", text) | ("memory", text)
    out, until told to stop."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _quiet()
    try:
        if init is not None:
            init(*initargs)
        _limit_memory(memory_mb)
        while True:
            item = conn.recv()
            if item == _STOP:
                return
            try:
                reply = ("ok", fn(item))
            except MemoryError:
                reply = ("memory", "")
            except Exception as exc:  # anything the function raises costs only this item
                reply = ("error", f"{type(exc).__name__}: {str(exc).strip()[:200]}")
            conn.send(reply)
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the parent went away: leave without a word


class _Worker:
    def __init__(self, ctx, fn: Callable, init: Callable | None, initargs: tuple, limits: Limits):
        self.conn, child = ctx.Pipe()
        args = (child, fn, init, initargs, limits.memory_mb, os.getpid())
        self.proc = ctx.Process(target=_serve, args=args, daemon=True)
        self.proc.start()
        child.close()
        self.task: tuple[int, float] | None = None  # (item index, monotonic start)

    def give(self, index: int, item: Any) -> None:
        self.task = (index, time.monotonic())
        self.conn.send(item)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(_STOP)
        except OSError:
            pass
        self.proc.join(timeout=2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def isolated_map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int = 1,
    init: Callable | None = None,
    initargs: tuple = (),
    limits: Limits = Limits(),
) -> Iterator[Any]:
    """fn(item) for every item, computed in `workers` processes and yielded in the items' order;
    an item whose worker crashed, overran `limits` or raised yields a `Failed` instead.

    `fn`, `init` and items must be picklable where processes are spawned (they are forked on
    Linux). At most 4 x workers results wait to be yielded, so memory stays flat.
    """
    items = list(items)
    if not items:
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    spawn = lambda: _Worker(ctx, fn, init, initargs, limits)  # noqa: E731
    pool = [spawn() for _ in range(max(1, min(workers, len(items))))]
    done: dict[int, Any] = {}
    handed = yielded = 0
    try:
        while yielded < len(items):
            for w in pool:  # hand out work, a bounded window ahead of what was yielded
                if w.task is None and handed < len(items) and handed < yielded + 4 * len(pool):
                    w.give(handed, items[handed])
                    handed += 1
            busy = [w for w in pool if w.task is not None]
            soonest = min(w.task[1] for w in busy) + limits.seconds - time.monotonic()
            wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=max(0.0, soonest))
            for k, w in enumerate(pool):
                if w.task is not None:
                    outcome = _outcome(w, limits)
                    if outcome is not None:
                        done[w.task[0]] = outcome
                        w.task = None
                        if isinstance(outcome, Failed) and outcome.kind in ("crashed", "timed out"):
                            pool[k] = spawn()  # the old one is dead or killed
            while yielded in done:
                yield done.pop(yielded)
                yielded += 1
    finally:
        for w in pool:
            w.stop()


def _outcome(w: _Worker, limits: Limits) -> Any | None:
    """The busy worker's result, a Failed, or None while it is still within its limits."""
    if w.conn.poll():
        try:
            status, value = w.conn.recv()
        except (EOFError, OSError):
            w.kill()
            return Failed("crashed", _death(w.proc.exitcode))
        if status == "ok":
            return value
        return Failed("out of memory" if status == "memory" else "error", value or f"over {limits.memory_mb} MB")
    if not w.proc.is_alive():
        w.kill()
        return Failed("crashed", _death(w.proc.exitcode))
    if time.monotonic() - w.task[1] > limits.seconds:
        w.kill()
        return Failed("timed out", f"over {limits.seconds:g} s")
    return None
