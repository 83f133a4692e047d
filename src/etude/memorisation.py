"""How much of a generated piece was copied from the training set.

A piece is read as its sequence of notes in onset order, each note coded by its pitch and the
time since the previous onset on a grid of `steps_per_beat`. The longest run of consecutive
notes found verbatim in any training piece is the measure; long runs flag copies.
"""

from __future__ import annotations

import numpy as np
from symusic import Score

COPY_FLAG = 32  # notes in a row found verbatim in the training set that mark a piece as a copy


def note_codes(score: Score, steps_per_beat: int = 4) -> np.ndarray:
    """int64 codes (pitch * 1024 + grid steps since the previous onset, capped at 1023)."""
    tpq = score.ticks_per_quarter
    notes = sorted((n.time, n.pitch) for t in score.tracks if not t.is_drum for n in t.notes)
    if not notes:
        return np.zeros(0, dtype=np.int64)
    steps = np.round(np.array([t for t, _ in notes]) * steps_per_beat / tpq).astype(np.int64)
    delta = np.minimum(np.diff(steps, prepend=steps[0]), 1023)
    return np.array([p for _, p in notes], dtype=np.int64) * 1024 + delta


class TrainingIndex:
    """The training pieces' note codes, searched for runs of a given length."""

    def __init__(self, pieces: list[np.ndarray]):
        self.pieces = [p for p in pieces if len(p)]
        self._grams: dict[int, set[bytes]] = {}

    def _has_run(self, codes: np.ndarray, length: int) -> bool:
        if length not in self._grams:
            self._grams[length] = {p[i : i + length].tobytes() for p in self.pieces for i in range(len(p) - length + 1)}
        grams = self._grams[length]
        return any(codes[i : i + length].tobytes() in grams for i in range(len(codes) - length + 1))

    def longest_run(self, codes: np.ndarray) -> int:
        """Length of the longest run of `codes` that occurs in a training piece (binary search:
        a run of length L contains runs of every shorter length)."""
        lo, hi = 0, len(codes)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._has_run(codes, mid):
                lo = mid
            else:
                hi = mid - 1
        return lo
