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
from etude.paths import ensure_dir, genre_file_stem

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
        raise InputError(f"cannot read {path}: {str(exc)[:200]}") from None
    except (TypeError, AttributeError, IndexError, KeyError) as exc:  # containers of another shape
        raise InputError(
            f"{path} does not have the benchmark's layout (splits of pieces of frames of MIDI pitches, "
            f"or .mat matrices of 88 columns): {type(exc).__name__}: {str(exc)[:120]}"
        ) from None
    raise InputError(f"{path}: expected a .mat or .pickle benchmark file")


def roll_piece_to_midi(path: Path, split: str, index: int, out: Path, qpm: float = 120.0) -> Score:
    """Write one benchmark piece as a MIDI file for listening; returns its score."""
    rolls = load_polyphonic(path)
    if split not in rolls:
        raise InputError(f"unknown split {split!r}; choose train, valid or test")
    pieces = rolls[split]
    if not 0 <= index < len(pieces):
        raise InputError(f"{split} has {len(pieces)} pieces; index {index} is out of range")
    score = roll_to_score(pieces[index], frames_per_beat(path), qpm=qpm)
    ensure_dir(Path(out).parent)
    score.dump_midi(str(out))
    return score


def prepare_rolls(path: Path, out: Path, force: bool = False) -> dict:
    """Store a benchmark set as a prepared piano-roll folder (etude.data.store's layout), keeping
    its own train/valid/test split; one genre, named after the file. Returns the folder's meta."""
    import json

    from etude.config import DataConfig, EncodingConfig, settings_hash, to_dict
    from etude.data.encoding import make_encoding, save_encoding
    from etude.data.store import FORMAT, PieceRecord, install, meta_header, scratch_dir, write_pieces

    path, out = Path(path), Path(out)
    encoding_cfg = EncodingConfig(name="pianoroll", frames_per_beat=frames_per_beat(path))
    settings = {"data": to_dict(DataConfig()), "encoding": to_dict(encoding_cfg), "source": "polyphonic benchmark"}
    st = path.stat() if path.exists() else None
    digest = settings_hash(FORMAT, settings, path.name, st.st_size if st else -1, st.st_mtime_ns if st else -1)
    meta_path = out / "meta.json"
    if meta_path.exists() and not force:
        old = json.loads(meta_path.read_text())
        if old.get("settings_hash") == digest:
            return old
    rolls = load_polyphonic(path)
    genre = genre_file_stem(path.stem.lower())
    enc = make_encoding(encoding_cfg, [genre])
    work = scratch_dir(out)
    records, counts = [], {}
    seconds_per_frame = 60.0 / 120.0 / encoding_cfg.frames_per_beat  # at 120 quarter notes a minute
    for split, pieces in rolls.items():
        index, start = [], 0
        with open(work / f"{split}.bin", "wb") as fh:
            for k, roll in enumerate(pieces):
                fh.write(np.ascontiguousarray(roll, dtype=np.uint8).tobytes())
                index.append((start, len(roll), 0))
                start += len(roll)
                seconds = round(len(roll) * seconds_per_frame, 3)
                records.append(PieceRecord(f"{split}/{k:04d}", genre, split, seconds, len(roll), 0, ""))
        np.save(work / f"{split}.idx.npy", np.array(index, dtype=np.int64).reshape(-1, 3))
        counts[split] = {genre: {"pieces": len(pieces), "tokens": start, "seconds": start * seconds_per_frame}}
    write_pieces(work / "pieces.csv", records)
    save_encoding(enc, work / "tokenizer.json")
    meta = {
        **meta_header(enc, digest, settings, path.resolve()),
        "files": 1,
        "counts": counts,
        "rejection_counts": {},
        "rejections": [],
    }
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    install(work, out)
    work.rmdir()
    return meta
