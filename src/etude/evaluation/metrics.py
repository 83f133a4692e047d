"""Musical statistics of a piece, spectral distances, and set-against-set comparison.

Every piece metric is a pure function `f(notes) -> float` (or an array for histograms) over a
`Notes` record, returning nan for an empty piece. Times are in quarter-note beats unless a name
says seconds. References: Dong et al., "MusPy" (ISMIR 2020) for the pitch and rhythm measures;
Wu & Yang (2020) for groove consistency; Yang & Lerch, "On the evaluation of generative models
in music" (Neural Computing and Applications, 2020) for the set comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from symusic import Score

NAN = float("nan")
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
# Note-length classes in beats (upper edges): 32nd, 16th, 8th, quarter, half, whole, longer.
LENGTH_EDGES = np.array([0.0, 0.1875, 0.375, 0.75, 1.5, 3.0, 6.0, np.inf])


def counted_bar(numerator: int, denominator: int) -> float:
    """Quarter notes in a bar of a time signature as the measures count it: 4 where the bar holds
    one beat (1/4, 1/8, 1/2), for that is how a file was written, not a metre (most POP909 files
    declare 1/4, and models trained on them write it, which makes every beat a "bar")."""
    return 4.0 if numerator < 2 else numerator * 4 / denominator


@dataclass(frozen=True)
class Notes:
    """A piece's notes as arrays, sorted by onset then pitch."""

    onset: np.ndarray  # beats (quarter notes) from the start
    duration: np.ndarray  # beats
    pitch: np.ndarray  # MIDI pitch
    onset_s: np.ndarray  # seconds
    duration_s: np.ndarray  # seconds

    def __len__(self) -> int:
        return len(self.pitch)

    @classmethod
    def of(cls, score: Score) -> Notes:
        """The notes of every non-drum track of a score."""

        def columns(sc: Score) -> dict[str, np.ndarray]:
            parts = [t.notes.numpy() for t in sc.tracks if not t.is_drum]
            keys = ("time", "duration", "pitch")
            return {k: np.concatenate([p[k] for p in parts]).astype(np.float64) if parts else np.zeros(0) for k in keys}

        ticks, secs = columns(score), columns(score.to("second"))
        tpq = score.ticks_per_quarter
        order = np.lexsort((ticks["pitch"], ticks["time"]))
        return cls(
            ticks["time"][order] / tpq,
            ticks["duration"][order] / tpq,
            ticks["pitch"][order].astype(np.int64),
            secs["time"][order],
            secs["duration"][order],
        )

    @classmethod
    def from_arrays(cls, onset, duration, pitch, qpm: float = 120.0) -> Notes:
        """Notes from beat arrays at a constant tempo (for tests and piano rolls)."""
        onset, duration = np.asarray(onset, float), np.asarray(duration, float)
        order = np.lexsort((np.asarray(pitch), onset))
        k = 60.0 / qpm
        return cls(
            onset[order], duration[order], np.asarray(pitch, np.int64)[order], onset[order] * k, duration[order] * k
        )


# ----------------------------------------------------------------------------- pitch
def pitch_range(n: Notes) -> float:
    """Highest minus lowest pitch, in semitones."""
    return float(n.pitch.max() - n.pitch.min()) if len(n) else NAN


def pitches_used(n: Notes) -> float:
    """Number of distinct MIDI pitches."""
    return float(len(np.unique(n.pitch))) if len(n) else NAN


def pitch_class_histogram(n: Notes) -> np.ndarray:
    """Share of notes on each pitch class C, C#, ..., B (12 values summing to 1; nan if empty)."""
    if not len(n):
        return np.full(12, NAN)
    h = np.bincount(n.pitch % 12, minlength=12).astype(np.float64)
    return h / h.sum()


def pitch_class_entropy(n: Notes) -> float:
    """Shannon entropy of the pitch-class histogram, -sum p log2 p, in bits (0 to log2 12 = 3.585)."""
    if not len(n):
        return NAN
    p = pitch_class_histogram(n)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def scale_consistency(n: Notes) -> float:
    """Largest share of notes that fall in one major scale (12 roots; natural minors share these
    sets), between 0 and 1."""
    if not len(n):
        return NAN
    h = pitch_class_histogram(n)
    return float(max(h[(MAJOR + root) % 12].sum() for root in range(12)))


def pitch_class_transition_matrix(n: Notes) -> np.ndarray:
    """12 x 12 shares of transitions from each note's pitch class to the next note's, in onset
    order (sums to 1; nan if fewer than two notes)."""
    if len(n) < 2:
        return np.full((12, 12), NAN)
    m = np.zeros((12, 12))
    np.add.at(m, (n.pitch[:-1] % 12, n.pitch[1:] % 12), 1)
    return m / m.sum()


# ----------------------------------------------------------------------------- rhythm and texture
def _active(n: Notes, resolution: int) -> np.ndarray:
    """Sounding-note count per time step of 1/resolution beat, from 0 to the last note-off."""
    start = np.round(n.onset * resolution).astype(np.int64)
    stop = np.maximum(np.round((n.onset + n.duration) * resolution).astype(np.int64), start + 1)
    counts = np.zeros(int(stop.max()) + 1, dtype=np.int64)
    np.add.at(counts, start, 1)
    np.add.at(counts, stop, -1)
    return np.cumsum(counts)[:-1]


def polyphony(n: Notes, resolution: int = 12) -> float:
    """Mean number of sounding pitches over the time steps where at least one sounds."""
    if not len(n):
        return NAN
    a = _active(n, resolution)
    return float(a[a > 0].mean())


def polyphony_rate(n: Notes, resolution: int = 12) -> float:
    """Share of time steps (start to end) where two or more pitches sound."""
    if not len(n):
        return NAN
    return float((_active(n, resolution) >= 2).mean())


def empty_beat_rate(n: Notes) -> float:
    """Share of beats, from the first beat to the last note-off, in which no note sounds."""
    if not len(n):
        return NAN
    return float((_active(n, 1) == 0).mean())


def groove_consistency(n: Notes, beats_per_bar: float = 4.0, resolution: int = 4) -> float:
    """1 minus the mean Hamming distance between the onset patterns of consecutive bars, each
    distance divided by the positions per bar (Wu & Yang 2020); 1 = every bar the same rhythm.
    nan for pieces shorter than two bars."""
    if not len(n):
        return NAN
    positions = int(round(beats_per_bar * resolution))
    slots = np.round(n.onset * resolution).astype(np.int64)
    bars = np.zeros((int(slots.max()) // positions + 1, positions), dtype=bool)
    bars[slots // positions, slots % positions] = True
    if len(bars) < 2:
        return NAN
    return float(1 - (bars[1:] != bars[:-1]).sum(axis=1).mean() / positions)


def note_density(n: Notes) -> float:
    """Notes per second, over the span from the first onset to the last note-off."""
    if not len(n):
        return NAN
    span = (n.onset_s + n.duration_s).max() - n.onset_s.min()
    return float(len(n) / span) if span > 0 else NAN


def mean_ioi(n: Notes) -> float:
    """Mean inter-onset interval between distinct consecutive onsets, in seconds."""
    onsets = np.unique(n.onset_s)
    return float(np.diff(onsets).mean()) if len(onsets) >= 2 else NAN


def note_length_histogram(n: Notes) -> np.ndarray:
    """Share of notes in each length class (beats): <0.1875 (32nd), <0.375 (16th), <0.75 (8th),
    <1.5 (quarter), <3 (half), <6 (whole), longer. Seven values summing to 1."""
    if not len(n):
        return np.full(len(LENGTH_EDGES) - 1, NAN)
    h, _ = np.histogram(n.duration, bins=LENGTH_EDGES)
    return h / h.sum()


SCALARS = {
    "pitch_range": pitch_range,
    "pitches_used": pitches_used,
    "pitch_class_entropy": pitch_class_entropy,
    "scale_consistency": scale_consistency,
    "polyphony": polyphony,
    "polyphony_rate": polyphony_rate,
    "empty_beat_rate": empty_beat_rate,
    "groove_consistency": groove_consistency,
    "note_density": note_density,
    "mean_ioi": mean_ioi,
}
HISTOGRAMS = {
    "pitch_class_histogram": pitch_class_histogram,
    "note_length_histogram": note_length_histogram,
    "pitch_class_transition_matrix": pitch_class_transition_matrix,
}


def piece_metrics(n: Notes) -> dict[str, float]:
    """Every scalar metric of one piece."""
    return {name: f(n) for name, f in SCALARS.items()}


# ----------------------------------------------------------------------------- spectra
def mean_spectrum(audio: np.ndarray, n_fft: int = 4096, hop: int = 2048) -> np.ndarray:
    """Mean magnitude spectrum (n_fft // 2 + 1 bins) of mono or (channels, samples) audio, over
    Hann-windowed frames: the "frequency distribution" of a recording."""
    x = np.asarray(audio, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)).mean(axis=0)


def log_spectral_distance(p: np.ndarray, q: np.ndarray, eps: float = 1e-10) -> float:
    """Root mean square of the difference of the two spectra in decibels, each first normalised
    to sum 1: sqrt(mean((10 log10(p / q))^2)), in dB."""
    p, q = p / p.sum() + eps, q / q.sum() + eps
    return float(np.sqrt(np.mean((10 * np.log10(p / q)) ** 2)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance between two spectra normalised to distributions: the square root
    of the JS divergence in bits, between 0 (equal) and 1 (disjoint)."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def spectral_correlation(p: np.ndarray, q: np.ndarray, eps: float = 1e-10) -> float:
    """Pearson correlation of the two log-magnitude spectra."""
    return float(np.corrcoef(np.log10(p + eps), np.log10(q + eps))[0, 1])


# ----------------------------------------------------------------------------- set against set
def _pairwise(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances between the rows of a (and b); within one set, each pair once."""
    a = a.reshape(len(a), -1)
    if b is None:
        i, j = np.triu_indices(len(a), k=1)
        return np.linalg.norm(a[i] - a[j], axis=1)
    b = b.reshape(len(b), -1)
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2).ravel()


def _density(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    if len(samples) < 2 or np.ptp(samples) == 0:  # a point mass: a narrow bump at its value
        width = max(1e-3, 0.01 * (grid[-1] - grid[0]))
        d = np.exp(-0.5 * ((grid - samples.mean()) / width) ** 2)
    else:
        from scipy.stats import gaussian_kde  # imported here: scipy.stats takes ~0.8 s to import

        d = gaussian_kde(samples)(grid)
    return d / np.trapezoid(d, grid)


def set_comparison(a: np.ndarray, b: np.ndarray, grid_points: int = 512) -> dict[str, float]:
    """Yang & Lerch's comparison of one feature over two sets of pieces (rows: pieces).

    The intra-set distances of `a` and the inter-set distances a-b are smoothed by Gaussian
    kernel density estimates; returns the KL divergence KL(intra_a || inter) in nats and their
    overlapped area (0..1; 1 = the same distribution), plus the mean distances.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a.reshape(len(a), -1)).any(axis=1)], b[~np.isnan(b.reshape(len(b), -1)).any(axis=1)]
    if len(a) < 2 or len(b) < 1:
        return {"kl": NAN, "overlap": NAN, "intra_mean": NAN, "inter_mean": NAN}
    intra, inter = _pairwise(a), _pairwise(a, b)
    lo, hi = min(intra.min(), inter.min()), max(intra.max(), inter.max())
    pad = 0.1 * (hi - lo) + 1e-6
    grid = np.linspace(lo - pad, hi + pad, grid_points)
    p, q = _density(intra, grid), _density(inter, grid)
    ok = (p > 1e-12) & (q > 1e-12)  # where either density vanishes, the integrand is left out
    ratio = np.divide(p, q, out=np.ones_like(p), where=ok)
    kl = float(np.trapezoid(p * np.log(ratio), grid))
    overlap = float(np.trapezoid(np.minimum(p, q), grid))
    return {"kl": kl, "overlap": overlap, "intra_mean": float(intra.mean()), "inter_mean": float(inter.mean())}
