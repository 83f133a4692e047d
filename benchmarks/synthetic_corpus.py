"""Write a synthetic MIDI corpus: N random two-voice piano pieces of 20-90 s in G genres.

python benchmarks/synthetic_corpus.py OUT_DIR --files 10000 --genres 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from symusic import Note, Score, Tempo, TimeSignature, Track


def random_piece(rng: np.random.Generator, tpq: int = 480) -> Score:
    s = Score(tpq)
    s.tempos.append(Tempo(0, float(rng.integers(70, 160))))
    s.time_signatures.append(TimeSignature(0, int(rng.choice([2, 3, 4])), 4))
    track = Track(program=0)
    beats = int(rng.integers(40, 160))
    root = int(rng.integers(40, 60))
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    t = 0
    while t < beats * tpq:
        dur = int(rng.choice([tpq // 4, tpq // 2, tpq, 2 * tpq], p=[0.2, 0.4, 0.3, 0.1]))
        track.notes.append(Note(t, dur, root + 12 + int(rng.choice(scale)), int(rng.integers(40, 110))))
        t += dur
    for b in range(0, beats, 2):
        track.notes.append(Note(b * tpq, 2 * tpq, root + int(rng.choice([0, 5, 7])), 64))
    s.tracks.append(track)
    return s


def write_corpus(out: Path, files: int, genres: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(files):
        folder = Path(out) / f"genre{i % genres}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"piece{i:06d}.mid"
        if not path.exists():
            random_piece(rng).dump_midi(str(path))
    return Path(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--genres", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    write_corpus(a.out, a.files, a.genres, a.seed)
