"""Which token may come next: the check made before each sampling step, so every output decodes.

One `Grammar` per encoding (REMI, TSD, MIDILike) holds boolean masks over the vocabulary by
token type; a `Cursor` per sequence tracks what the grammar needs (last token type, position in
the bar, sounding keys) and the musical time in quarter notes and seconds.

Time follows MidiTok: a beat is one denominator note of the time signature (an eighth in 6/8),
`Position_p` is p / beat_res beats into the bar, and Duration/TimeShift values "a.b.c" are
a + b/c beats. Seconds integrate the current Tempo (quarter notes per minute, default 120).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from symusic import Note, Score, Track

from etude.data.encoding import EventEncoding, token_type

MAX_CHORD = 10  # notes allowed at one instant
MAX_EMPTY_BARS = 2  # consecutive bars without a note


def beats(value: str) -> float:
    a, b, c = (int(v) for v in value.split("."))
    return a + b / c


@dataclass
class Cursor:
    """Grammar and clock state of one sequence."""

    last: str = "Genre"  # type of the last token
    position: int = -1  # REMI: position in the bar (-1: none yet)
    bar_start: float = 0.0  # REMI: quarter notes at the start of the current bar
    bars: int = 0  # REMI: bars begun
    empty_bars: int = 0
    num: int = 4  # time signature
    den: int = 4
    qpm: float = 120.0  # tempo in quarter notes per minute
    quarters: float = 0.0  # musical time now
    seconds: float = 0.0
    chord: int = 0  # notes at the current instant
    sounding: set[int] = field(default_factory=set)  # MIDILike: keys with a NoteOn and no NoteOff yet
    tokens: int = 0  # tokens after the genre token

    def move_to(self, quarters: float) -> None:
        self.seconds += max(0.0, quarters - self.quarters) * 60.0 / self.qpm
        self.quarters = max(self.quarters, quarters)


class Grammar:
    """Next-token masks for an event encoding's sequences (genre token first)."""

    def __init__(self, enc: EventEncoding):
        self.kind = enc.name
        vocab = enc.vocab
        self.size = len(vocab)
        self.type_of = [token_type(t) for t in vocab]
        self.value_of = [t.split("_", 1)[1] if "_" in t else "" for t in vocab]
        self.types: dict[str, np.ndarray] = {}
        for i, t in enumerate(self.type_of):
            self.types.setdefault(t, np.zeros(self.size, dtype=bool))[i] = True
        self.beat_res = enc.cfg.beat_res
        self.position_ids = np.array([i for i, t in enumerate(self.type_of) if t == "Position"])
        self.position_values = np.array([int(self.value_of[i]) for i in self.position_ids])
        self.key_ids = {}  # MIDILike: pitch -> (NoteOn id, NoteOff id)
        for i, t in enumerate(self.type_of):
            if t in ("NoteOn", "NoteOff"):
                self.key_ids.setdefault(int(self.value_of[i]), [0, 0])[t == "NoteOff"] = i
        self.eos = enc.eos_id
        # MidiTok's type-succession graph, without special and drum tokens; a sequence opens as
        # after a time step (REMI: with a Bar).
        self.graph = {t: set(n) for t, n in enc.tokenizer.tokens_types_graph.items()}
        self.graph["Genre"] = {"Bar"} if self.kind == "remi" else set(self.graph["TimeShift"])
        unused = {"PAD", "BOS", "EOS", "PitchDrum", "DrumOn", "DrumOff"}
        self.next_types = {t: self.of_types(*(n - unused)) for t, n in self.graph.items()}
        self.end_after = {"TimeShift", "NoteOff", "Velocity"} if self.kind == "midilike" else {"Duration", "TimeShift"}
        self.shortest = {
            kind: min((i for i, t in enumerate(self.type_of) if t == kind), key=lambda i: beats(self.value_of[i]))
            for kind in ("Duration", "TimeShift")
            if kind in self.types
        }
        self.note_starts = self.of_types("Pitch", "NoteOn")
        velocities = np.flatnonzero(self.types["Velocity"])
        self.middle_velocity = int(velocities[len(velocities) // 2])
        self.opening = self._opening(enc)
        self._ids: dict[tuple, np.ndarray] = {}  # grammar state -> allowed ids (allowed_ids)

    def _opening(self, enc: EventEncoding) -> list[np.ndarray]:
        """One mask per token MidiTok writes before every piece's first note (REMI with tempos and
        time signatures: Bar, TimeSig, Position_0, Tempo): the tokens that carry a value (TimeSig,
        Tempo) with any value, the others exactly as written."""
        score, track = Score(480), Track(program=0)
        track.notes.append(Note(0, 480, 60, 64))
        score.tracks.append(track)
        masks = []
        for tok in enc.events(score):
            kind = self.type_of[tok]
            if kind in ("Pitch", "NoteOn"):
                break
            mask = self.types[kind].copy() if kind in ("TimeSig", "Tempo") else np.zeros(self.size, dtype=bool)
            mask[tok] = True
            masks.append(mask)
        return masks

    def of_types(self, *types: str) -> np.ndarray:
        """Boolean mask (V,) of the tokens of these types (types the vocabulary lacks add none)."""
        mask = np.zeros(self.size, dtype=bool)
        for t in types:
            if t in self.types:
                mask |= self.types[t]
        return mask

    # ------------------------------------------------------------------ allowed next tokens
    def allowed_ids(self, c: Cursor, may_end: bool) -> np.ndarray:
        """The ids `allowed` lets through, ascending (int64): each distinct grammar state's mask is
        worked out once per Grammar and kept, so a sampling step costs a dictionary look-up."""
        key = self._state(c, may_end)
        ids = self._ids.get(key)
        if ids is None:
            ids = self._ids[key] = np.flatnonzero(self.allowed(c, may_end))
            ids.flags.writeable = False
        return ids

    def _state(self, c: Cursor, may_end: bool) -> tuple:
        """Everything of `c` that `allowed` reads, and nothing more."""
        remi = self.kind == "remi"
        return (
            c.last,
            remi and c.last in ("Bar", "TimeSig") and c.empty_bars >= MAX_EMPTY_BARS,
            (c.position, c.num) if remi and "Position" in self.graph.get(c.last, ()) else None,
            frozenset(c.sounding) if self.kind == "midilike" else None,
            min(c.tokens, len(self.opening)),
            c.chord >= MAX_CHORD,
            may_end and c.last in self.end_after,
        )

    def allowed(self, c: Cursor, may_end: bool) -> np.ndarray:
        """Boolean mask (V,) of tokens that may follow; EOS only when `may_end`.

        Token types follow MidiTok's own succession graph for the encoding; on top of it, a piece
        opens with the tokens the tokenizer writes before every piece's first note (`opening`),
        positions move forward inside the bar, a key is released only while it sounds and struck
        only while it is silent, chords hold at most MAX_CHORD notes, and at most MAX_EMPTY_BARS
        bars in a row are empty.
        """
        mask = self.next_types[c.last].copy()
        if self.kind == "remi":
            if c.last in ("Bar", "TimeSig") and c.empty_bars >= MAX_EMPTY_BARS:
                mask &= ~self.types["Bar"]
            mask[self.position_ids] = False
            if "Position" in self.graph.get(c.last, ()):
                later = (self.position_values > c.position) & (self.position_values < round(c.num * self.beat_res))
                mask[self.position_ids[later]] = True
        if self.kind == "midilike":
            for key, (on, off) in self.key_ids.items():
                mask[on] &= key not in c.sounding
                mask[off] &= key in c.sounding
        if c.tokens < len(self.opening) and (mask & self.opening[c.tokens]).any():
            mask &= self.opening[c.tokens]  # a piece opens as the tokenizer opens every piece
        if c.chord >= MAX_CHORD:
            mask &= ~self.note_starts
        if may_end and c.last in self.end_after:
            mask[self.eos] = True
        return mask

    # ------------------------------------------------------------------ advancing the cursor
    def advance(self, c: Cursor, token: int) -> None:
        t, v = self.type_of[token], self.value_of[token]
        if t == "Bar":
            if c.bars > 0:
                c.bar_start += c.num * 4.0 / c.den
                c.move_to(c.bar_start)
            c.empty_bars = c.empty_bars + 1 if c.last == "Bar" or c.last == "TimeSig" else 0
            c.bars += 1
            c.position, c.chord = -1, 0
        elif t == "TimeSig":
            num, den = v.split("/")
            c.num, c.den = int(num), int(den)
        elif t == "Position":
            c.position, c.chord = int(v), 0
            c.move_to(c.bar_start + int(v) / self.beat_res * 4.0 / c.den)
        elif t == "TimeShift":
            c.chord = 0
            c.move_to(c.quarters + beats(v) * 4.0 / c.den)
        elif t == "Tempo":
            c.qpm = float(v)
        elif t in ("Pitch", "NoteOn"):
            c.chord += 1
            c.empty_bars = 0
            if t == "NoteOn":
                c.sounding.add(int(v))
        elif t == "NoteOff":
            c.sounding.discard(int(v))
        c.last = t
        c.tokens += 1

    def closing(self, c: Cursor, velocity: int | None = None) -> list[int]:
        """Tokens that end a sequence cleanly from any state: the note being written is
        completed (`velocity` token, default the middle one; shortest duration) and, in
        MIDILike, every sounding key released."""
        out: list[int] = []
        last = c.last
        if last in ("Pitch", "NoteOn"):
            out.append(self.middle_velocity if velocity is None else velocity)
            last = "Velocity"
        if last == "Velocity" and self.kind != "midilike":
            out.append(self.shortest["Duration"])
        if self.kind == "midilike" and c.sounding:
            if last == "Velocity":
                out.append(self.shortest["TimeShift"])
            out += [self.key_ids[k][1] for k in sorted(c.sounding)]
        return out

    def time_steps(self, c: Cursor) -> np.ndarray:
        """The bar lines and time shifts MidiTok's graph allows after the last token, whatever
        the empty-bar cap says (for when a robot can strike nothing in the bar)."""
        return self.next_types[c.last] & self.of_types("Bar", "TimeShift")

    def is_time_step(self, token: int) -> bool:
        return self.type_of[token] in ("Bar", "Position", "TimeShift")
