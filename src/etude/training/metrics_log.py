"""A run's metrics.csv (one row per training-loss log or validation) and TensorBoard scalars."""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


METRICS = ["iteration", "split", "loss", "perplexity", "accuracy", "lr", "tokens_per_s", "elapsed_s"]


def describe_metrics(m: dict[str, Any]) -> str:
    """One line of validation metrics (event tokens or piano rolls)."""
    if "unigram_perplexity" in m:
        return (
            f"valid loss {m['loss']:.3f}, perplexity {m['perplexity']:.2f} (unigram {m['unigram_perplexity']:.2f}), "
            f"accuracy {m['accuracy']:.3f}"
        )
    floor = f"per-key marginals {m['marginal_loss']:.3f}"
    return f"valid NLL {m['loss']:.3f} nats/frame ({floor}), frame accuracy {m['accuracy']:.3f}"


class MetricsLog:
    """metrics.csv (one row per log or validation) and TensorBoard scalars under RUN/tb.

    On resume, rows past the starting iteration (written after that checkpoint) are dropped: the
    kept rows go to a temporary file that atomically replaces the log, which is then only ever
    appended to, so a kill at any moment leaves the whole history up to the checkpoint.
    """

    def __init__(self, run_dir: Path, start: int):
        path = run_dir / "metrics.csv"
        if not (start and path.exists()):
            _write_metrics(path, [])
        else:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            kept = [r for r in rows if (r.get("iteration") or "").isdigit() and int(r["iteration"]) <= start]
            if len(kept) != len(rows):
                _write_metrics(path, kept)
        self.fh = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.fh, METRICS)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start or None)
        except ImportError:
            log.info("tensorboard not installed: logging to metrics.csv only")
            self.tb = None

    def record(self, it: int, split: str, m: dict, lr: float, tokens_per_s: float, elapsed: float) -> None:
        self.writer.writerow(
            {
                "iteration": it,
                "split": split,
                "loss": f"{m['loss']:.5f}",
                "perplexity": f"{m.get('perplexity', math.nan):.4f}",
                "accuracy": f"{m.get('accuracy', math.nan):.4f}",
                "lr": f"{lr:.3e}",
                "tokens_per_s": f"{tokens_per_s:.0f}",
                "elapsed_s": f"{elapsed:.1f}",
            }
        )
        self.fh.flush()
        if self.tb is not None:
            for k in ("loss", "perplexity", "accuracy"):
                if k in m:
                    self.tb.add_scalar(f"{split}/{k}", m[k], it)

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()


def _write_metrics(path: Path, rows: list[dict]) -> None:
    """metrics.csv with its header and `rows`, through a temporary file and an atomic rename."""
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, METRICS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
