"""The beat grid found from notes (etude.data.beats): grid fit by hand, a piece on its grid left
alone, a piece performed off its grid brought back to it, POP909's own beat annotations, and
re-timing that keeps every note."""

from __future__ import annotations

import math
from pathlib import Path

import mir_eval
import numpy as np
from symusic import Score, Tempo, TimeSignature, Track
from symusic.core import NoteTickList

from etude.data import beats as B
from etude.data.midi import read_score, reduce_to_piano

ANNOTATIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "annotations" / "pop909"


def _score(onsets_s, pitches, durations_s=None, qpm: float | None = 120.0) -> Score:
    """A one-track score from times in seconds (at 120 qpm, 480 ticks a quarter: 960 ticks a second)."""
    onsets_s = np.asarray(onsets_s, dtype=np.float64)
    durations_s = np.full(len(onsets_s), 0.2) if durations_s is None else np.asarray(durations_s)
    score = Score(480)
    if qpm is not None:
        score.tempos.append(Tempo(0, qpm))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    track = Track(name="Piano", program=0)
    track.notes = NoteTickList.from_numpy(
        np.round(onsets_s * 960).astype(np.int32),
        np.maximum(np.round(durations_s * 960), 1).astype(np.int32),
        np.asarray(pitches, dtype=np.int8),
        np.full(len(onsets_s), 80, dtype=np.int8),
    )
    score.tracks.append(track)
    return score


def _stride(bars: int, beat_s: float, start_s: float = 0.0):
    """A stride pattern: bass on beats 1 and 3 (a chord on 2 and 4), a melody in eighths with a
    chord change every bar. Returns onsets (s), pitches, beat times (s), downbeat times (s)."""
    onsets, pitches = [], []
    roots = [36, 41, 43, 36]
    for bar in range(bars):
        root = roots[bar % 4]
        for beat in range(4):
            t = start_s + (bar * 4 + beat) * beat_s
            if beat % 2 == 0:
                onsets.append(t), pitches.append(root)
            else:
                onsets += [t] * 3
                pitches += [root + 24, root + 28, root + 31]
            for half in (0, 1):
                onsets.append(t + half * beat_s / 2), pitches.append(72 + (bar * 3 + beat * 2 + half) % 12)
    beats = start_s + np.arange(bars * 4) * beat_s
    return np.array(onsets), np.array(pitches), beats, beats[::4]


def test_grid_fit_by_hand():
    assert B.grid_fit(np.array([0.0, 0.25, 0.5, 1 / 3, 2 / 3, 1.75])) == 1.0
    assert B.grid_fit(np.array([0.0, 0.12, 0.5, 0.9])) == 0.5  # 0.12 and 0.9 are off every grid point
    assert B.grid_fit(np.array([0.02, 0.27])) == 1.0 and B.grid_fit(np.array([0.04])) == 0.0
    assert math.isnan(B.grid_fit(np.array([])))


def test_a_piece_on_its_grid_is_left_as_it_is():
    onsets, pitches, _, _ = _stride(8, 0.5)
    score = _score(onsets, pitches)
    kept, before, after = B.fit_to_grid(score)
    assert kept is score and before == after == 1.0


def test_a_piece_on_its_grid_in_bars_of_one_beat_gets_bars_and_keeps_its_notes():
    """The stride written in 1/4 (as most of POP909's files are): a bar token every beat. Its notes
    keep their places and times; its bars become the stride's bars of four, after a one-beat
    pickup."""
    onsets, pitches, _, _ = _stride(8, 0.5)
    one_beat = _score(np.r_[0.0, onsets + 0.5], np.r_[72, pitches])  # a one-beat pickup
    one_beat.time_signatures[0] = TimeSignature(0, 1, 4)
    assert B.one_beat_bars(one_beat) and not B.one_beat_bars(_score(onsets, pitches))
    new, before, after = B.fit_to_grid(one_beat)
    assert before == after == 1.0
    bars = [(t.time // new.ticks_per_quarter, t.numerator, t.denominator) for t in new.time_signatures]
    assert bars[:2] == [(0, 1, 4), (1, 4, 4)], bars
    old, now = (t.notes.numpy() for t in (one_beat.to("second").tracks[0], new.to("second").tracks[0]))
    assert np.allclose(old["time"], now["time"], atol=1e-3) and (old["pitch"] == now["pitch"]).all()
    assert B.fit_to_grid(one_beat, "off")[0] is one_beat


def test_a_piece_performed_off_its_grid_comes_back_to_it():
    # the stride at 0.43 s a beat, started 0.31 s in, every onset moved by up to 20 ms, written
    # at a default 120 qpm as a keyboard recording is: the file's grid says nothing
    rng = np.random.default_rng(0)
    onsets, pitches, beats, downbeats = _stride(24, 0.43, 0.31)
    played = onsets + rng.uniform(-0.02, 0.02, len(onsets))
    score = _score(np.maximum(played, 0), pitches)
    retimed, before, after = B.fit_to_grid(score)
    # 20 ms is up to 0.05 beats here, more than the fit's 0.03: the fit rises, short of 1
    assert before < 0.6 and after >= before + 0.25
    grid = B.find_grid(score)
    assert mir_eval.beat.f_measure(beats, grid.beats) >= 0.9
    assert mir_eval.beat.f_measure(downbeats, grid.downbeats) >= 0.8
    # every note kept, in order, at its time (the first found beat becomes a beat of the new file)
    a = score.to("second").tracks[0].notes.numpy()
    b = retimed.to("second").tracks[0].notes.numpy()
    assert len(b["time"]) == len(a["time"]) and sorted(b["pitch"]) == sorted(a["pitch"])
    shift = np.median(np.sort(b["time"]) - np.sort(a["time"]))
    assert np.percentile(np.abs(np.sort(b["time"]) - np.sort(a["time"]) - shift), 95) < 0.03


def test_a_grid_moved_off_the_beat_by_a_constant_keeps_its_tempo():
    # POP909's case: the tempo is right, every note sits 0.37 beats after where the grid says
    onsets, pitches, beats, downbeats = _stride(16, 0.5, 0.185)
    score = _score(onsets, pitches)
    assert B.own_grid_fit(score) < 0.3
    shift, fit = B.grid_shift(score)
    assert fit == 1.0 and abs((0.37 + shift) * 4 - round((0.37 + shift) * 4)) < 0.01
    grid = B.find_grid(score)
    # the beat is the sixteenth with the bass and the chords, not the melody's off-beat eighths
    assert np.abs(grid.beats[: len(beats)] - beats).max() < 1e-3
    assert mir_eval.beat.f_measure(downbeats, grid.downbeats) >= 0.9
    moved, before, after = B.fit_to_grid(score)
    assert after == 1.0 and len(moved.tracks[0].notes) == len(onsets)


def test_beats_are_split_where_their_onsets_sit_on_thirty_seconds():
    beats = np.arange(0, 12.01, 0.6)
    sixteenths_of_the_half_beat = np.arange(0, 12, 0.075)  # every 1/8 of a 0.6 s beat
    split = B.split_if_finer(beats, sixteenths_of_the_half_beat)
    assert len(split) == 2 * len(beats) - 1 and np.allclose(np.diff(split), 0.3)
    sixteenths = np.arange(0, 12, 0.15)  # every 1/4 of the beat: already on its grid
    assert B.split_if_finer(beats, sixteenths) is beats
    fast = np.arange(0, 12.01, 0.4)  # halves of 0.2 s would be faster than the tracker's fastest beat
    assert B.split_if_finer(fast, np.arange(0, 12, 0.05)) is fast


def test_the_metre_is_how_the_bar_start_evidence_repeats():
    def evidence(pattern, bars=12):
        e = np.tile(np.asarray(pattern, dtype=np.float64), bars)
        return e - e.mean()

    assert B.metre_of(evidence([3, 0, 0])) == 3  # a waltz: every third beat
    assert B.metre_of(evidence([3, 0, 1, 0])) == 4  # beat 3 weaker than beat 1
    assert B.metre_of(evidence([2, 0])) == 4  # every other beat alike: 2 or 4 as written, 4 kept
    assert B.metre_of(evidence([2, 0, 2, 0, 1, 0, 1, 0])) == 2  # every 2 beats 1.25 x as alike as every 4
    assert B.metre_of(evidence([2, 0, 2, 0], bars=3)) == 4  # too few beats (12 < 16) to tell


def test_a_waltz_performed_off_its_grid_gets_bars_of_three():
    # bass on 1, chord on 2 and 3, a tune in eighths, a chord change every bar, at 0.41 s a
    # beat, jittered 15 ms
    rng = np.random.default_rng(1)
    onsets, pitches = [], []
    for bar in range(24):
        root = [36, 41, 43, 38][bar % 4]
        for beat in range(3):
            t = 0.27 + (bar * 3 + beat) * 0.41
            onsets += [t] if beat == 0 else [t] * 3
            pitches += [root] if beat == 0 else [root + 12, root + 16, root + 19]
            for half in (0, 1):
                onsets.append(t + half * 0.205), pitches.append(72 + (bar * 5 + beat * 2 + half) % 12)
    onsets = np.array(onsets)
    score = _score(np.maximum(onsets + rng.uniform(-0.015, 0.015, len(onsets)), 0), pitches)
    grid = B.find_grid(score)
    downbeats = 0.27 + np.arange(24) * 3 * 0.41
    assert mir_eval.beat.f_measure(downbeats, grid.downbeats) >= 0.9
    assert np.median(np.diff(grid.bar_starts)) == 3


def test_bars_of_another_length_are_followed():
    assert B.bar_lengths(np.array([1, 5, 8, 12]), 14) == [(0, 1), (1, 4), (5, 3), (8, 4), (12, 2)]
    assert B.bar_lengths(np.array([0]), 15) == [(0, 4), (4, 4), (8, 4), (12, 3)]  # cut into 4s


def test_pop909_beats_match_the_datasets_own_annotations():
    """POP909's files sit on a grid shifted off the beat; its authors' beats are the reference.
    The first 20 songs (mean F 0.97, median 1.00; all 909: 0.97, see docs/data.md)."""
    scores = []
    for song in sorted(p.name.split(".")[0] for p in ANNOTATIONS.glob("*.beat_midi.txt"))[:20]:
        reference = np.loadtxt(ANNOTATIONS / f"{song}.beat_midi.txt")
        piano = Path(__file__).resolve().parents[2] / "shared" / "data" / "piano" / "pop" / f"{song}.mid"
        grid = B.find_grid(reduce_to_piano(read_score(piano)))
        ref, found = mir_eval.beat.trim_beats(reference[:, 0]), mir_eval.beat.trim_beats(grid.beats)
        scores.append(mir_eval.beat.f_measure(ref, found))
    assert np.mean(scores) >= 0.95 and np.median(scores) >= 0.98


def test_prepare_re_times_only_the_pieces_off_their_grid_and_says_so(tmp_path):
    from etude.config import DataConfig
    from etude.data import info, prepare
    from etude.data.store import PieceRecord, read_pieces

    rng = np.random.default_rng(3)
    for k in range(3):  # the same music on its grid, and performed off it
        onsets, pitches, _, _ = _stride(16, 0.5)
        (tmp_path / "corpus" / "on").mkdir(parents=True, exist_ok=True)
        (tmp_path / "corpus" / "off").mkdir(parents=True, exist_ok=True)
        _score(onsets, pitches + k).dump_midi(str(tmp_path / "corpus" / "on" / f"{k}.mid"))
        played = 0.21 + onsets * 0.87 + rng.uniform(-0.01, 0.01, len(onsets))
        _score(played, pitches + k).dump_midi(str(tmp_path / "corpus" / "off" / f"{k}.mid"))
    meta = prepare(tmp_path / "corpus", tmp_path / "data", DataConfig(test_frac=0, valid_frac=0), workers=1)
    grid = meta["grid"]["genres"]
    assert grid["on"]["retimed"] == 0 and grid["on"]["fit_before"] == grid["on"]["fit_after"] == 1.0
    assert grid["off"]["retimed"] == 3 and grid["off"]["fit_before"] < 0.6 < 0.9 <= grid["off"]["fit_after"]
    records = [PieceRecord.of(r) for r in read_pieces(tmp_path / "data" / "pieces.csv")]
    assert all((r.fit_after > r.fit_before) == (r.genre == "off") for r in records)
    assert "re-timed" in info(tmp_path / "data")
    off = prepare(
        tmp_path / "corpus", tmp_path / "plain", DataConfig(test_frac=0, valid_frac=0, retime="off"), workers=1
    )
    assert off["grid"]["genres"]["off"]["retimed"] == 0
