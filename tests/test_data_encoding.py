import numpy as np
import pytest
from symusic import Note, Score, Tempo, Track

from etude.config import DataConfig, EncodingConfig
from etude.data.encoding import encoding_from_state, make_encoding, roll_to_score
from etude.data.midi import load_pieces, reduce_to_piano

EVENT_ENCODINGS = ("remi", "midilike", "tsd")


def _notes_in_beats(score: Score) -> np.ndarray:
    """(n, 4) array: onset (beats), duration (beats), pitch, velocity; sorted."""
    tpq = score.ticks_per_quarter
    rows = [(n.time / tpq, n.duration / tpq, n.pitch, n.velocity) for n in score.tracks[0].notes]
    return np.array(sorted(rows, key=lambda r: (r[0], r[2])))


def _jittered_piece(seed: int) -> Score:
    """Notes at arbitrary ticks (not on any grid), durations up to 3 beats, one voice per key."""
    rng = np.random.default_rng(seed)
    s = Score(480)
    s.tempos.append(Tempo(0, 110.0))
    t = Track(program=0)
    times = np.sort(rng.integers(0, 480 * 16, 40))
    for time in np.unique(times):
        t.notes.append(
            Note(int(time), int(rng.integers(30, 1400)), int(rng.integers(30, 100)), int(rng.integers(20, 127)))
        )
    s.tracks.append(t)
    return reduce_to_piano(s)


def _pieces(good_corpus):
    paths = sorted(good_corpus.rglob("*.mid"))
    return [load_pieces(p, p.name, "march", DataConfig(min_seconds=1))[0].score for p in paths]


@pytest.mark.parametrize("name", EVENT_ENCODINGS)
@pytest.mark.parametrize("beat_res", [4, 8])
def test_event_round_trip_on_grid_pieces(good_corpus, name, beat_res):
    enc = make_encoding(EncodingConfig(name=name, beat_res=beat_res), ["march", "waltz"])
    for score in _pieces(good_corpus):
        back = enc.decode(enc.encode(score, "march"))
        a, b = _notes_in_beats(score), _notes_in_beats(back)
        assert a.shape == b.shape
        np.testing.assert_array_equal(a[:, 2], b[:, 2])  # pitches
        np.testing.assert_allclose(a[:, 0], b[:, 0], atol=0.5 / beat_res + 1e-9)  # onsets
        short = a[:, 1] < 4  # durations up to 4 beats use the fine grid, longer the half grid
        np.testing.assert_allclose(a[short, 1], b[short, 1], atol=0.5 / beat_res + 1e-9)
        np.testing.assert_allclose(a[~short, 1], b[~short, 1], atol=1.0 / beat_res + 1e-9)
        assert np.abs(a[:, 3] - b[:, 3]).max() <= 128 / 32  # within one of 32 velocity bins


@pytest.mark.parametrize("name", EVENT_ENCODINGS)
def test_event_round_trip_off_grid(name):
    beat_res = 8
    enc = make_encoding(EncodingConfig(name=name, beat_res=beat_res), ["x"])
    score = _jittered_piece(3)
    back = enc.decode(enc.encode(score, "x"))
    a, b = _notes_in_beats(score), _notes_in_beats(back)
    # grid snapping may merge two notes of the same key; every decoded note matches an original
    assert len(b) <= len(a)
    for onset, dur, pitch, _ in b:
        same = a[a[:, 2] == pitch]
        k = np.argmin(np.abs(same[:, 0] - onset))
        assert abs(same[k, 0] - onset) <= 0.5 / beat_res + 1e-9
        assert abs(same[k, 1] - dur) <= 0.5 / beat_res + 1e-9 or dur < same[k, 1]


def test_genre_token_first_and_state_round_trip():
    enc = make_encoding(EncodingConfig(name="remi"), ["bach", "folk"])
    score = _jittered_piece(1)
    ids = enc.encode(score, "folk")
    assert ids[0] == enc.genre_id("folk") == enc.vocab_size - 1
    assert enc.vocab[ids[0]] == "Genre_folk"
    assert ids[-1] == enc.eos_id
    clone = encoding_from_state(enc.state())
    assert clone.vocab == enc.vocab
    np.testing.assert_array_equal(clone.encode(score, "folk"), ids)


@pytest.mark.parametrize("name", EVENT_ENCODINGS)
def test_event_transpose_moves_pitches(name):
    enc = make_encoding(EncodingConfig(name=name), ["x"])
    score = _jittered_piece(2)
    up = enc.decode(enc.transpose(enc.encode(score, "x"), 5))
    base = enc.decode(enc.encode(score, "x"))
    np.testing.assert_array_equal(_notes_in_beats(up)[:, 2], _notes_in_beats(base)[:, 2] + 5)
    assert enc.transpose(enc.encode(score, "x"), 60) is None  # would leave the piano


def test_pianoroll_round_trip_is_exact():
    rng = np.random.default_rng(0)
    enc = make_encoding(EncodingConfig(name="pianoroll", frames_per_beat=2), [])
    for fpb in (1, 2, 4, 3):
        roll = (rng.random((64, 88)) < 0.1).astype(np.uint8)
        roll[-1, 0] = 1  # the last frame sounds, so the roll's length survives
        score = roll_to_score(roll, fpb)
        enc.cfg.frames_per_beat = fpb
        np.testing.assert_array_equal(enc.encode(score), roll)


def test_pianoroll_of_a_piece(good_corpus):
    enc = make_encoding(EncodingConfig(name="pianoroll", frames_per_beat=4), [])
    score = _pieces(good_corpus)[0]
    roll = enc.encode(score)
    assert roll.shape[1] == 88
    tpq = score.ticks_per_quarter
    n = score.tracks[0].notes[0]
    assert roll[round(n.time * 4 / tpq), n.pitch - 21] == 1
    assert enc.transpose(roll, 3)[:, 3:].tolist() == roll[:, :-3].tolist()
