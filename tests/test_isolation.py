"""etude.data.isolation: a crash, a hang, a memory blow-up or an exception costs one item."""

import os
import signal
import time

import pytest

from etude.data.isolation import Failed, Limits, isolated_map
from procs import alive, children


def _work(item):
    kind, value = item
    if kind == "abort":
        os.abort()  # what a native double free ends in
    if kind == "hang":
        while True:
            pass
    if kind == "alloc":
        return len(bytearray(value << 20))
    if kind == "raise":
        raise OverflowError("time out of int32 range")
    return value * 2


def test_each_failure_costs_one_item_and_order_holds():
    items = [
        ("ok", 1),
        ("abort", 0),
        ("ok", 2),
        ("hang", 0),
        ("alloc", 2048),
        ("ok", 3),
        ("raise", 0),
        ("alloc", 8),
        ("ok", 4),
    ]
    t0 = time.monotonic()
    out = list(isolated_map(_work, items, workers=2, limits=Limits(seconds=3, memory_mb=512)))
    assert time.monotonic() - t0 < 30
    assert out[0] == 2 and out[2] == 4 and out[5] == 6 and out[8] == 8
    assert out[7] == 8 << 20  # a modest allocation is fine
    assert out[1] == Failed("crashed", "killed by SIGABRT")
    assert out[3] == Failed("timed out", "over 3 s")
    assert isinstance(out[4], Failed) and out[4].kind in ("out of memory", "crashed")
    assert out[6] == Failed("error", "OverflowError: time out of int32 range")


def test_workers_are_gone_afterwards_even_when_the_consumer_stops_early():
    results = isolated_map(_work, [("ok", k) for k in range(50)], workers=2)
    assert next(results) == 0
    results.close()  # the generator's clean-up stops its workers
    assert [c for c in children(os.getpid()) if alive(c)] == []


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc to find the workers")
def test_workers_die_with_their_parent(tmp_path):
    """kill -9 of the process that runs the pool: its workers go too (no orphans printing tracebacks)."""
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(
        "import sys, time\n"
        "from etude.data.isolation import isolated_map\n"
        "def slow(x):\n    time.sleep(30)\n"
        "for _ in isolated_map(slow, range(4), workers=2):\n    pass\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        workers = children(proc.pid)
        if len(workers) == 2:
            break
        time.sleep(0.05)
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    deadline = time.time() + 30  # a bound for a busy machine, not a timing: they go at once when run
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(alive(w) for w in workers)
    assert b"Traceback" not in err


def test_a_worker_whose_parent_is_already_gone_leaves_at_once():
    """The parent may die before a forked worker first runs (a busy machine), too early for
    Linux's death signal: the worker sees that its parent is not the one that started it and
    exits before it reads an item."""
    import subprocess
    import sys

    code = "import os\nfrom etude.data.isolation import _die_with_parent\n"
    code += "_die_with_parent(os.getppid() + 1)\nprint('alive')\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "alive" not in done.stdout
    stays = code.replace("os.getppid() + 1", "os.getppid()")
    assert "alive" in subprocess.run([sys.executable, "-c", stays], capture_output=True, text=True, timeout=60).stdout
