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


_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible modulo 2**64
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))
_SEPARATOR = -1  # between pieces in the concatenated codes: no window may contain it


def _window_hashes(codes: np.ndarray, length: int) -> np.ndarray:
    """64-bit hashes (uint64, len(codes) - length + 1) of every window of `length` codes, equal
    for equal windows wherever they stand: sum_t codes[i + t] * B**t mod 2**64, computed as a
    difference of prefix sums of codes[j] * B**j, divided by B**i (B odd, so B**-i exists)."""
    n = len(codes)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(n, _BASE, dtype=np.uint64), dtype=np.uint64) * _BASE_INVERSE  # B**j
        inverse = np.cumprod(np.full(n, _BASE_INVERSE, dtype=np.uint64), dtype=np.uint64) * _BASE  # B**-j
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(codes.astype(np.uint64) * powers, dtype=np.uint64)])
        return (prefix[length:] - prefix[: n - length + 1]) * inverse[: n - length + 1]


class TrainingIndex:
    """The training pieces' note codes, searched for runs of a given length by window hashes.

    Memory is bounded: the codes once (8 bytes a note), and the sorted hashes of at most
    `cache_bytes` worth of window lengths (8 bytes a note each), e.g. 18 M training tokens of
    piano music, ~5 M notes: 40 MB of codes and 6 lengths in 256 MB. A false match needs two
    different windows with equal 64-bit hashes: probability about (notes searched x training
    notes) / 2**64, below 1e-6 for any corpus here.
    """

    def __init__(self, pieces: list[np.ndarray], cache_bytes: int = 256 << 20):
        kept = [p.astype(np.int64) for p in pieces if len(p)]
        parts = [x for p in kept for x in (p, np.array([_SEPARATOR], dtype=np.int64))]
        self.codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self.separators = np.concatenate([[0], np.cumsum(self.codes == _SEPARATOR)])  # before each position
        self.longest_piece = max((len(p) for p in kept), default=0)
        self._cache: dict[int, np.ndarray] = {}  # length -> sorted hashes of the windows inside pieces
        self._cache_lengths = max(2, cache_bytes // max(8 * len(self.codes), 1))

    def _hashes(self, length: int) -> np.ndarray:
        if length not in self._cache:
            if len(self._cache) >= self._cache_lengths:
                self._cache.pop(next(iter(self._cache)))  # the oldest length
            h = _window_hashes(self.codes, length)
            inside = self.separators[length:] == self.separators[: len(h)]
            self._cache[length] = np.unique(h[inside])
        return self._cache[length]

    def _has_run(self, codes: np.ndarray, length: int) -> bool:
        if length > len(codes) or length > self.longest_piece:
            return False
        table = self._hashes(length)
        query = _window_hashes(codes.astype(np.int64), length)
        at = np.minimum(np.searchsorted(table, query), len(table) - 1)
        return bool(len(table)) and bool((table[at] == query).any())

    def longest_run(self, codes: np.ndarray) -> int:
        """Length of the longest run of `codes` that occurs in a training piece. Galloping search
        (1, 2, 4, ... then bisection; a run of length L contains runs of every shorter length),
        so most pieces probe the same few short lengths and share their cached hashes."""
        if not self._has_run(codes, 1):
            return 0
        lo, hi = 1, 2
        while self._has_run(codes, hi):
            lo, hi = hi, hi * 2
        hi -= 1  # lo holds, hi + 1 does not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._has_run(codes, mid):
                lo = mid
            else:
                hi = mid - 1
        return lo
