"""Robot profiles enforced while sampling: every generated piece is playable by construction.

Event tokens: `EventGuard` masks, before each step and beside the grammar, the tokens that
would break the profile: pitches outside the keys; a pitch whose key is down or resting
(min_restrike), or that would exceed max_polyphony, the hands (etude.robot.hands.choose_hand,
hands never crossing and each key keeping its hand) or max_notes_per_second at the current
time; velocities outside the range; and, once a note has sounded, tempo changes (so a note's
end in seconds is known when its duration is chosen). In REMI, a position stands only if some
note could start there (`confirm`: a drawn position that fails is masked and the token drawn
again, the same distribution as masking first), so the grammar can always go on.

Piano rolls: `FrameGuard` passes each sampled frame through the same limits before the model
is conditioned on it: held keys continue, new keys are taken highest first while they fit.
Times are seconds at the cursor's tempo (events) or at the rolls' fixed tempo; generated times lie
on the encoding's grid, so they survive the MIDI file's ticks exactly, and etude.robot.check's
tolerance is left to spare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from etude.data.encoding import EventEncoding
from etude.data.midi import PIANO_LOW
from etude.errors import InputError
from etude.generation.grammar import Cursor, Grammar, beats
from etude.robot.hands import choose_hand, hand_reach
from etude.robot.profile import RobotProfile

EPS = 1e-9  # seconds: float noise, far below etude.robot.check's tolerance


@dataclass
class _Sounded:
    pitch: int
    start: float  # seconds
    end: float | None  # seconds; None while its duration (or note-off) is still to come
    hand: int | None


def _held(down: list[_Sounded]) -> list[tuple[int, int]]:
    """(key, hand) of the notes down that have a hand."""
    return [(n.pitch, n.hand) for n in down if n.hand is not None]


@dataclass
class Keyboard:
    """What a robot is doing: the notes struck so far (the recent ones) and when each key rests."""

    notes: list[_Sounded] = field(default_factory=list)
    onsets: list[float] = field(default_factory=list)  # start times of every note, in order
    free_at: dict[int, float] = field(default_factory=dict)  # key -> time it may be struck again

    def down(self, t: float) -> list[_Sounded]:
        return [n for n in self.notes if n.end is None or n.end > t + EPS]

    def full(self, profile: RobotProfile, t: float, down: list[_Sounded]) -> bool:
        """Whether no key at all may start at `t`: polyphony reached, or the note rate."""
        if profile.max_polyphony is not None and len(down) >= profile.max_polyphony:
            return True
        if profile.max_notes_per_second is not None:
            recent = sum(1 for s in self.onsets[-profile.max_notes_per_second :] if s > t - 1.0 - EPS)
            return recent >= profile.max_notes_per_second
        return False

    def can_strike(self, profile: RobotProfile, key: int, t: float, down: list[_Sounded]) -> int | None | bool:
        """False if `key` cannot start at `t` (see also `full`); otherwise the hand it takes
        (None without hands)."""
        if not profile.low <= key <= profile.high or self.free_at.get(key, -1.0) > t + EPS:
            return False
        if any(n.pitch == key for n in down):
            return False
        if profile.limits_hands():
            hand = choose_hand(profile, _held(down), key)
            return False if hand is None else hand
        return None

    def strikable(self, profile: RobotProfile, keys: np.ndarray, t: float, down: list[_Sounded]) -> np.ndarray:
        """`can_strike` for many keys at once: a boolean mask over `keys` (distinct MIDI pitches)."""
        if self.full(profile, t, down):
            return np.zeros(len(keys), dtype=bool)
        ok = (keys >= profile.low) & (keys <= profile.high)
        blocked = {n.pitch for n in down} | {k for k, free in self.free_at.items() if free > t + EPS}
        if blocked:
            ok &= ~np.isin(keys, list(blocked))
        if profile.limits_hands():  # some hand can reach the key (choose_hand's rule, all keys at once)
            reach = hand_reach(profile, _held(down))
            ok &= np.logical_or.reduce([(keys >= r[0]) & (keys <= r[1]) for r in reach if r], initial=False)
        return ok

    def strike(self, key: int, t: float, hand: int | None) -> None:
        self.notes.append(_Sounded(key, t, None, hand))
        self.onsets.append(t)

    def release(self, note: _Sounded, end: float, restrike: float = 0.0) -> None:
        note.end = end
        self.free_at[note.pitch] = end + restrike
        horizon = note.start - 2.0  # older notes no longer matter to any limit (restrike lives in free_at)
        self.notes = [n for n in self.notes if n.end is None or n.end > horizon]


class EventGuard:
    """Robot masks for one event encoding (REMI, TSD, MIDILike)."""

    def __init__(self, profile: RobotProfile, grammar: Grammar, enc: EventEncoding):
        self.profile, self.grammar = profile, grammar
        pitch_types = ("Pitch", "NoteOn")
        self.pitch_ids = np.array([i for i, t in enumerate(grammar.type_of) if t in pitch_types])
        self.pitch_values = np.array([int(grammar.value_of[i]) for i in self.pitch_ids])
        if not ((self.pitch_values >= profile.low) & (self.pitch_values <= profile.high)).any():
            raise InputError(f"robot {profile.name}: none of the model's pitches lies in {profile.low}..{profile.high}")
        vmin, vmax = profile.velocity_range()
        velocity = grammar.types["Velocity"].copy()
        values = np.array([int(v) if t == "Velocity" else 0 for t, v in zip(grammar.type_of, grammar.value_of)])
        self.velocity_off = velocity & ((values < vmin) | (values > vmax))
        if not (velocity & ~self.velocity_off).any():
            raise InputError(f"robot {profile.name}: no velocity the model writes lies in {vmin}..{vmax}")
        self.tempo = grammar.types.get("Tempo", np.zeros(grammar.size, dtype=bool))

    def start(self) -> Keyboard:
        return Keyboard()

    def allowed(self, c: Cursor, k: Keyboard) -> np.ndarray:
        """Boolean mask (V,) of the tokens the robot allows next (to be and-ed with the grammar's)."""
        mask = ~self.velocity_off
        if k.onsets:
            mask &= ~self.tempo
        following = self.grammar.next_types[c.last]
        if following[self.pitch_ids].any():
            mask[self.pitch_ids] = k.strikable(self.profile, self.pitch_values, c.seconds, k.down(c.seconds))
        return mask

    def confirm(self, c: Cursor, k: Keyboard, token: int) -> bool:
        """Whether a drawn token may stand: a REMI position only if some key could start there
        (checked on the drawn token only, which samples exactly as masking every such position)."""
        g = self.grammar
        if g.kind != "remi" or g.type_of[token] != "Position":
            return True
        value = int(g.value_of[token])
        t = c.seconds + (c.bar_start + value / g.beat_res * 4.0 / c.den - c.quarters) * 60.0 / c.qpm
        return bool(k.strikable(self.profile, self.pitch_values, t, k.down(t)).any())

    def advance(self, c: Cursor, k: Keyboard, token: int) -> None:
        """Record `token` (before the grammar advances the cursor past it)."""
        t, v = self.grammar.type_of[token], self.grammar.value_of[token]
        if t in ("Pitch", "NoteOn"):
            hand = k.can_strike(self.profile, int(v), c.seconds, k.down(c.seconds))
            k.strike(int(v), c.seconds, None if hand is False else hand)
        elif t == "Duration":
            note = next(n for n in reversed(k.notes) if n.end is None)
            k.release(note, note.start + beats(v) * 4.0 / c.den * 60.0 / c.qpm, self.profile.restrike)
        elif t == "NoteOff":
            note = next((n for n in reversed(k.notes) if n.end is None and n.pitch == int(v)), None)
            if note is not None:
                k.release(note, c.seconds, self.profile.restrike)

    def closing_velocity(self) -> int:
        """The middle velocity token the robot allows (to complete a note cut off at the end)."""
        ids = np.flatnonzero(self.grammar.types["Velocity"] & ~self.velocity_off)
        return int(ids[len(ids) // 2])


class FrameGuard:
    """Robot limits for piano-roll sampling, one Keyboard per sequence; frames last `frame_s`."""

    def __init__(self, profile: RobotProfile, n: int, frame_s: float, low_key: int = PIANO_LOW):
        self.profile, self.frame_s, self.low_key = profile, frame_s, low_key
        self.keyboards = [Keyboard() for _ in range(n)]
        self.sounding: list[dict[int, _Sounded]] = [{} for _ in range(n)]

    def __call__(self, frame: torch.Tensor, step: int) -> torch.Tensor:
        """frame (n, K) of 0/1 sampled for frame number `step` -> the playable part of it."""
        t = step * self.frame_s
        out = torch.zeros_like(frame)
        for b, (k, sounding) in enumerate(zip(self.keyboards, self.sounding)):
            on = {self.low_key + int(i) for i in torch.nonzero(frame[b]).flatten()}
            for key in [key for key in sounding if key not in on]:  # released at this frame's start
                k.release(sounding.pop(key), t, self.profile.restrike)
            for key in sounding:
                out[b, key - self.low_key] = 1
            down = k.down(t)
            for key in sorted(on - set(sounding), reverse=True):
                hand = False if k.full(self.profile, t, down) else k.can_strike(self.profile, key, t, down)
                if hand is not False:
                    k.strike(key, t, hand)
                    sounding[key] = k.notes[-1]
                    down = k.down(t)
                    out[b, key - self.low_key] = 1
        return out
