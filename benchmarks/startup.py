"""Start-up time of the command line: `etude --help` and `etude --version`, beside a bare Python.

Building the parser must not import torch, MidiTok or scipy.stats (issue 19: they took ~3 s);
each command imports what it needs. Target on 2 CPU cores: each under 0.5 s. Prints the median
of --runs runs of each, the bare interpreter's start-up as the peer, and the ratio to the limit.

    python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

LIMIT_S = 0.5


def median_wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    bare = median_wall([sys.executable, "-c", "pass"], a.runs)
    print(f"{'command':<24} {'median s':>9} {'x bare python':>14} {'/ limit':>8}")
    print(f"{'python -c pass':<24} {bare:>9.3f} {1.0:>14.1f} {bare / LIMIT_S:>8.2f}")
    worst = 0.0
    for args in (["--help"], ["--version"], ["train", "--help"]):
        wall = median_wall([sys.executable, "-m", "etude", *args], a.runs)
        worst = max(worst, wall)
        print(f"{'etude ' + ' '.join(args):<24} {wall:>9.3f} {wall / bare:>14.1f} {wall / LIMIT_S:>8.2f}")
    verdict = "met" if worst < LIMIT_S else "NOT met"
    print(f"target: every command under {LIMIT_S} s: {verdict} (slowest {worst:.3f} s)")
    return 0 if worst < LIMIT_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
