"""Generation speed as a real-time factor: seconds of music per second of wall time.

The shipped piano model (2 x 256) makes one 30 s piece of each of its six genres at batch 1,
the way `etude generate --genre G --n 1` and a robot's `perform --run pretrained` do; the
shipped built-in-corpus model (cpu preset, 2 x 256) the same at batch 1 and 16; the paper
preset (4 x 1024, random weights: speed does not depend on the weights) tokens/s at batch 1
and 16, turned into music seconds with the piano model's seconds per token from this run.
Targets on 2 CPU cores: piano >= 20x at batch 1 (issue 14), cpu preset >= 50x, paper >= 1x
(issue 3). Audio rendering is not included.

    python benchmarks/generate_speed.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from etude.config import load_preset
from etude.generation.generate import Ask, sample_tokens
from etude.models.checkpoint import Checkpoint, load_checkpoint
from etude.models.lstm import LSTMGenerator
from etude.models.pretrained import pretrained_path


def timed(ckpt: Checkpoint, genre: str, n: int, length: str) -> tuple[float, int, float]:
    """Wall seconds, tokens and music seconds of n pieces sampled as one batch."""
    t = time.perf_counter()
    seqs = sample_tokens(ckpt, Ask(genre, n, length, seed=1))
    wall = time.perf_counter() - t
    music = sum(ckpt.encoding.decode(np.array(s)).to("second").end() for s in seqs)
    return wall, sum(len(s) for s in seqs), music


def row(name: str, batch: int, wall: float, tokens: int, music: float, target: str) -> None:
    print(f"{name:<28} {batch:>5} {tokens / wall:9.0f} {music / wall:9.1f}x {target:>7}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--paper-tokens", type=int, default=200)
    a = ap.parse_args()
    length = f"{a.seconds:g}s"
    print(f"{'model':<28} {'batch':>5} {'tokens/s':>9} {'music s/s':>10} {'target':>7}")
    piano = load_checkpoint(pretrained_path("piano"))
    totals = np.zeros(3)
    worst = float("inf")
    for genre in piano.encoding.genres:
        wall, tokens, music = timed(piano, genre, 1, length)
        totals += (wall, tokens, music)
        worst = min(worst, music / wall)
        row(f"piano (shipped) {genre}", 1, wall, tokens, music, "20x")
    row("piano (shipped) all genres", 1, *totals, "20x")
    builtin = load_checkpoint(pretrained_path("builtin"))
    for batch in (1, 16):
        row("cpu preset (builtin)", batch, *timed(builtin, builtin.encoding.genres[0], batch, length), "50x")
    spt = totals[2] / totals[1]
    cfg = load_preset("paper")
    paper = Checkpoint(
        piano.path,
        LSTMGenerator(piano.model.vocab_size, piano.model.n_genres, cfg.model).eval(),
        cfg,
        piano.encoding,
        {},
    )
    for batch in (1, 16):
        wall, tokens, _ = timed(paper, piano.encoding.genres[0], batch, f"{a.paper_tokens}t")
        row("paper (4 x 1024)", batch, wall, tokens, tokens * spt, "1x" if batch == 1 else "")
    print(f"(paper music seconds = tokens x {spt:.4f} s/token, the piano model's rate)")
    overall = totals[2] / totals[0]
    print(
        f"piano model at batch 1: {overall:.1f}x real time over the six genres (target 20x: ratio {overall / 20:.2f}); "
        f"slowest genre {worst:.1f}x"
    )
    return 0 if overall >= 20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
