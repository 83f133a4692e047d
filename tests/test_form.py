"""Measures of form against hand-built pieces: one built to repeat scores 1, shuffled or random
bars score about 0, and hand-counted cases in between."""

from __future__ import annotations

import math

import numpy as np
import pytest
from symusic import Note, Score, TimeSignature, Track

from etude.evaluation import form as F
from etude.evaluation.metrics import Notes

MOTIF = [(0.0, 60), (1.0, 64), (1.5, 67), (2.0, 65), (3.0, 62)]  # (beat in the bar, pitch): one bar of 4/4
C_MAJOR = [60, 62, 64, 65, 67, 69, 71]


def _bars(bars_of_notes: list[list[tuple[float, int]]], beats_per_bar: float = 4.0, duration: float = 0.5) -> F.Bars:
    onset, pitch = [], []
    for k, bar in enumerate(bars_of_notes):
        for at, p in bar:
            onset.append(k * beats_per_bar + at)
            pitch.append(p)
    return F.Bars.from_arrays(onset, [duration] * len(onset), pitch, beats_per_bar)


def _random_bars(n: int, seed: int = 0) -> list[list[tuple[float, int]]]:
    rng = np.random.default_rng(seed)
    return [[(float(rng.integers(0, 16)) / 4, int(rng.integers(40, 90))) for _ in range(6)] for _ in range(n)]


def test_bar_repetition_by_hand():
    assert F.bar_repetition(_bars([MOTIF] * 8)) == 1.0
    up = [(t, p + 2) for t, p in MOTIF]
    other = [(0.0, 50), (2.0, 57)]
    # A B A+2 C: of the three bars after the first, one (A+2) repeats an earlier bar, transposed
    assert F.bar_repetition(_bars([MOTIF, other, up, [(0.5, 70)]])) == pytest.approx(1 / 3)
    assert F.bar_repetition(_bars(_random_bars(16))) == 0.0
    assert math.isnan(F.bar_repetition(_bars([MOTIF])))
    # the same pitches at other places in the bar are not a repeat
    shifted = [(t + 0.25, p) for t, p in MOTIF]
    assert F.bar_repetition(_bars([MOTIF, shifted])) == 0.0


def test_tolerant_repetition_hears_repeats_in_seconds_whatever_the_grid():
    # the motif every bar at 120 qpm, onsets jittered by up to 20 ms and the piece off any grid
    rng = np.random.default_rng(1)
    bars = _bars([MOTIF] * 12)
    jittered = Notes(
        bars.notes.onset,
        bars.notes.duration,
        bars.notes.pitch,
        bars.notes.onset_s + 0.37 + rng.uniform(-0.02, 0.02, len(bars.notes)),
        bars.notes.duration_s,
    )
    assert F.tolerant_repetition(jittered) == 1.0
    assert F.tolerant_repetition(_bars(_random_bars(24)).notes) < 0.1
    assert math.isnan(F.tolerant_repetition(_bars([MOTIF]).notes))  # 2 s: no window after the first


def test_keys():
    from etude.data.keys import key_of

    assert key_of(np.bincount([0, 4, 7, 0, 2, 5, 9, 11, 7, 0], minlength=12)) == 0  # C major
    assert key_of(np.bincount([9, 0, 4, 9, 11, 2, 4, 8, 9], minlength=12)) == 12 + 9  # A minor
    assert key_of(np.zeros(12)) == -1
    # I IV V I in C, a bar each: a bass note, the chord, and a melody over the scale
    chords = [[48, 64, 67, 72], [53, 65, 69, 72], [55, 62, 67, 71], [48, 64, 67, 72]]
    in_c_bars = [
        [(0.0, p) for p in chords[j % 4]] + [(1.0 + 0.5 * k, C_MAJOR[(j + k) % 7] + 12) for k in range(6)]
        for j in range(16)
    ]
    in_c = _bars(in_c_bars)
    assert F.key_consistency(in_c) == 1.0 and F.keys_visited(in_c) == 1.0
    far = [[(t, p + 6) for t, p in bar] for bar in in_c_bars]  # F# major: the tritone away
    half = _bars(in_c_bars[:8] + far[:8])
    # 13 windows of 4 bars: 5 wholly in C, 5 wholly in F#, 3 across; the piece's key is one of the two
    assert 5 / 13 <= F.key_consistency(half) <= 8 / 13 and F.keys_visited(half) >= 2


def test_phrase_periodicity_sees_phrases_of_four_bars():
    chords = [[0, 4, 7], [5, 9, 0], [7, 11, 2], [2, 5, 9]]  # I IV V ii, one bar each
    phrase = [[(beat, 60 + pc) for beat in (0.0, 2.0) for pc in chord] for chord in chords]
    piece = _bars(phrase * 6)
    profile = F.lag_profile(piece)
    assert profile[3] == pytest.approx(1.0) and profile[7] == pytest.approx(1.0)
    assert F.phrase_periodicity(piece) > 0.8
    assert abs(F.phrase_periodicity(_bars(_random_bars(40, seed=3)))) < 0.15
    assert math.isnan(F.phrase_periodicity(_bars(phrase)))  # four bars: no lag of 8


def test_pulse_regularity():
    # a stride left hand: bass on every beat, chords above between
    steady = _bars([[(beat, 40) for beat in range(4)] + [(beat + 0.5, 72) for beat in range(4)]] * 8)
    assert F.pulse_regularity(steady.notes) == 1.0
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.2, 2.0, 40))
    loose = Notes.from_arrays(times, [0.25] * 40, [40 if k % 2 else 76 for k in range(40)])
    assert F.pulse_regularity(loose) < 0.3


def test_long_form_by_hand():
    # 64 s at 120 qpm (128 beats): C major notes, the last 30 s an octave higher and twice as dense
    onsets = [b / 1 for b in range(0, 68)] + [68 + b / 2 for b in range(0, 120)]
    pitches = [C_MAJOR[k % 7] for k in range(68)] + [C_MAJOR[k % 7] + 12 for k in range(120)]
    n = Notes.from_arrays(onsets, [0.5] * len(onsets), pitches)
    got = F.long_form(n)
    assert got["same_key"] == 1.0
    assert got["register_shift"] == pytest.approx(12.0, abs=0.5)
    assert got["density_ratio"] == pytest.approx(2.0, rel=0.1)
    assert math.isnan(F.long_form(Notes.from_arrays([0, 1], [1, 1], [60, 62]))["same_key"])


def test_bars_follow_the_scores_time_signatures():
    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 3, 4))
    score.time_signatures.append(TimeSignature(480 * 6, 4, 4))
    track = Track()
    track.notes.append(Note(0, 480, 60, 80))
    track.notes.append(Note(480 * 13, 480, 62, 80))  # beat 13: in the third 4/4 bar (6, 10, 14)
    score.tracks.append(track)
    bars = F.Bars.of(score)
    assert bars.starts.tolist()[:4] == [0.0, 3.0, 6.0, 10.0] and bars.index().tolist() == [0, 3]


def test_bars_of_one_beat_count_in_fours_but_a_pickup_stays():
    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 1, 4))  # a bar token every beat
    track = Track()
    track.notes.append(Note(0, 480, 60, 80))
    track.notes.append(Note(480 * 9, 480, 62, 80))
    score.tracks.append(track)
    assert F.Bars.of(score).starts.tolist() == [0.0, 4.0, 8.0, 10.0]
    score.time_signatures.append(TimeSignature(480, 4, 4))  # a pickup of one beat, then 4/4
    assert F.Bars.of(score).starts.tolist() == [0.0, 1.0, 5.0, 9.0, 10.0]
