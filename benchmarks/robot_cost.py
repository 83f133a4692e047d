"""What a robot profile costs the music (issue 16): likelihood and statistics of pieces generated
under each shipped profile against free pieces from the same model and seeds.

Likelihood: the mean negative log-likelihood per token (nats) of each sampled sequence under
the model itself, without masks: how far the constraints push sampling from what the model
would write. Statistics: etude.evaluation.metrics on the decoded pieces, mean over pieces.

    python benchmarks/robot_cost.py [--per-genre 4] [--length 20s]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from etude.evaluation import metrics as M
from etude.generation.generate import Ask, sample_tokens
from etude.models.checkpoint import load_checkpoint
from etude.models.pretrained import pretrained_path
from etude.robot.check import violations
from etude.robot.notes import score_notes
from etude.robot.profile import SHIPPED, load_profile

SHOWN = ("note_density", "polyphony", "pitch_range", "pitch_class_entropy", "scale_consistency")


@torch.no_grad()
def nll_per_token(ckpt, ids: list[int], genre: str) -> float:
    x = torch.tensor([ids[:-1]])
    g = torch.tensor([ckpt.encoding.genres.index(genre)])
    logp = torch.log_softmax(ckpt.model(x, g)[0].float(), -1)[0]  # (T, V)
    return float(-logp.gather(-1, torch.tensor(ids[1:])[:, None]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-genre", type=int, default=4)
    ap.add_argument("--length", default="20s")
    a = ap.parse_args()
    ckpt = load_checkpoint(pretrained_path("piano"))
    ckpt.model.eval()
    rows = []
    for name in (None, *SHIPPED):
        robot = load_profile(name) if name else None
        nll, stats, broken, seconds = [], {k: [] for k in SHOWN}, 0, 0.0
        t0 = time.perf_counter()
        for seed, genre in enumerate(ckpt.encoding.genres):
            seqs = sample_tokens(ckpt, Ask(genre, a.per_genre, a.length, seed=seed, robot=robot))
            for ids in seqs:
                nll.append(nll_per_token(ckpt, ids, genre))
                score = ckpt.encoding.decode(np.array(ids))
                notes = M.Notes.of(score)
                for k in SHOWN:
                    stats[k].append(float(np.ravel(M.SCALARS[k](notes))[0]))
                seconds += float(score.to("second").end())
                if robot is not None:
                    broken += bool(violations(robot, score_notes(score)))
        elapsed = time.perf_counter() - t0
        rows.append(
            (name or "free", np.mean(nll), {k: np.nanmean(v) for k, v in stats.items()}, broken, seconds / elapsed)
        )
    free = rows[0][1]
    print(f"{len(ckpt.encoding.genres) * a.per_genre} pieces of {a.length} per row (shipped piano model, Sampling())")
    print(
        f"{'profile':<16} {'NLL/token':>9} {'vs free':>8} "
        + " ".join(f"{k:>18}" for k in SHOWN)
        + "  violating  x real time"
    )
    for name, value, st, broken, speed in rows:
        print(
            f"{name:<16} {value:9.3f} {value - free:+8.3f} "
            + " ".join(f"{st[k]:18.3f}" for k in SHOWN)
            + f"  {broken:9d}  {speed:10.1f}"
        )


if __name__ == "__main__":
    main()
