"""Metric values checked against hand computation (see the comments for the arithmetic)."""

import math

import numpy as np
import pytest
from symusic import Note, Score, Tempo, Track

from etude.evaluation import metrics as m

# At 120 qpm (0.5 s per beat): C4+E4 on beat 0, G4 on beat 1, C5 for two beats from beat 2,
# nothing in beat 4, D4 on beat 5.
ROWS = [(0, 1, 60), (0, 1, 64), (1, 1, 67), (2, 2, 72), (5, 1, 62)]


@pytest.fixture
def notes():
    onset, dur, pitch = zip(*ROWS)
    return m.Notes.from_arrays(onset, dur, pitch, qpm=120)


def test_notes_of_a_score_equal_the_arrays(notes):
    s = Score(480)
    s.tempos.append(Tempo(0, 120.0))
    t = Track(program=0)
    for on, d, p in ROWS:
        t.notes.append(Note(on * 480, d * 480, p, 80))
    s.tracks.append(t)
    got = m.Notes.of(s)
    for field in ("onset", "duration", "pitch", "onset_s", "duration_s"):
        np.testing.assert_allclose(getattr(got, field), getattr(notes, field))


def test_pitch_measures(notes):
    assert m.pitch_range(notes) == 12  # 72 - 60
    assert m.pitches_used(notes) == 5
    # pitch classes C C D E G -> 0.4, 0.2, 0.2, 0.2: -(0.4 log2 0.4 + 3 x 0.2 log2 0.2) = 1.921928
    np.testing.assert_allclose(m.pitch_class_histogram(notes)[[0, 2, 4, 7]], [0.4, 0.2, 0.2, 0.2])
    assert m.pitch_class_entropy(notes) == pytest.approx(1.921928, abs=1e-6)
    assert m.scale_consistency(notes) == 1.0  # all in C major
    # C C# D D#: no major scale holds all four; C# major (C# D# F F# G# A# C) holds three
    off = m.Notes.from_arrays([0, 1, 2, 3], [1] * 4, [60, 61, 62, 63])
    assert m.scale_consistency(off) == 0.75


def test_transitions(notes):
    # onset order 60 64 67 72 62 -> pitch classes 0 4 7 0 2: four transitions, a quarter each
    t = m.pitch_class_transition_matrix(notes)
    assert t.sum() == pytest.approx(1)
    assert t[0, 4] == t[4, 7] == t[7, 0] == t[0, 2] == 0.25


def test_texture_and_rhythm(notes):
    # sounding per beat: 2, 1, 1, 1, 0, 1 -> mean over non-empty 6/5; two or more in 1 of 6 beats
    assert m.polyphony(notes) == pytest.approx(1.2)
    assert m.polyphony_rate(notes) == pytest.approx(1 / 6)
    assert m.empty_beat_rate(notes) == pytest.approx(1 / 6)
    # 16 positions per 4/4 bar: bar 1 onsets {0, 4, 8}, bar 2 {4}: 2 differ -> 1 - 2/16
    assert m.groove_consistency(notes) == pytest.approx(0.875)
    # 5 notes from 0 s to the last note-off at 6 beats = 3 s
    assert m.note_density(notes) == pytest.approx(5 / 3)
    # distinct onsets 0, 0.5, 1.0, 2.5 s -> gaps 0.5, 0.5, 1.5
    assert m.mean_ioi(notes) == pytest.approx(2.5 / 3)
    # durations 1 1 1 2 1 beats: four quarters, one half
    np.testing.assert_allclose(m.note_length_histogram(notes), [0, 0, 0, 0.8, 0.2, 0, 0])


def test_empty_piece_gives_nan():
    empty = m.Notes.from_arrays([], [], [])
    for name, value in m.piece_metrics(empty).items():
        assert math.isnan(value), name
    for f in m.HISTOGRAMS.values():
        assert np.isnan(f(empty)).all()


def test_spectral_distances():
    p = np.array([1.0, 1.0])
    q = np.array([1.0, 10.0])
    # normalised [0.5, 0.5] vs [1/11, 10/11]: dB gaps 10 log10 5.5 = 7.4036, 10 log10 0.55 = -2.5964
    assert m.log_spectral_distance(p, q) == pytest.approx(math.sqrt((7.4036**2 + 2.5964**2) / 2), abs=1e-3)
    assert m.log_spectral_distance(p, 3 * p) == pytest.approx(0, abs=1e-6)
    assert m.js_distance(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)
    # p = [1, 0], q = [.5, .5], m = [.75, .25]: KL(p|m) = 0.415037, KL(q|m) = 0.207519
    assert m.js_distance(np.array([1.0, 0]), np.array([0.5, 0.5])) == pytest.approx(math.sqrt(0.311278), abs=1e-5)
    assert m.spectral_correlation(q, 2 * q) == pytest.approx(1.0)


def test_mean_spectrum_peaks_at_the_tone():
    sr = 44100
    t = np.arange(sr) / sr
    spec = m.mean_spectrum(np.stack([np.sin(2 * np.pi * 440 * t)] * 2))
    freqs = np.fft.rfftfreq(4096, 1 / sr)
    assert abs(freqs[np.argmax(spec)] - 440) < sr / 4096


def test_set_comparison():
    a = np.array([[0.0], [1.0], [2.0]])
    far = m.set_comparison(a, np.array([[10.0]]))
    # intra distances 1, 2, 1; inter 10, 9, 8
    assert far["intra_mean"] == pytest.approx(4 / 3) and far["inter_mean"] == pytest.approx(9)
    assert far["overlap"] < 0.05
    rng = np.random.default_rng(0)
    same = m.set_comparison(rng.normal(size=(60, 3)), rng.normal(size=(60, 3)))
    shifted = m.set_comparison(rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 3)
    assert same["overlap"] > 0.8 and same["kl"] < 0.1
    assert shifted["overlap"] < same["overlap"] and shifted["kl"] > same["kl"]
    assert math.isnan(m.set_comparison(a[:1], a)["kl"])


def test_longest_copied_run():
    from etude.evaluation.memorisation import TrainingIndex, note_codes

    def score(pitches, start=0):
        s = Score(480)
        t = Track(program=0)
        for k, p in enumerate(pitches):
            t.notes.append(Note(start + k * 240, 240, p, 80))
        s.tracks.append(t)
        return s

    train = TrainingIndex([note_codes(score([60, 62, 64, 65, 67, 69, 71, 72])), note_codes(score([50, 52]))])
    # 62 64 65 67 is copied (same pitches, same eighth-note steps); 40 and 41 are not
    assert train.longest_run(note_codes(score([40, 62, 64, 65, 67, 41]))) == 4
    assert train.longest_run(note_codes(score([30, 31]))) == 0
    # the same pitches in another rhythm are not a copy beyond the first note
    slow = Score(480)
    tr = Track(program=0)
    for k, p in enumerate([60, 62, 64]):
        tr.notes.append(Note(k * 960, 960, p, 80))
    slow.tracks.append(tr)
    assert train.longest_run(note_codes(slow)) == 1


def test_copied_run_in_bars():
    """A 3/4 training piece of quarter notes; a query copying 7 of them (from its 2nd note), after
    two notes of its own: the run starts at query note 2, 7 notes long, and its onsets span 6
    quarters = 2 bars in 3/4 (first onset to last); in 4/4 it would be 6/4 bars."""
    from symusic import TimeSignature

    from etude.evaluation.memorisation import TrainingIndex, note_codes, run_bars

    def score(pitches, meter=None):
        s = Score(480)
        t = Track(program=0)
        for k, p in enumerate(pitches):
            t.notes.append(Note(k * 480, 480, p, 80))
        s.tracks.append(t)
        if meter:
            s.time_signatures.append(TimeSignature(0, *meter))
        return s

    index = TrainingIndex([note_codes(score(list(range(60, 72)), (3, 4)))])
    query = score([40, 41, *range(61, 68), 30], (3, 4))
    ((start, length),) = index.copied_runs([note_codes(query)])
    assert (start, length) == (2, 7)
    assert run_bars(query, start, length) == pytest.approx(2)
    assert run_bars(score([40, 41, *range(61, 68)]), start, length) == pytest.approx(6 / 4)
    # a one-beat "bar" (POP909's 1/4) is a file's habit, not a metre: read as 4/4, as 6/8 is read
    # as 3 quarters to the bar
    assert run_bars(score([40, 41, *range(61, 68)], (1, 4)), start, length) == pytest.approx(6 / 4)
    assert run_bars(score([40, 41, *range(61, 68)], (6, 8)), start, length) == pytest.approx(2)
    assert index.copied_runs([note_codes(score([20, 21]))]) == [(0, 0)]
    assert run_bars(query, 0, 0) == 0.0


def test_a_held_chord_is_not_a_copy_of_bars():
    """A six-note chord held 11 quarters in 2/4 (5.5 bars of sound; one of the generated pop pieces
    the former end-of-note measure flagged), then notes of its own: the copied run is the chord,
    6 notes at one onset, 0 bars. The same chord followed by the training piece's next note 4 bars
    later is 7 notes over 4 bars."""
    from symusic import TimeSignature

    from etude.evaluation.memorisation import TrainingIndex, note_codes, run_bars

    chord = [47, 52, 56, 59, 64, 68]

    def score(then):
        s = Score(480)
        t = Track(program=0)
        t.notes.extend(Note(0, 11 * 480, p, 80) for p in chord)
        t.notes.extend(Note(q * 480, 480, p, 80) for q, p in then)
        s.tracks.append(t)
        s.time_signatures.append(TimeSignature(0, 2, 4))
        return s

    index = TrainingIndex([note_codes(score([(8, 71), (9, 72)]))])
    for then, notes, bars in [([(12, 30)], 6, 0.0), ([(8, 71), (10, 30)], 7, 4.0)]:
        query = score(then)
        ((start, length),) = index.copied_runs([note_codes(query)])
        assert (start, length) == (0, notes)
        assert run_bars(query, start, length) == pytest.approx(bars)


def test_longest_run_agrees_with_a_brute_force_search():
    """Random pieces over a small alphabet (many partial matches): the hashed index gives the
    brute-force answer, searched together or one by one, and never counts a run across two
    training pieces."""
    from etude.evaluation.memorisation import TrainingIndex

    rng = np.random.default_rng(0)
    train = [rng.integers(0, 4, rng.integers(1, 60)) for _ in range(30)]
    index = TrainingIndex(train)

    def brute(codes):
        best = 0
        for p in train:
            for i in range(len(codes)):
                for j in range(len(p)):
                    k = 0
                    while i + k < len(codes) and j + k < len(p) and codes[i + k] == p[j + k]:
                        k += 1
                    best = max(best, k)
        return best

    queries = [rng.integers(0, 5, rng.integers(0, 40)) for _ in range(40)]
    assert index.longest_runs(queries) == [brute(q) for q in queries]
    assert [index.longest_run(q) for q in queries[:5]] == [brute(q) for q in queries[:5]]
    across = np.concatenate([train[0][-3:], train[1][:3]])  # the end of one piece, the start of the next
    assert index.longest_run(across) == brute(across)
