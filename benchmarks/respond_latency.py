"""Call and response: how soon the answer starts after the player's pause (issue 16).

A simulated player plays, in real time, the first seconds of one real piece per genre of the
piano corpus (../shared/data/piano) as JSON-lines-style note events; étude answers each phrase
with the shipped piano model in that genre under the two-hand robot profile (answers of 8 s,
the command's default). Latency: from the moment the pause reaches --wait seconds to the first
event of the answer. Target: at most 0.5 s on 2 CPU cores.

    python benchmarks/respond_latency.py [--phrase-seconds 4] [--wait 1.0] [--length 8s]
"""

from __future__ import annotations

import argparse
import queue
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np

from etude.data.midi import read_piece
from etude.generation.generate import Ask
from etude.models.checkpoint import load_checkpoint
from etude.models.pretrained import pretrained_path
from etude.perform.outputs import RecordingSink
from etude.perform.respond import EOF_MARK, answer, respond
from etude.robot.notes import score_notes
from etude.robot.profile import load_profile

PIANO = Path(__file__).resolve().parents[2] / "shared" / "data" / "piano"


def phrases(seconds: float) -> list[tuple[str, list]]:
    out = []
    for genre in sorted(p.name for p in PIANO.iterdir() if p.is_dir()):
        files = sorted((PIANO / genre).rglob("*.mid"))
        random.Random(0).shuffle(files)
        every = score_notes(read_piece(files[0]))
        t0 = every[0].start
        notes = [n for n in every if n.start < t0 + seconds]
        out.append((genre, [(n.start - t0, min(n.end, t0 + seconds) - t0, n.pitch, n.velocity) for n in notes]))
    return out


def player(events: queue.Queue, plays: list, answered: threading.Event) -> None:
    for _, notes in plays:
        timeline = sorted(
            [(s, "note_on", p, v) for s, _, p, v in notes] + [(e, "note_off", p, 0) for _, e, p, _ in notes]
        )
        t0 = time.perf_counter()
        for t, kind, pitch, velocity in timeline:
            while time.perf_counter() < t0 + t:
                time.sleep(0.001)
            events.put((time.perf_counter(), kind, pitch, velocity))
        answered.wait()
        answered.clear()
        time.sleep(0.2)
    events.put(EOF_MARK)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phrase-seconds", type=float, default=4.0)
    ap.add_argument("--wait", type=float, default=1.0)
    ap.add_argument("--length", default="8s")
    a = ap.parse_args()
    ckpt = load_checkpoint(pretrained_path("piano"))
    robot = load_profile("two-hand-robot")
    plays = phrases(a.phrase_seconds)

    def make_answer(score, k):
        return answer(ckpt, score, Ask(plays[k][0], length=a.length, seed=k, robot=robot))

    events: queue.Queue = queue.Queue()
    answered = threading.Event()
    threading.Thread(target=player, args=(events, plays, answered), daemon=True).start()
    exchanges = respond(make_answer, events, RecordingSink(), a.wait, robot, on_exchange=lambda e: answered.set())
    latency = np.array([e.latency for e in exchanges if e.latency is not None])
    print(f"{'genre':<10} {'phrase notes':>12} {'answer notes':>12} {'latency ms':>10}")
    for (genre, _), e in zip(plays, exchanges):
        print(f"{genre:<10} {e.phrase_notes:>12} {e.answer_notes:>12} {e.latency * 1000:>10.0f}")
    worst = float(latency.max())
    print(
        f"answers start {np.median(latency) * 1000:.0f} ms (median), {worst * 1000:.0f} ms (max) after a "
        f"{a.wait:g} s pause; max = {worst / 0.5:.3f} x target 0.5 s"
    )
    return 0 if worst <= 0.5 and len(exchanges) == len(plays) else 1


if __name__ == "__main__":
    sys.exit(main())
