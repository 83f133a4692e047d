"""What the listening judge hears (etude.evaluation.hearing): hand-checked features, and what
they must not hear (key, tempo marks, note lengths, velocities)."""

from __future__ import annotations

import numpy as np
import pytest
from symusic import Note, Score, Track

from etude.evaluation import hearing as H


def test_interval_classes_of_a_major_triad():
    # C-E-G: E-G a minor third (ic 3), C-E a major third (ic 4), C-G a fifth = ic 5
    assert H.interval_classes(np.array([60, 64, 67, 72])).tolist() == [0, 0, 1, 1, 1, 0]


def test_soft_shares_split_a_value_between_its_two_nearest_centres():
    # 0.5: half to 0 and half to 1; 0.2: 0.8 to 0, 0.2 to 1; 2 and -1 (beyond the ends): all to their end
    shares = H.soft_shares(np.array([0.5, 0.2, 2.0, -1.0]), np.array([0.0, 1.0, 2.0]))
    assert shares == pytest.approx([2.3 / 4, 0.7 / 4, 1.0 / 4])


def test_the_key_of_a_major_and_a_minor_scale():
    c_major = np.array([60, 62, 64, 65, 67, 69, 71, 72, 60, 67, 64, 60])
    a_harmonic_minor = np.array([57, 59, 60, 62, 64, 65, 68, 69, 57, 64, 60, 57])
    assert H.key_of(c_major) == (0, False)
    assert H.key_of(a_harmonic_minor) == (9, True)


def test_onsets_within_the_cluster_make_one_event():
    t = np.array([0.0, 0.02, 0.04, 0.5, 0.52])
    starts, pitches = H.events(t, np.array([48, 60, 64, 50, 62]))
    assert starts.tolist() == [0.0, 0.5] and [e.tolist() for e in pitches] == [[48, 60, 64], [50, 62]]


def test_on_grid_moves_onsets_to_the_nearest_position_and_keeps_durations():
    score = Score(480)
    track = Track(name="p", program=0)
    for time in (130, 170, 185):
        track.notes.append(Note(time, 100, 60, 80))
    score.tracks.append(track)
    moved = H.on_grid(score, 4)  # a 16th of a quarter: 120 ticks
    assert [n.time for n in moved.tracks[0].notes] == [120, 120, 240]
    assert [n.duration for n in moved.tracks[0].notes] == [100, 100, 100]


def _piece(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Onsets 0.25-0.75 s apart, each a chord of one to three notes struck together."""
    rng = np.random.default_rng(seed)
    t, p = [], []
    now = 0.0
    for _ in range(60):
        for _ in range(rng.integers(1, 4)):
            t.append(now)
            p.append(int(rng.integers(48, 80)))
        now += float(rng.choice([0.25, 0.5, 0.75]))
    return np.array(t), np.array(p)


def _groups(x: np.ndarray) -> dict[str, np.ndarray]:
    edges = np.cumsum([0, *H.FEATURES.values()])
    return {name: x[a:b] for name, a, b in zip(H.FEATURES, edges[:-1], edges[1:])}


def test_a_transposition_moves_nothing_but_register():
    t, p = _piece()
    before, after = _groups(H.features_of(t, p)), _groups(H.features_of(t, p + 5))
    assert len(H.features_of(t, p)) == H.SIZE
    for name in H.FEATURES:
        same = np.allclose(before[name], after[name], atol=1e-6)
        assert same == (name != "register"), name


def test_a_slower_tempo_moves_nothing_but_the_lengths_of_intervals_and_density():
    t, p = _piece(1)
    before, after = _groups(H.features_of(t, p)), _groups(H.features_of(t * 1.25, p))
    for name in H.FEATURES:
        same = np.allclose(before[name], after[name], atol=1e-6)
        assert same == (name not in ("ioi", "density")), name


def test_too_few_events_to_judge():
    t, p = _piece()
    assert H.features_of(t[:5], p[:5]) is None
