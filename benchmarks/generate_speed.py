"""Generation speed as a real-time factor: seconds of music per second of wall time.

cpu preset: the model shipped in the package, generating 30 s pieces at batch 1 and 16.
paper preset (4 x 1024, random weights: speed does not depend on the weights): tokens/s at
batch 1 and 16, turned into music seconds with the shipped model's seconds per token measured
in the same run. Targets on 2 CPU cores (issue 3): paper >= 1x at batch 1, cpu >= 50x.
Audio rendering is not included.

    python benchmarks/generate_speed.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from etude.checkpoint import Checkpoint, load_checkpoint
from etude.config import load_preset
from etude.generate import Length, Sampling, pretrained_path, sample_tokens
from etude.models.lstm import LSTMGenerator


def timed(ckpt: Checkpoint, n: int, length: Length) -> tuple[float, list[list[int]]]:
    t = time.perf_counter()
    seqs = sample_tokens(ckpt, ckpt.encoding.genres[0], n, length, Sampling(top_p=0.95), seed=1)
    return time.perf_counter() - t, seqs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--paper-tokens", type=int, default=200)
    a = ap.parse_args()
    shipped = load_checkpoint(pretrained_path())
    sec_per_token = []
    print(f"{'model':<22} {'batch':>5} {'tokens/s':>9} {'music s/s':>10} {'target':>7}")
    for batch in (1, 16):
        wall, seqs = timed(shipped, batch, Length(a.seconds, "s"))
        tokens = sum(len(s) for s in seqs)
        music = sum(shipped.encoding.decode(np.array(s)).to("second").end() for s in seqs)
        sec_per_token.append(music / tokens)
        print(f"{'cpu preset (shipped)':<22} {batch:>5} {tokens / wall:9.0f} {music / wall:9.1f}x {'50x':>7}")
    spt = float(np.mean(sec_per_token))
    cfg = load_preset("paper")
    paper = Checkpoint(shipped.path, LSTMGenerator(shipped.model.vocab_size, shipped.model.n_genres, cfg.model).eval(), cfg, shipped.encoding, {})
    for batch in (1, 16):
        wall, seqs = timed(paper, batch, Length(a.paper_tokens, "t"))
        tokens = sum(len(s) for s in seqs)
        print(f"{'paper (4 x 1024)':<22} {batch:>5} {tokens / wall:9.0f} {tokens * spt / wall:9.1f}x {'1x' if batch == 1 else '':>7}")
    print(f"(paper music seconds = tokens x {spt:.3f} s/token, the shipped model's rate)")


if __name__ == "__main__":
    main()
