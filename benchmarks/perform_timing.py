"""Real-time timing of `etude perform`: actual send times against the schedule.

Plays a piece to an in-process sink that records when each event was really sent, with étude's
absolute-deadline player and, as the peer in the same run, a naive player that sleeps the
relative gap between events (whose error accumulates). Target (issue 7): p99 <= 2 ms on an
idle 2-core machine.

Then the same player while generation runs ahead in the background (issue 16): the shipped
piano model writes pieces under the two-hand robot profile and playback at 1x speed waits for
none of them. Targets: p99 lateness <= 1 ms, zero underruns.

    python benchmarks/perform_timing.py [--seconds 20] [--pieces 3] [--piece-length 10s]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from etude.perform.outputs import RecordingSink  # noqa: E402
from etude.perform.stream import play, score_events  # noqa: E402
from synthetic_corpus import random_piece  # noqa: E402


def naive_play(events, sink) -> None:
    last = 0.0
    for e in events:
        time.sleep(max(0.0, e.t - last))
        last = e.t
        sink.send(e)


def errors_ms(sink: RecordingSink, events) -> np.ndarray:
    sent = sink.sent[: len(events)]
    t0 = sent[0][0] - events[0].t
    return np.array([(when - t0 - e.t) * 1000 for (when, _), e in zip(sent, events)])


def report(name: str, err: np.ndarray) -> None:
    a = np.abs(err)
    print(f"{name:<34} {np.median(a):8.3f} {np.percentile(a, 99):8.3f} {a.max():8.3f} {err[-1]:9.3f}")


def generated_ahead(pieces: int, length: str) -> tuple[np.ndarray, int]:
    """Lateness (ms, actual - scheduled) of every event of `pieces` generated pieces played back
    to back while the next ones are generated, and the underruns."""
    from etude.generation.generate import Sampling
    from etude.perform.stream import _generated
    from etude.robot.profile import load_profile

    stream = _generated("pretrained", "jazz", length, pieces, 0, Sampling(), 1.0, 0, load_profile("two-hand-robot"))
    sink = RecordingSink()
    schedule = []

    def recorded():
        offset = 0.0
        for events in stream:
            schedule.extend(offset + e.t for e in events)
            offset += events[-1].t if events else 0.0
            yield events

    stats = play(recorded(), sink)
    sent = [when for when, e in sink.sent[: len(schedule)]]
    t0 = sent[0] - schedule[0]
    return np.array([(w - t0 - s) * 1000 for w, s in zip(sent, schedule)]), stats.underruns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="wall-clock length of the test (default 20)")
    ap.add_argument("--pieces", type=int, default=3, help="generated pieces played back to back (default 3)")
    ap.add_argument("--piece-length", default="10s", help="length of each generated piece (default 10s)")
    a = ap.parse_args()
    # five random two-voice pieces at once, squeezed into the asked length: dense chords
    scores = [random_piece(np.random.default_rng(k)) for k in range(5)]
    scale = max(score_events(s)[-1].t for s in scores) / a.seconds
    events = sorted(
        (e for s in scores for e in score_events(s, tempo_scale=scale)), key=lambda e: (e.t, e.type != "note_off")
    )
    print(f"{len(events)} events over {events[-1].t:.1f} s ({len(events) / events[-1].t:.0f} events/s)")
    print(f"{'player':<34} {'median':>8} {'p99':>8} {'max':>8} {'last':>9}   (ms, |actual - scheduled|)")
    sink = RecordingSink()
    play(iter([events]), sink)
    ours = errors_ms(sink, events)
    report("etude (absolute deadlines)", ours)
    sink = RecordingSink()
    naive_play(events, sink)
    report("naive (relative sleeps)", errors_ms(sink, events))
    p99 = np.percentile(np.abs(ours), 99)
    print(f"etude p99 {p99:.3f} ms = {p99 / 2.0:.3f} x target 2 ms")

    late, underruns = generated_ahead(a.pieces, a.piece_length)
    report(f"etude, generating ahead ({a.pieces} pieces)", late)
    p99 = np.percentile(np.abs(late), 99)
    print(
        f"while generating (shipped model, two-hand-robot): {len(late)} events, p99 {p99:.3f} ms = "
        f"{p99 / 1.0:.3f} x target 1 ms; underruns {underruns} (target 0)"
    )


if __name__ == "__main__":
    main()
