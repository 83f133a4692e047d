"""The polyphonic-music benchmark sets (JSB Chorales, Nottingham, MuseData, Piano-midi.de).

Two layouts hold the same splits: MATLAB `.mat` (keys traindata/validdata/testdata, each piece a
uint8 matrix (frames, 88), column k = MIDI pitch 21 + k) and the original pickle (a dict
train/valid/test of pieces, each a list of frames, each a list of sounding MIDI pitches).
Both load to the same form: {"train"|"valid"|"test": [uint8 array (frames, 88), ...]}.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from symusic import Score

from etude.data.encoding import N_KEYS, roll_to_score
from etude.data.midi import PIANO_LOW
from etude.errors import InputError

Rolls = dict[str, list[np.ndarray]]
_MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}
# Frames per quarter note in the published sets; others default to 2.
_FRAMES_PER_BEAT = {"jsb": 1, "nottingham": 2}


def frames_per_beat(path: Path) -> int:
    """The time step of a benchmark file, guessed from its name (JSB: quarters, else eighths)."""
    name = Path(path).name.lower()
    return next((v for k, v in _FRAMES_PER_BEAT.items() if k in name), 2)


class _PlainUnpickler(pickle.Unpickler):
    """Loads only plain containers and numbers: a benchmark pickle needs nothing else."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


def _load_mat(path: Path) -> Rolls:
    from scipy.io import loadmat

    data = loadmat(path)
    missing = [k for k in _MAT_KEYS.values() if k not in data]
    if missing:
        raise InputError(f"{path} lacks {', '.join(missing)}; expected the benchmark's .mat layout")
    return {
        split: [np.asarray(p, dtype=np.uint8).reshape(-1, N_KEYS) for p in data[key][0]]
        for split, key in _MAT_KEYS.items()
    }


def pitches_to_roll(frames: list[list[int]]) -> np.ndarray:
    """Frames of sounding MIDI pitches as a uint8 roll (frames, 88)."""
    roll = np.zeros((len(frames), N_KEYS), dtype=np.uint8)
    for t, pitches in enumerate(frames):
        for p in pitches:
            if not PIANO_LOW <= int(p) < PIANO_LOW + N_KEYS:
                raise InputError(f"pitch {p} outside the piano range 21..108")
            roll[t, int(p) - PIANO_LOW] = 1
    return roll


def _load_pickle(path: Path) -> Rolls:
    with open(path, "rb") as fh:
        data = _PlainUnpickler(fh, encoding="latin1").load()
    if not isinstance(data, dict) or not set(_MAT_KEYS) <= set(data):
        raise InputError(f"{path} is not a benchmark pickle (a dict with train, valid, test)")
    return {split: [pitches_to_roll(piece) for piece in data[split]] for split in _MAT_KEYS}


def load_polyphonic(path: Path) -> Rolls:
    """Read a benchmark set from `.mat` or `.pickle`/`.pkl` into {split: [roll (frames, 88)]}."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"benchmark file not found: {path}")
    try:
        if path.suffix.lower() == ".mat":
            return _load_mat(path)
        if path.suffix.lower() in (".pickle", ".pkl"):
            return _load_pickle(path)
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    raise InputError(f"{path}: expected a .mat or .pickle benchmark file")


def roll_piece_to_midi(
    path: Path, split: str, index: int, out: Path, qpm: float = 120.0
) -> Score:
    """Write one benchmark piece as a MIDI file for listening; returns its score."""
    rolls = load_polyphonic(path)
    if split not in rolls:
        raise InputError(f"unknown split {split!r}; choose train, valid or test")
    pieces = rolls[split]
    if not 0 <= index < len(pieces):
        raise InputError(f"{split} has {len(pieces)} pieces; index {index} is out of range")
    score = roll_to_score(pieces[index], frames_per_beat(path), qpm=qpm)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(out))
    return score
