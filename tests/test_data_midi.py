import numpy as np
import pytest
from symusic import Note, Score, Tempo, Track

from etude.config import DataConfig
from etude.data import midi
from etude.data.midi import Piece, Rejection, load_pieces, reduce_to_piano, seconds_to_ticks, ticks_to_seconds


def test_good_files_load(good_corpus):
    for path in sorted(good_corpus.rglob("*.mid")):
        result = load_pieces(path, path.name, "g", DataConfig(min_seconds=1))
        assert isinstance(result, list) and len(result) == 1
        piece = result[0]
        assert isinstance(piece, Piece) and piece.seconds > 1
        assert len(piece.score.tracks) == 1 and not piece.score.tracks[0].is_drum


@pytest.mark.parametrize(
    "name, reason",
    [
        ("truncated.mid", midi.UNREADABLE),
        ("random_bytes.mid", midi.UNREADABLE),
        ("zero_bytes.mid", midi.UNREADABLE),
        ("text.mid", midi.UNREADABLE),
        ("empty.midi", midi.EMPTY),
        ("drums_only.mid", midi.NO_PITCHED),
        ("too_short.mid", midi.TOO_SHORT),
        ("very_long.mid", midi.TOO_LONG),
    ],
)
def test_bad_files_are_rejected_with_reason(corrupt_dir, name, reason):
    result = load_pieces(corrupt_dir / name, name, "g", DataConfig(long_pieces="reject"))
    assert isinstance(result, Rejection)
    assert result.reason == reason


def test_long_piece_is_cut_into_clips(corrupt_dir):
    # 71 notes, one every 10 s at 60 qpm; the last ends at 701 s.
    pieces = load_pieces(corrupt_dir / "very_long.mid", "long", "g", DataConfig(max_seconds=300))
    assert [p.id for p in pieces] == ["long#0", "long#1", "long#2"]
    assert all(p.seconds <= 300 for p in pieces)
    assert [p.score.note_num() for p in pieces] == [30, 30, 11]
    # each clip starts at its first note: tick 0, tempo carried over
    assert all(p.score.tracks[0].notes[0].time == 0 for p in pieces)
    assert all(p.score.tempos[0].qpm == 60 for p in pieces)


def test_piano_reduction_merges_tracks_drops_drums_applies_pedal(good_corpus):
    score = Score(str(good_corpus / "waltz" / "pedal_and_drums.mid"))
    piano = reduce_to_piano(score)
    assert len(piano.tracks) == 1
    notes = {(n.time, n.pitch): n for n in piano.tracks[0].notes}
    assert 36 not in {n.pitch for n in piano.tracks[0].notes}  # drum kick gone
    assert (0, 48) in notes  # the strings track merged in
    # pedal down 0..1440: C4 (0..240) and E4 (480..720) sound until release
    assert notes[(0, 60)].end == 1440 and notes[(480, 64)].end == 1440
    # the pedal does not hold a re-struck key over its next strike
    assert notes[(0, 72)].end == 480
    # after the release, durations are as written
    assert notes[(1920, 67)].duration == 480
    assert notes[(0, 60)].velocity == 80


def test_reduction_folds_pitches_and_resolves_overlaps():
    s = Score(480)
    t = Track(program=0)
    for n in [Note(0, 960, 60, 80), Note(480, 480, 60, 90), Note(0, 100, 10, 70), Note(0, 100, 120, 70)]:
        t.notes.append(n)
    s.tracks.append(t)
    notes = sorted((n.time, n.end, n.pitch) for n in reduce_to_piano(s).tracks[0].notes)
    assert notes == [(0, 100, 22), (0, 100, 108), (0, 480, 60), (480, 960, 60)]


def test_seconds_to_ticks_follows_tempo_changes():
    s = Score(480)
    s.tempos.append(Tempo(0, 120.0))  # 0.5 s per beat
    s.tempos.append(Tempo(960, 60.0))  # 1 s per beat from tick 960 (t = 1 s)
    assert seconds_to_ticks(s, np.array([0.0, 0.5, 1.0, 2.0])).tolist() == [0, 480, 960, 1440]
    # and back, fractional ticks included: 240 ticks = 0.25 s before the change, 0.5 s after it
    assert ticks_to_seconds(s, np.array([0, 240, 960, 1200, 1440])).tolist() == [0.0, 0.25, 1.0, 1.5, 2.0]


def test_every_truncation_is_rejected_not_misread(tmp_path, good_corpus):
    whole = (good_corpus / "march" / "march1.mid").read_bytes()
    for cut in range(1, len(whole) - 1, 5):
        path = tmp_path / f"cut{cut}.mid"
        path.write_bytes(whole[:cut])
        result = load_pieces(path, path.name, "g", DataConfig(min_seconds=0))
        assert isinstance(result, Rejection) and result.reason in (midi.UNREADABLE, midi.EMPTY), cut
