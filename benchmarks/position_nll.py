"""Likelihood by position in the piece (etude.evaluation.position), model against model.

Every test piece of at least 1,200 tokens is read whole by each model, its state (and memory)
carried; the table gives mean NLL (nats/token) per position bucket, with the first model mixed
half and half with a copy model of the piece as the reference; a second table gives the buckets
before 4,096 over only the pieces of at least 4,096 tokens (a later bucket holds only the longer
pieces, which are harder, so across buckets only this one compares like with like). With two models or more, each
later one is checked against the first (issue 30's targets):
- positions >= 2,048: at least 0.25 nats/token below the first model, and below its copy mix;
- no bucket after 256 worse than its 256-511 bucket;
- mean NLL over the pieces at least 0.12 below the first model's.

    python benchmarks/position_nll.py [--data DIR] [--split test] [MODEL ...]

MODEL: a checkpoint folder or pretrained[:NAME] (default: pretrained:piano). DATA (default: the
piano corpus prepared with default settings into out/bench/piano_data, made once) must have the
models' vocabulary.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from etude.config import DataConfig
from etude.data import prepare
from etude.data.store import open_split
from etude.evaluation.position import position_report
from etude.models.checkpoint import load_checkpoint
from etude.models.pretrained import model_path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LONG = 2048  # the long-range target starts here (tokens)


def piano_data(out: Path) -> Path:
    if not (out / "meta.json").exists():
        prepare(SHARED / "piano", out, DataConfig())
    return out


def long_range(report: dict, key: str = "nll") -> float:
    """Mean NLL over the buckets from LONG on, weighted by their tokens."""
    rows = [b for b in report["buckets"] if b["from"] >= LONG and b["tokens"]]
    return sum(b[key] * b["tokens"] for b in rows) / max(sum(b["tokens"] for b in rows), 1)


def worse_than_256(buckets: list[dict]) -> list[str]:
    """The buckets after 256 whose NLL is above the 256-511 bucket's."""
    mid = next(b["nll"] for b in buckets if b["from"] == 256)
    return [f"{b['from']}-{b['to'] - 1}" for b in buckets if b["from"] > 256 and b["nll"] > mid]


def print_table(buckets: dict[str, list[dict]], means: dict[str, float] | None = None) -> None:
    """NLL per bucket, a row a model, and the first model's copy mixture under them."""
    first = next(iter(buckets.values()))
    edges = [f"{b['from']}-{b['to'] - 1}" for b in first]
    print(f"\n{'model':<28}" + "".join(f"{e:>11}" for e in edges) + (f"{'mean':>9}" if means else ""))
    for name, rows in buckets.items():
        mean = f"{means[name]:>9.3f}" if means else ""
        print(f"{name[-28:]:<28}" + "".join(f"{b['nll']:>11.3f}" for b in rows) + mean)
    print(f"{'first + copy model':<28}" + "".join(f"{b['copy_mix']:>11.3f}" for b in first))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=["pretrained:piano"])
    ap.add_argument("--data", type=Path, default=Path("out/bench/piano_data"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path, help="write the reports here")
    args = ap.parse_args()
    rows, index = open_split(piano_data(args.data), args.split)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    reports = {}
    for name in args.models:
        t0 = time.perf_counter()
        ckpt = load_checkpoint(model_path(name))
        reports[name] = position_report(ckpt.model, rows, index)
        print(
            f"{name} ({ckpt.config.model.describe()}): {reports[name]['pieces']} pieces in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    first = reports[args.models[0]]
    print_table({name: r["buckets"] for name, r in reports.items()}, {name: r["mean"] for name, r in reports.items()})
    same = first["same_pieces"]
    print(f"\nthe same {same['pieces']} pieces (those of at least {same['from']} tokens) in every bucket:")
    print_table({name: r["same_pieces"]["buckets"] for name, r in reports.items()})
    for name in args.models[1:]:
        r = reports[name]
        mine, copy_mix = long_range(r), long_range(first, "copy_mix")
        gain = long_range(first) - mine
        worse = worse_than_256(r["buckets"])
        print(
            f"\n{name}: positions >= {LONG}: {gain:+.3f} nats/token below the first (target >= 0.25: "
            f"{'met' if gain >= 0.25 else 'NOT met'}); {mine:.3f} against the copy mix's "
            f"{copy_mix:.3f} ({'met' if mine < copy_mix else 'NOT met'})"
        )
        print(f"  buckets after 256 worse than 256-511: {', '.join(worse) or 'none'} ({'NOT met' if worse else 'met'})")
        print(f"  ... over the same pieces: {', '.join(worse_than_256(r['same_pieces']['buckets'])) or 'none'}")
        print(
            f"  mean {first['mean'] - r['mean']:+.3f} below the first (target >= 0.12: "
            f"{'met' if first['mean'] - r['mean'] >= 0.12 else 'NOT met'})"
        )
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
