"""What a listener hears in a piece, as a fixed-length vector: the genre judge's input.

Every feature is read from note onsets (seconds) and pitches only, so it does not depend on how a
file was made: not on the beat grid it was sequenced on or its absence (performed, re-timed,
quantised), not on note lengths (staccato or legato as sequenced, sustain pedal), velocities,
tempo marks, tracks or channels. Onsets closer than CLUSTER seconds form one *event* (a chord
as heard, however spread its onsets were played). Pitches are read relative to the key found by
the Krumhansl-Kessler profiles (etude.data.keys), so a
transposition changes nothing but the register features.

The groups (FEATURES: name -> length), in order:
- scale: onset count of each pitch class relative to the tonic, as shares (12);
- minor: 1 when the minor profile fits best (1);
- melody: the top voice's steps from event to event, -12..+12 semitones, as shares (25);
- bass: the lowest voice's leaps in semitones, 0 / 1 / 2 / 3-4 / 5-7 / 8-11 / 12 / more, shares (8);
- harmony: interval-class vector of each event's pitch classes (Forte), as shares (6);
- ioi: log2 time between events, soft shares of 11 bands centred from 60 ms to 2 s (11; soft, so
  that music on a grid does not jump bands when its tempo moves a little);
- rhythm: log2 ratio of successive inter-onset intervals, soft shares of 9 bands centred on
  1/4, 1/2, 2/3, 4/5, 1, 5/4, 3/2, 2 and 4 (9);
- register: mean and spread of pitch, mean top and bottom voice, mean span (5; /88 or /24);
- texture: share of events of 1, 2, 3 and 4+ notes, log mean notes per event (5);
- density: log events per second, log notes per second (2);
- stride: share of bass leaps of a fifth or more, share of bass direction changes (2).
"""

from __future__ import annotations

import numpy as np
from symusic import Score

from etude.data import keys

CLUSTER = 0.05  # seconds: onsets this close to an event's first onset join it
MIN_EVENTS = 8  # fewer events than this: nothing to judge (features_of returns None)
IOI_CENTRES = np.log2([0.06, 0.09, 0.13, 0.18, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0])  # 11 soft bands
RATIO_CENTRES = np.log2([1 / 4, 1 / 2, 2 / 3, 4 / 5, 1, 5 / 4, 3 / 2, 2, 4])  # 9 soft bands
MELODY_EDGES = np.arange(-12.5, 13.5, 1.0)  # 25 bands, one per step
BASS_EDGES = np.array([-0.5, 0.5, 1.5, 2.5, 4.5, 7.5, 11.5, 12.5, 24.5])  # 8 bands
FEATURES = {
    "scale": 12, "minor": 1, "melody": 25, "bass": 8, "harmony": 6, "ioi": 11,
    "rhythm": 9, "register": 5, "texture": 5, "density": 2, "stride": 2,
}  # fmt: skip
SIZE = sum(FEATURES.values())


def onsets_of(score: Score) -> tuple[np.ndarray, np.ndarray]:
    """Onset times (s, sorted) and MIDI pitches of every pitched note."""
    s = score.to("second")
    parts = [t.notes.numpy() for t in s.tracks if not t.is_drum]
    if not parts or not sum(len(p["time"]) for p in parts):
        return np.zeros(0), np.zeros(0, dtype=int)
    t = np.concatenate([p["time"] for p in parts]).astype(float)
    p = np.concatenate([p["pitch"] for p in parts]).astype(int)
    order = np.lexsort((p, t))
    return t[order], p[order]


def on_grid(score: Score, per_quarter: int) -> Score:
    """A tick score with every onset moved to the nearest 1/per_quarter of a quarter note (as an
    encoding of `per_quarter` positions per beat stores it); durations kept."""
    out = score.copy()
    step = out.ticks_per_quarter / per_quarter
    for track in out.tracks:
        for n in track.notes:
            n.time = int(round(n.time / step) * step)
    return out


def events(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Onsets (sorted) grouped into events: each event's first onset time and its pitches."""
    if len(t) == 0:
        return np.zeros(0), []
    starts = [0]
    for i in range(1, len(t)):
        if t[i] - t[starts[-1]] > CLUSTER:
            starts.append(i)
    bounds = starts + [len(t)]
    return t[starts], [p[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram of x over the bands between `edges` (values beyond them count in the end bands),
    as shares of the count (zeros when x is empty)."""
    h = np.histogram(np.clip(x, edges[0], edges[-1]), edges)[0].astype(float)
    return h / max(h.sum(), 1.0)


def soft_shares(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Shares of x among bands at increasing `centres`, each value split between the two nearest
    centres in proportion to its closeness (values beyond the ends count in the end bands)."""
    x = np.clip(x, centres[0], centres[-1])
    right = np.clip(np.searchsorted(centres, x, side="right"), 1, len(centres) - 1)
    frac = (x - centres[right - 1]) / (centres[right] - centres[right - 1])
    h = np.bincount(right - 1, 1 - frac, len(centres)) + np.bincount(right, frac, len(centres))
    return h / max(len(x), 1)


def key_of(pitches: np.ndarray) -> tuple[int, bool]:
    """(tonic pitch class, minor) of `pitches` by etude.data.keys.key_of on their pitch-class
    counts; C major when no key stands out (every pitch class as often)."""
    key = keys.key_of(np.bincount(pitches % 12, minlength=12))
    return max(key, 0) % 12, key >= 12


def interval_classes(pitches: np.ndarray) -> np.ndarray:
    """Interval-class vector (6,) of a set of pitches: how many pairs of its distinct pitch
    classes lie 1..6 semitones apart (the smaller way round)."""
    pcs = np.unique(pitches % 12)
    icv = np.zeros(6)
    for i in range(len(pcs)):
        for j in range(i + 1, len(pcs)):
            d = int(pcs[j] - pcs[i])
            icv[min(d, 12 - d) - 1] += 1
    return icv


def features_of(t: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """The SIZE features (float32) of onsets t (s, sorted) and pitches p; None under MIN_EVENTS events."""
    et, ep = events(t, p)
    if len(et) < MIN_EVENTS:
        return None
    tonic, minor = key_of(p)
    scale = np.roll(np.bincount(p % 12, minlength=12).astype(float), -tonic) / len(p)
    top = np.array([e.max() for e in ep])
    bottom = np.array([e.min() for e in ep])
    size = np.array([len(e) for e in ep])
    harmony = sum(interval_classes(e) for e in ep)
    log_ioi = np.log2(np.maximum(np.diff(et), 1e-3))
    span = et[-1] - et[0] + 1e-9
    leaps = np.abs(np.diff(bottom))
    groups = [
        scale,
        [float(minor)],
        shares(np.diff(top), MELODY_EDGES),
        shares(leaps, BASS_EDGES),
        harmony / max(harmony.sum(), 1.0),
        soft_shares(log_ioi, IOI_CENTRES),
        soft_shares(np.diff(log_ioi), RATIO_CENTRES),
        [p.mean() / 88, p.std() / 24, top.mean() / 88, bottom.mean() / 88, (top - bottom).mean() / 24],
        [np.mean(size == 1), np.mean(size == 2), np.mean(size == 3), np.mean(size >= 4), np.log(size.mean())],
        [np.log(len(et) / span), np.log(len(t) / span)],
        [np.mean(leaps >= 7), np.mean(np.diff(np.sign(np.diff(bottom))) != 0)],
    ]
    return np.concatenate([np.asarray(g, dtype=float) for g in groups]).astype(np.float32)


def hear(score: Score) -> np.ndarray | None:
    """features_of the piece's onsets and pitches."""
    return features_of(*onsets_of(score))
