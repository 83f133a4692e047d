"""Peak memory and wall time of `etude evaluate` at the piano corpus's size, against limits.

The piano corpus (../shared/data/piano, 3,936 files, ~18 M training tokens) is prepared as REMI
tokens, a tiny-preset model is trained on it for a few iterations (the evaluation's cost hardly
depends on the model's quality), and `etude evaluate RUN --n 24` runs in a child process that
reports its own peak resident memory. Issue 14: the first try was killed at 23.7 GB after
37 minutes; limits here: 4 GB and 10 minutes on 2 CPU cores (a 24 GB machine).

    python benchmarks/evaluate_piano.py [--corpus ../shared/data/piano] [--work DIR] [--n 24]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT_MB, LIMIT_S = 4096, 600.0
CHILD = """
import json, resource, sys, time
from pathlib import Path
from etude.evaluation.compare import evaluate
t = time.perf_counter()
report = evaluate(Path(sys.argv[1]), Path(sys.argv[2]), n=int(sys.argv[3]), progress=False)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": peak_mb,
                  "copied": report["memorisation"]["lstm"]["max"], "train_pieces": report["pieces_per_set"]}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "piano")
    ap.add_argument("--work", type=Path, help="folder for the prepared data and the run (default: a temporary one)")
    ap.add_argument("--n", type=int, default=24)
    a = ap.parse_args()
    from etude.config import load_preset
    from etude.data import prepare
    from etude.training.loop import train

    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        t = time.perf_counter()
        prepare(a.corpus, work / "data")
        prepare_s = time.perf_counter() - t
        cfg = load_preset("tiny")
        cfg.data = str((work / "data").resolve())
        train(cfg, work / "run", overrides=["train.iterations=60", "train.eval_every=60"], force=True, progress=False)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(work / "run"), str(work / "report"), str(a.n)],
            capture_output=True,
            text=True,
            check=True,
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"piano corpus {a.corpus}: prepared in {prepare_s:.0f} s; etude evaluate --n {a.n}:")
    print(f"  peak memory {got['peak_mb']:6d} MB = {got['peak_mb'] / LIMIT_MB:.2f} x limit {LIMIT_MB} MB")
    print(f"  wall time   {got['seconds']:6.0f} s  = {got['seconds'] / LIMIT_S:.2f} x limit {LIMIT_S:.0f} s")
    met = got["peak_mb"] <= LIMIT_MB and got["seconds"] <= LIMIT_S
    print(f"target: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
