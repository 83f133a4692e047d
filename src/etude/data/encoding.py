"""Pieces as arrays: MidiTok event tokens with a genre token first, or an 88-key piano roll.

Both encodings share one interface: `encode(score, genre) -> array`, `decode(array) -> Score`,
`transpose(array, k) -> array | None` (None when a note would leave the piano), and a JSON state
from which `encoding_from_state` rebuilds an identical encoder with no other input.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import miditok
import numpy as np
from symusic import Score, Tempo, Track
from symusic.core import NoteTickList

from etude.config import EncodingConfig, check_encoding, from_dict, to_dict
from etude.data.midi import PIANO_HIGH, PIANO_LOW
from etude.errors import CheckpointError

N_KEYS = PIANO_HIGH - PIANO_LOW + 1  # 88
_TOKENIZERS = {"remi": miditok.REMI, "midilike": miditok.MIDILike, "tsd": miditok.TSD}
_PITCH_TOKEN = re.compile(r"^(Pitch|NoteOn|NoteOff)_(\d+)$")


def token_type(token: str) -> str:
    """A token's type, from its name: "Pitch" for "Pitch_60", "Bar" for "Bar_None" (MidiTok's
    names; ours are "Genre_<name>")."""
    return token.split("_")[0]


class EventEncoding:
    """MidiTok events (REMI, MIDILike or TSD) over the piano range; sequence = genre, events, EOS.

    Genre tokens `Genre_<name>` take the ids after MidiTok's own vocabulary.
    """

    row_size = 1  # one token per array row
    dtype = np.uint16

    def __init__(self, cfg: EncodingConfig, genres: list[str]):
        self.cfg = cfg
        self.genres = list(genres)
        half = max(1, cfg.beat_res // 2)
        tok_cfg = miditok.TokenizerConfig(
            pitch_range=(PIANO_LOW, PIANO_HIGH),  # inclusive: the 88 keys
            beat_res={(0, 4): cfg.beat_res, (4, 12): half},
            num_velocities=cfg.velocities,
            use_tempos=cfg.tempos,
            use_time_signatures=cfg.time_signatures,
            special_tokens=["PAD", "BOS", "EOS"],
        )
        self.tokenizer = _TOKENIZERS[check_encoding(cfg.name)](tok_cfg)
        self.base_size = len(self.tokenizer)
        self.pad_id = self.tokenizer.vocab["PAD_None"]
        self.eos_id = self.tokenizer.vocab["EOS_None"]
        self.special_ids = {self.pad_id, self.tokenizer.vocab["BOS_None"], self.eos_id}
        if self.base_size + len(self.genres) > np.iinfo(self.dtype).max:
            raise ValueError("vocabulary too large for uint16 token arrays")
        self._shift_cache: dict[int, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def vocab_size(self) -> int:
        return self.base_size + len(self.genres)

    @property
    def vocab(self) -> list[str]:
        """Token strings by id."""
        by_id = {i: t for t, i in self.tokenizer.vocab.items()}
        return [by_id[i] for i in range(self.base_size)] + [f"Genre_{g}" for g in self.genres]

    def genre_id(self, genre: str) -> int:
        return self.base_size + self.genres.index(genre)

    @property
    def bar_id(self) -> int | None:
        """The id of the token that starts a bar (REMI's `Bar_None`); None where there is none."""
        return self.tokenizer.vocab.get("Bar_None")

    def events(self, score: Score) -> list[int]:
        """MidiTok's token ids for a one-track score, without genre or EOS."""
        seqs = self.tokenizer.encode(score)
        return list(seqs[0].ids if isinstance(seqs, list) else seqs.ids)

    def encode(self, score: Score, genre: str) -> np.ndarray:
        """Token ids, shape (T,): the genre token, the piece's events, EOS."""
        return np.array([self.genre_id(genre), *self.events(score), self.eos_id], dtype=self.dtype)

    def decode(self, ids: np.ndarray) -> Score:
        """A one-track piano score from token ids; genre and special tokens are skipped."""
        events = [int(i) for i in ids if i < self.base_size and int(i) not in self.special_ids]
        score = self.tokenizer.decode([events])
        if not score.tracks:
            score.tracks.append(Track(name="Piano", program=0, is_drum=False))
        score.tracks[0].program, score.tracks[0].name = 0, "Piano"
        return score

    def transpose(self, ids: np.ndarray, k: int) -> np.ndarray | None:
        """Every pitch token moved by k semitones; None if a note would leave the piano."""
        table = self._shift_cache.get(k)
        if table is None:
            table = np.arange(self.vocab_size, dtype=np.int64)
            vocab = self.tokenizer.vocab
            for token, i in vocab.items():
                m = _PITCH_TOKEN.match(token)
                if m:
                    table[i] = vocab.get(f"{m.group(1)}_{int(m.group(2)) + k}", -1)
            self._shift_cache[k] = table
        out = table[ids.astype(np.int64)]
        return None if (out < 0).any() else out.astype(self.dtype)

    def state(self) -> dict[str, Any]:
        return {"encoding": to_dict(self.cfg), "genres": self.genres}


class PianoRollEncoding:
    """Binary piano roll, shape (frames, 88), column k = MIDI pitch 21 + k.

    A note covers frames [round(on), max(round(on) + 1, round(off))) at `frames_per_beat` frames
    per quarter note. Tempo and velocity are not kept: decoding plays at `qpm` with `velocity`.
    """

    row_size = N_KEYS
    dtype = np.uint8

    def __init__(self, cfg: EncodingConfig, genres: list[str]):
        self.cfg = cfg
        self.genres = list(genres)

    name = "pianoroll"
    vocab_size = 2  # a key is off or on
    vocab = ["off", "on"]

    def encode(self, score: Score, genre: str = "") -> np.ndarray:
        fpb = self.cfg.frames_per_beat
        tpq = score.ticks_per_quarter
        if score.note_num() == 0:
            return np.zeros((0, N_KEYS), dtype=self.dtype)
        n = score.tracks[0].notes.numpy()
        on = np.round(n["time"].astype(np.float64) * fpb / tpq).astype(np.int64)
        off = np.round((n["time"] + n["duration"]).astype(np.float64) * fpb / tpq).astype(np.int64)
        off = np.maximum(off, on + 1)
        roll = np.zeros((int(off.max()), N_KEYS), dtype=self.dtype)
        for a, b, p in zip(on, off, n["pitch"].astype(np.int64) - PIANO_LOW):
            roll[a:b, p] = 1
        return roll

    def decode(self, roll: np.ndarray, qpm: float = 120.0, velocity: int = 80) -> Score:
        return roll_to_score(roll, self.cfg.frames_per_beat, qpm=qpm, velocity=velocity)

    def transpose(self, roll: np.ndarray, k: int) -> np.ndarray | None:
        if k == 0:
            return roll
        moved_out = roll[:, -k:] if k > 0 else roll[:, :-k]
        if moved_out.any():
            return None
        return np.roll(roll, k, axis=1)

    def state(self) -> dict[str, Any]:
        return {"encoding": to_dict(self.cfg), "genres": self.genres}


def roll_to_score(roll: np.ndarray, frames_per_beat: int, qpm: float = 120.0, velocity: int = 80) -> Score:
    """A piano-roll (frames, 88) as a one-track score: each run of on-frames of a key is one note."""
    tpq = 480 if 480 % frames_per_beat == 0 else frames_per_beat
    step = tpq // frames_per_beat
    padded = np.zeros((roll.shape[0] + 2, N_KEYS), dtype=np.int8)
    padded[1:-1] = roll > 0
    edges = np.diff(padded, axis=0).T  # (88, frames + 1): +1 at a note's first frame, -1 past its last
    key, on = np.nonzero(edges == 1)  # sorted by key, then frame: the i-th on pairs the i-th off
    _, off = np.nonzero(edges == -1)
    order = np.lexsort((key, on))  # by onset, then key
    key, on, off = key[order], on[order], off[order]
    score = Score(tpq)
    score.tempos.append(Tempo(0, float(qpm)))
    track = Track(name="Piano", program=0, is_drum=False)
    track.notes = NoteTickList.from_numpy(
        (on * step).astype(np.int32),
        ((off - on) * step).astype(np.int32),
        (key + PIANO_LOW).astype(np.int8),
        np.full(len(on), velocity, dtype=np.int8),
    )
    score.tracks.append(track)
    return score


Encoding = EventEncoding | PianoRollEncoding


def make_encoding(cfg: EncodingConfig, genres: list[str]) -> Encoding:
    """The encoder for `cfg.name`, with one genre token per genre (in this order)."""
    if check_encoding(cfg.name) == "pianoroll":
        return PianoRollEncoding(cfg, genres)
    return EventEncoding(cfg, genres)


def encoding_from_state(state: dict[str, Any]) -> Encoding:
    return make_encoding(from_dict(EncodingConfig, state["encoding"]), state["genres"])


def save_encoding(encoding: Encoding, path: Path) -> None:
    """Write `tokenizer.json`: everything needed to rebuild the encoder."""
    Path(path).write_text(json.dumps(encoding.state(), indent=2))


def load_encoding(path: Path) -> Encoding:
    try:
        return encoding_from_state(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot read tokenizer {path}: {exc}") from None
