"""How much of a generated piece was copied from the training set.

A piece is read as its sequence of notes in onset order, each note coded by its pitch and the
time since the previous onset on a grid of `steps_per_beat`. The longest run of consecutive
notes found verbatim in any training piece is the measure, in notes and in bars (from the first
copied onset to the last: onsets are what the codes match, durations are not); a run of
COPY_FLAG_BARS bars or more flags the piece as a copy.
"""

from __future__ import annotations

import numpy as np
from symusic import Score

from etude.evaluation.metrics import counted_bar

COPY_FLAG_BARS = 4.0  # a copied run this many bars long (or longer) marks a piece as a copy


def _notes(score: Score) -> list[tuple[int, int, int]]:
    """(onset, pitch, duration) in ticks of every pitched note, in onset then pitch order."""
    return sorted((n.time, n.pitch, n.duration) for t in score.tracks if not t.is_drum for n in t.notes)


def note_codes(score: Score, steps_per_beat: int = 4) -> np.ndarray:
    """int64 codes (pitch * 1024 + grid steps since the previous onset, capped at 1023)."""
    notes = _notes(score)
    if not notes:
        return np.zeros(0, dtype=np.int64)
    steps = np.round(np.array([t for t, _, _ in notes]) * steps_per_beat / score.ticks_per_quarter).astype(np.int64)
    delta = np.minimum(np.diff(steps, prepend=steps[0]), 1023)
    return np.array([p for _, p, _ in notes], dtype=np.int64) * 1024 + delta


def quarters_per_bar(score: Score) -> float:
    """Quarter notes in a bar of the score's first time signature as `counted_bar` counts it; 4/4's
    4 when it has none."""
    ts = score.time_signatures
    return counted_bar(ts[0].numerator, ts[0].denominator) if len(ts) else 4.0


def run_bars(score: Score, start: int, length: int) -> float:
    """Bars spanned by the onsets of notes start..start+length-1 of `score` (in note_codes'
    order): from the first onset to the last, over quarters_per_bar(score). A run copies pitches
    and onset times, not durations, so a chord held for bars is no longer a copy than one struck
    short. 0 for an empty run."""
    notes = _notes(score)[start : start + length]
    if not notes:
        return 0.0
    return (notes[-1][0] - notes[0][0]) / score.ticks_per_quarter / quarters_per_bar(score)


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

    Memory is bounded: the codes once (8 bytes a note) and, while a length is probed, the sorted
    hashes of the training windows of that length (8 bytes a note), e.g. ~5 M notes of piano
    music: 40 + 40 MB. Pieces are searched together, so each length is hashed once per round for
    all of them. A false match needs two different windows with equal 64-bit hashes: probability
    about (notes searched x training notes) / 2**64, below 1e-6 for any corpus here.
    """

    def __init__(self, pieces: list[np.ndarray]):
        kept = [p.astype(np.int64) for p in pieces if len(p)]
        parts = [x for p in kept for x in (p, np.array([_SEPARATOR], dtype=np.int64))]
        self.codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self.separators = np.concatenate([[0], np.cumsum(self.codes == _SEPARATOR)])  # before each position
        self.longest_piece = max((len(p) for p in kept), default=0)

    def _table(self, length: int) -> np.ndarray:
        """Sorted hashes of every training window of `length` codes that lies inside one piece."""
        h = _window_hashes(self.codes, length)
        h = h[self.separators[length:] == self.separators[: len(h)]]
        h.sort()
        return h

    @staticmethod
    def _found_at(table: np.ndarray, codes: np.ndarray, length: int) -> int:
        """Where the first window of `length` codes that a training piece holds starts (-1: none)."""
        if not len(table) or length > len(codes):
            return -1
        query = _window_hashes(codes.astype(np.int64), length)
        at = np.minimum(np.searchsorted(table, query), len(table) - 1)
        hits = np.flatnonzero(table[at] == query)
        return int(hits[0]) if len(hits) else -1

    def copied_runs(self, queries: list[np.ndarray]) -> list[tuple[int, int]]:
        """(start, length) of each query's longest run found in a training piece ((0, 0): none).

        Galloping search (1, 2, 4, ... then bisection; a run of length L contains runs of every
        shorter length), all queries in step: each round hashes the training set once for every
        length some query asks for. The start is where the last successful probe matched."""
        lo = [0] * len(queries)  # a run of this length is found (0: trivially)
        start = [0] * len(queries)  # where it starts in the query
        hi = [min(len(q), self.longest_piece) + 1 for q in queries]  # no run of this length can be
        bisecting = [False] * len(queries)  # a probe has failed: bisect between lo and hi
        while True:
            wants: dict[int, list[int]] = {}
            for i in range(len(queries)):
                if hi[i] - lo[i] > 1:
                    probe = (lo[i] + hi[i]) // 2 if bisecting[i] else max(1, 2 * lo[i])
                    wants.setdefault(min(probe, hi[i] - 1), []).append(i)
            if not wants:
                return list(zip(start, lo))
            for length, asking in sorted(wants.items()):
                table = self._table(length)
                for i in asking:
                    at = self._found_at(table, queries[i], length)
                    if at >= 0:
                        lo[i], start[i] = length, at
                    else:
                        hi[i], bisecting[i] = length, True

    def longest_runs(self, queries: list[np.ndarray]) -> list[int]:
        """For each query, the length of its longest run found in a training piece (copied_runs)."""
        return [length for _, length in self.copied_runs(queries)]

    def longest_run(self, codes: np.ndarray) -> int:
        """The longest run of `codes` found in a training piece (longest_runs of one query)."""
        return self.longest_runs([codes])[0]
