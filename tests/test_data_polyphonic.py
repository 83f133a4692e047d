import pickle

import numpy as np
import pytest
from symusic import Score

from etude.data.polyphonic import load_polyphonic, roll_piece_to_midi
from etude.errors import InputError


def test_jsb_mat_counts(jsb_mat):
    rolls = load_polyphonic(jsb_mat)
    assert [len(rolls[s]) for s in ("train", "valid", "test")] == [229, 76, 77]
    assert [sum(len(p) for p in rolls[s]) for s in ("train", "valid", "test")] == [13807, 4602, 4725]
    assert all(p.shape[1] == 88 and p.dtype == np.uint8 for p in rolls["train"])


def test_pickle_layout_agrees_with_mat(jsb_mat, tmp_path):
    rolls = load_polyphonic(jsb_mat)
    as_pitches = {s: [[[21 + int(k) for k in np.nonzero(f)[0]] for f in p] for p in rolls[s][:5]] for s in rolls}
    path = tmp_path / "JSB Chorales.pickle"
    path.write_bytes(pickle.dumps(as_pitches))
    again = load_polyphonic(path)
    for s in rolls:
        for a, b in zip(rolls[s][:5], again[s]):
            np.testing.assert_array_equal(a, b)


def test_pickle_with_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"train": [np.zeros(3)], "valid": [], "test": []}))
    with pytest.raises(InputError, match="cannot read"):
        load_polyphonic(path)


def test_roll_to_midi(jsb_mat, tmp_path):
    score = roll_piece_to_midi(jsb_mat, "test", 3, tmp_path / "p.mid")
    again = Score(str(tmp_path / "p.mid"))
    assert again.note_num() == score.note_num() > 0
    with pytest.raises(InputError, match="out of range"):
        roll_piece_to_midi(jsb_mat, "test", 999, tmp_path / "q.mid")
