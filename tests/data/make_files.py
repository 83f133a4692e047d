"""Writes the small MIDI files under tests/data (run from anywhere; the files are committed).

good/      two genres of tiny valid pieces, one with sustain pedal and a drum track
corrupt/   files every ingest must reject with a reason, never a crash
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from symusic import ControlChange, Note, Score, Tempo, TimeSignature, Track

HERE = Path(__file__).parent


def _score(notes: list[tuple[int, int, int, int]], qpm: float = 120.0, tpq: int = 480) -> Score:
    s = Score(tpq)
    s.tempos.append(Tempo(0, qpm))
    s.time_signatures.append(TimeSignature(0, 4, 4))
    t = Track(program=0, is_drum=False)
    for time, dur, pitch, vel in notes:
        t.notes.append(Note(time, dur, pitch, vel))
    s.tracks.append(t)
    return s


def scale_piece(root: int, beats: int = 24, tpq: int = 480, seed: int = 0) -> Score:
    """A two-voice piece: a melody of eighths and sixteenths over held bass notes."""
    rng = np.random.default_rng(seed)
    notes, t = [], 0
    steps = [0, 2, 4, 5, 7, 9, 11, 12]
    while t < beats * tpq:
        dur = int(rng.choice([tpq // 2, tpq // 4, tpq]))
        notes.append((t, dur, root + 12 + int(rng.choice(steps)), int(rng.integers(50, 110))))
        t += dur
    for b in range(0, beats, 2):
        notes.append((b * tpq, 2 * tpq, root + int(rng.choice([0, 5, 7])), 70))
    return _score(notes, qpm=100.0 + 10 * seed, tpq=tpq)


def main() -> None:
    good = HERE / "good"
    for genre, root in (("waltz", 48), ("march", 55)):
        (good / genre).mkdir(parents=True, exist_ok=True)
        for k in range(3):
            scale_piece(root + k, seed=k + (10 if genre == "march" else 0)).dump_midi(
                str(good / genre / f"{genre}{k}.mid")
            )
    # A piece with a sustain pedal, a second piano track and a drum track.
    s = _score(
        [(0, 240, 60, 80), (480, 240, 64, 80), (1920, 480, 67, 90)] + [(i * 480, 480, 72, 60) for i in range(16)]
    )
    s.tracks[0].controls.append(ControlChange(0, 64, 127))
    s.tracks[0].controls.append(ControlChange(1440, 64, 0))
    strings = Track(program=48, is_drum=False)
    strings.notes.append(Note(0, 3840, 48, 70))
    drums = Track(program=0, is_drum=True)
    for i in range(16):
        drums.notes.append(Note(i * 480, 120, 36, 100))
    s.tracks.extend([strings, drums])
    s.dump_midi(str(good / "waltz" / "pedal_and_drums.mid"))

    bad = HERE / "corrupt"
    bad.mkdir(exist_ok=True)
    whole = (good / "waltz" / "waltz0.mid").read_bytes()
    (bad / "truncated.mid").write_bytes(whole[: len(whole) // 2])
    (bad / "random_bytes.mid").write_bytes(np.random.default_rng(1).bytes(500))
    (bad / "zero_bytes.mid").write_bytes(b"")
    (bad / "text.mid").write_text("this is not a MIDI file\n")
    header_only = Score(480)
    header_only.dump_midi(str(bad / "empty.midi"))
    drum_only = Score(480)
    d = Track(program=0, is_drum=True)
    for i in range(40):
        d.notes.append(Note(i * 240, 120, 38, 100))
    drum_only.tracks.append(d)
    drum_only.dump_midi(str(bad / "drums_only.mid"))
    # 700 seconds at 60 qpm: one note every 10 beats.
    _score([(i * 4800, 480, 60 + i % 12, 80) for i in range(71)], qpm=60.0).dump_midi(str(bad / "very_long.mid"))
    _score([(0, 480, 60, 80)]).dump_midi(str(bad / "too_short.mid"))


if __name__ == "__main__":
    main()
