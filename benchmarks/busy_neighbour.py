"""Training speed beside a busy neighbour: how much one other CPU-bound process costs.

On a 2-core machine, trains the cpu preset for 80 iterations on a prepared folder, alone and
beside one `while True: pass` process, with OpenMP's own waiting (OMP_WAIT_POLICY unset:
torch's default) and passive waiting (what the `etude` command sets). Target (issue 34): one
busy neighbour costs at most ~2 x. Prints iterations per second and the ratios.

    python benchmarks/busy_neighbour.py [--data DIR]   (default: the built-in corpus, prepared)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TRAIN = r"""
import sys, time
from etude.config import load_preset
from etude.training.loop import train
cfg = load_preset("cpu")
cfg.data = sys.argv[1]
overrides = ["train.iterations=80", "train.eval_every=100000", "train.eval_batches=1"]
t = time.perf_counter()
train(cfg, sys.argv[2], overrides=overrides, force=True, progress=False)
print(80 / (time.perf_counter() - t))
"""


def speed(data: Path, policy: str, busy: bool) -> float:
    """Iterations per second in a fresh process with OMP_WAIT_POLICY=policy ("unset": none)."""
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        with tempfile.TemporaryDirectory() as run:
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy != "unset":
                env["OMP_WAIT_POLICY"] = policy
            done = subprocess.run(
                [sys.executable, "-c", TRAIN, str(data), run], env=env, capture_output=True, text=True, check=True
            )
        return float(done.stdout.strip().splitlines()[-1])
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a prepared event-token folder")
    args = parser.parse_args()
    data = args.data
    if data is None:
        from etude.data import prepare
        from etude.data.builtin import default_dir, export_builtin

        data = Path(tempfile.mkdtemp()) / "data"
        export_builtin(default_dir(), per_genre=40, workers=2)
        prepare(default_dir(), data, workers=2)
    rows = {(p, b): speed(data, p, b) for p in ("unset", "PASSIVE") for b in (False, True)}
    for (policy, busy), its in rows.items():
        print(f"OMP_WAIT_POLICY={policy:<8} {'beside a busy process' if busy else 'alone':<22} {its:6.2f} it/s")
    for policy in ("unset", "PASSIVE"):
        cost = rows[(policy, False)] / rows[(policy, True)]
        print(f"{policy}: one busy neighbour costs {cost:.1f} x (limit 2 x: ratio {cost / 2:.2f})")
    quiet = rows[("PASSIVE", False)] / rows[("unset", False)]
    print(f"PASSIVE alone: {quiet:.2f} x the speed of torch's default alone")


if __name__ == "__main__":
    main()
