"""Wall time of `etude evaluate` for 20 generated + 20 test pieces of 30 s, against the limit of
2 minutes on 2 CPU cores (issue 5), with the shipped model on the built-in corpus.

Timed twice in the same run: with a classifier trained beforehand (the evaluation itself), and
with the classifier trained inside the call (what a first `etude evaluate` costs).

    python benchmarks/evaluate_speed.py [--n 20]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from etude.data import prepare
from etude.data.builtin import default_dir, export_builtin
from etude.evaluation.compare import evaluate
from etude.evaluation.judging import train_classifier
from etude.models.pretrained import pretrained_path

LIMIT_S = 120.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        export_builtin(default_dir(), per_genre=100)
        data = Path(tmp) / "data"
        prepare(default_dir(), data)
        t = time.perf_counter()
        train_classifier(data, Path(tmp) / "clf", progress=False)
        clf_s = time.perf_counter() - t
        t = time.perf_counter()
        report = evaluate(
            pretrained_path("builtin"), Path(tmp) / "r1", classifier=Path(tmp) / "clf", n=a.n, data=data, progress=False
        )
        eval_s = time.perf_counter() - t
        t = time.perf_counter()
        evaluate(pretrained_path("builtin"), Path(tmp) / "r2", n=a.n, data=data, progress=False)
        full_s = time.perf_counter() - t
    print(f"{a.n} generated + {a.n} test pieces of 30 s:")
    print(f"  evaluate with a trained classifier: {eval_s:6.1f} s = {eval_s / LIMIT_S:.2f} x limit {LIMIT_S:.0f} s")
    print(
        f"  evaluate training its classifier:   {full_s:6.1f} s = {full_s / LIMIT_S:.2f} x limit (classifier "
        f"alone {clf_s:.1f} s)"
    )
    lstm = report["spectral"]["lstm"]
    print(
        f"  LSTM vs original: LSD {lstm['log_spectral_distance_db']:.2f} dB, JS {lstm['js_distance']:.3f}, "
        f"adherence {report['genre']['adherence']['lstm']['share_as_labelled']:.2f} (test accuracy "
        f"{report['genre']['test']['accuracy']:.2f})"
    )


if __name__ == "__main__":
    main()
