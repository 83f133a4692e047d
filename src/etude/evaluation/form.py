"""Measures of musical form: does anything come back, does the key hold, do phrases have a shape,
is the bass's pulse steady. The per-piece feature histograms of `metrics` cannot hear any of
this: they compare bags of notes.

Each measure is a pure function of a `Bars` record (a piece's notes and its bar starts) or of its
`Notes`, returning nan where the piece is too short to say. Bars come from the score's own time
signatures, so they mean something only where the piece is on its beat grid (generated pieces;
real pieces after `etude data prepare` re-timed them); `tolerant_repetition` and
`pulse_regularity` work in seconds and need no grid.

References: key finding by correlation with the Krumhansl-Kessler profiles (Krumhansl, "Cognitive
Foundations of Musical Pitch", 1990, the Krumhansl-Schmuckler algorithm); self-similarity of
bars at phrase lags after Foote's self-similarity analysis (Foote, "Visualizing music and audio
using self-similarity", ACM Multimedia 1999); repetition of bars exactly or transposed as counted
in studies of generated music's structure (e.g. Dai, Jin, Gomes & Dannenberg, "Controllable deep
melody generation via hierarchical music structure representation", ISMIR 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from symusic import Score

from etude.data.keys import key_of
from etude.evaluation.metrics import Notes, counted_bar

NAN = float("nan")
PHRASE_LAGS = (4, 8)  # bars at which phrases of 4 and 8 bars make bars alike
MAX_LAG = 8
ONSET_STEP = 1 / 12  # beats: onset positions compared on a grid of sixteenths and triplets


@dataclass(frozen=True)
class Bars:
    """A piece's notes and where its bars start."""

    notes: Notes
    starts: np.ndarray  # (K + 1,) beats: start of each of K bars, then the end of the last

    def __len__(self) -> int:
        return len(self.starts) - 1

    def index(self) -> np.ndarray:
        """The bar each note starts in, (N,)."""
        return np.clip(np.searchsorted(self.starts, self.notes.onset + 1e-9, side="right") - 1, 0, len(self) - 1)

    @classmethod
    def of(cls, score: Score) -> Bars:
        """Bars from the score's time signatures (4/4 where it has none), up to its last note; a
        signature of one beat to the bar counts as 4/4 (`counted_bar`), but one such bar before
        another signature, a pickup, stays as it is."""
        notes = Notes.of(score)
        tpq = score.ticks_per_quarter
        end = float(np.max(notes.onset + notes.duration)) if len(notes) else 0.0
        signatures = sorted((t.time / tpq, counted_bar(t.numerator, t.denominator)) for t in score.time_signatures)
        if not signatures or signatures[0][0] > 0:
            signatures.insert(0, (0.0, 4.0))
        starts: list[float] = []
        for k, (at, length) in enumerate(signatures):
            until = signatures[k + 1][0] if k + 1 < len(signatures) else end
            pos = max(at, starts[-1] if starts else 0.0)
            while pos < until - 1e-9 or (k + 1 == len(signatures) and pos <= end - 1e-9):
                starts.append(pos)
                pos += max(length, 0.25)
        starts.append(max(end, starts[-1] if starts else 0.0))
        return cls(notes, np.array(starts, dtype=np.float64))

    @classmethod
    def from_arrays(cls, onset, duration, pitch, beats_per_bar: float = 4.0, qpm: float = 120.0) -> Bars:
        """Bars of a constant metre over notes given in beats (for tests)."""
        notes = Notes.from_arrays(onset, duration, pitch, qpm)
        end = float(np.max(notes.onset + notes.duration)) if len(notes) else 0.0
        return cls(notes, np.arange(0.0, end + beats_per_bar, beats_per_bar)[: int(np.ceil(end / beats_per_bar)) + 1])


# ----------------------------------------------------------------------------- repetition
def bar_repetition(b: Bars) -> float:
    """Share of bars that repeat an earlier bar exactly or transposed: a bar's content is its set
    of (onset in the bar on a 1/12-beat grid, pitch class); bar j repeats bar i < j when for some
    t in 0..11 content(j) = {(p, (c + t) mod 12) : (p, c) in content(i)}. Formula, over the bars
    with notes after the first one: |{j : exists i < j, t}| / |those bars|. A piece that plays
    one bar over and over scores 1. nan for fewer than two bars with notes."""
    if len(b) < 2 or not len(b.notes):
        return NAN
    which = b.index()
    pos = np.round((b.notes.onset - b.starts[which]) / ONSET_STEP).astype(np.int64)
    pc = b.notes.pitch % 12
    seen: set = set()
    hits = []
    for k in range(len(b)):
        mine = which == k
        if not mine.any():
            continue
        forms = [frozenset(zip(pos[mine], (pc[mine] + t) % 12)) for t in range(12)]
        if seen:
            hits.append(any(f in seen for f in forms))
        seen.add(forms[0])
    return float(np.mean(hits)) if hits else NAN


def tolerant_repetition(
    n: Notes, window_s: float = 4.0, tolerance_s: float = 0.06, share: float = 0.8, hop_s: float = 1.0
) -> float:
    """Grid-free repetition, in seconds. Windows start every `hop_s` seconds from the first onset;
    window j (its notes in the `window_s` seconds from its first onset) repeats an earlier
    passage when, for some window i ending before j starts and some onset of i in its first
    `hop_s` seconds aligned with j's first onset, transposed by the shift that best aligns their
    pitch-class histograms, at least `share` of j's notes and of the aligned passage's notes have
    a note of the same pitch within `tolerance_s`. Formula: |{j : repeats}| / |windows starting
    after the first `window_s` seconds|. nan when there is no such window."""
    if len(n) < 4:
        return NAN
    on, pitch = n.onset_s, n.pitch  # onsets in order (Notes are sorted by onset)
    starts = np.arange(on[0], on[-1], hop_s)
    later = [j for j, s in enumerate(starts) if s >= on[0] + window_s]
    if not later:
        return NAN
    # each window's passage (hop_s + window_s seconds from its start) and its pitch-class histogram
    # under each of the 12 transpositions, once
    lo = np.searchsorted(on, starts, side="left")
    hi = np.searchsorted(on, starts + hop_s + window_s, side="left")
    hist = np.array([np.bincount(pitch[a:b] % 12, minlength=12) for a, b in zip(lo, hi)], dtype=np.float64)
    rolled = np.stack([np.roll(hist, t, axis=1) for t in range(12)], axis=1)  # (windows, shift, 12)
    hits = 0
    for j in later:
        a = np.searchsorted(on, starts[j], side="left")
        if np.searchsorted(on, starts[j] + window_s, side="left") - a < 2:
            continue
        b = np.searchsorted(on, on[a] + window_s, side="left")
        tj, pj = on[a:b], pitch[a:b]
        earlier = np.flatnonzero(starts + window_s <= starts[j])
        shifts = np.argmax(rolled[earlier] @ np.bincount(pj % 12, minlength=12).astype(np.float64), axis=1)
        hits += any(
            _repeats(on[lo[i] : hi[i]], pitch[lo[i] : hi[i]], starts[i], tj, pj, int(t), hop_s, tolerance_s, share)
            for i, t in zip(earlier, shifts)
        )
    return hits / len(later)


def _repeats(ti, pi, start_i, tj, pj, shift: int, hop_s, tolerance_s, share) -> bool:
    """Whether the notes (tj, pj), transposed by `shift`, recur among (ti, pi) from one of i's
    first-`hop_s` onsets on (the passage ending before j starts)."""
    if len(ti) < 2:
        return False
    rel_j = tj - tj[0]
    span = rel_j[-1] + tolerance_s  # j's notes may end early, at the end of the piece
    for first in ti[(ti < start_i + hop_s) & (ti + span <= tj[0] + tolerance_s)]:  # passages before j
        window = (ti >= first) & (ti <= first + span)
        rel_i, p_i = ti[window] - first, pi[window]
        if not (0.7 <= len(rel_i) / len(rel_j) <= 1.43):
            continue
        same = ((p_i[:, None] + shift - pj[None, :]) % 12 == 0) & (np.abs(p_i[:, None] + shift - pj[None, :]) <= 12)
        matched = same & (np.abs(rel_i[:, None] - rel_j[None, :]) <= tolerance_s)
        if matched.any(axis=1).mean() >= share and matched.any(axis=0).mean() >= share:
            return True
    return False


# ----------------------------------------------------------------------------- key
def _window_keys(b: Bars, window: int) -> tuple[int, list[int]]:
    """The piece's key and the key of each run of `window` bars (each bar starting one)."""
    which = b.index()
    weight = np.minimum(b.notes.duration, 4.0)  # a held note counts, a pedal point does not drown the rest
    per_bar = np.zeros((len(b), 12))
    np.add.at(per_bar, (which, b.notes.pitch % 12), weight)
    keys = [key_of(per_bar[k : k + window].sum(axis=0)) for k in range(0, max(len(b) - window + 1, 0))]
    return key_of(per_bar.sum(axis=0)), [k for k in keys if k >= 0]


def key_consistency(b: Bars, window: int = 4) -> float:
    """Share of `window`-bar windows (one starting at each bar) whose Krumhansl-Schmuckler key is
    the piece's global key. nan for fewer than `window` bars."""
    home, keys = _window_keys(b, window)
    return float(np.mean([k == home for k in keys])) if keys and home >= 0 else NAN


def keys_visited(b: Bars, window: int = 4) -> float:
    """Number of distinct keys among the `window`-bar windows. nan for fewer than `window` bars."""
    _, keys = _window_keys(b, window)
    return float(len(set(keys))) if keys else NAN


# ----------------------------------------------------------------------------- phrases
def lag_profile(b: Bars, max_lag: int = MAX_LAG) -> np.ndarray:
    """Mean Pearson correlation of bar pitch-class histograms (duration-weighted) between bars
    `lag` apart, for lag 1..max_lag, shape (max_lag,); nan where fewer than two pairs exist."""
    out = np.full(max_lag, NAN)
    if not len(b.notes):
        return out
    per_bar = np.zeros((len(b), 12))
    np.add.at(per_bar, (b.index(), b.notes.pitch % 12), b.notes.duration)
    centred = per_bar - per_bar.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1)
    for lag in range(1, max_lag + 1):
        a, c = centred[:-lag], centred[lag:]
        ok = (norm[:-lag] > 0) & (norm[lag:] > 0)
        if ok.sum() >= 2:
            out[lag - 1] = float(np.mean(np.sum(a[ok] * c[ok], axis=1) / (norm[:-lag][ok] * norm[lag:][ok])))
    return out


def phrase_periodicity(b: Bars) -> float:
    """How much more alike bars are at phrase lags than at others: mean of `lag_profile` at lags
    4 and 8 less its mean at the other lags 1..8. About 0 without phrase structure; nan when the
    piece has too few bars for lag 8."""
    profile = lag_profile(b)
    at = [profile[lag - 1] for lag in PHRASE_LAGS]
    others = [v for k, v in enumerate(profile) if k + 1 not in PHRASE_LAGS]
    if np.isnan(at).any() or np.isnan(others).all():
        return NAN
    return float(np.mean(at) - np.nanmean(others))


# ----------------------------------------------------------------------------- pulse and long form
def pulse_regularity(n: Notes, cluster_s: float = 0.03, tolerance: float = 0.1) -> float:
    """Steadiness of the lowest voice, in seconds: onsets within `cluster_s` are one event; the
    events whose lowest note is below the piece's median pitch form the bass; the share of
    successive bass inter-onset intervals within `tolerance` (relative) of the one before.
    nan for fewer than three such intervals."""
    if len(n) < 4:
        return NAN
    events = np.r_[0, np.flatnonzero(np.diff(n.onset_s) > cluster_s) + 1]
    lowest = np.minimum.reduceat(n.pitch, events)
    bass = n.onset_s[events][lowest < np.median(n.pitch)]
    ioi = np.diff(bass)
    if len(ioi) < 3:
        return NAN
    return float(np.mean(np.abs(ioi[1:] / ioi[:-1] - 1.0) <= tolerance))


def long_form(n: Notes, seconds: float = 30.0) -> dict[str, float]:
    """The last `seconds` of a piece against its first: whether their keys agree (1 or 0), the
    shift of the mean pitch (semitones, last less first), and the ratio of note densities (last
    over first). nan values when the piece is shorter than twice `seconds`."""
    end = float(np.max(n.onset_s + n.duration_s)) if len(n) else 0.0
    if end < 2 * seconds:
        return {"same_key": NAN, "register_shift": NAN, "density_ratio": NAN}
    first, last = n.onset_s < seconds, n.onset_s >= end - seconds

    def key(mask) -> int:
        return key_of(np.bincount(n.pitch[mask] % 12, weights=n.duration_s[mask], minlength=12))

    return {
        "same_key": float(key(first) == key(last)),
        "register_shift": float(n.pitch[last].mean() - n.pitch[first].mean()),
        "density_ratio": float(last.sum() / max(first.sum(), 1)),
    }


# The keys of long_form's answer; the report names them "last_30s_<key>".
LONG_FORM = ("same_key", "register_shift", "density_ratio")

# Per-piece scalars, by name: each f(bars) -> float.
FORM = {
    "bar_repetition": bar_repetition,
    "tolerant_repetition": lambda b: tolerant_repetition(b.notes),
    "key_consistency": key_consistency,
    "keys_visited": keys_visited,
    "phrase_periodicity": phrase_periodicity,
    "pulse_regularity": lambda b: pulse_regularity(b.notes),
}
