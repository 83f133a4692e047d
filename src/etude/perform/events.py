"""What a performance sends: timed note and controller events, and the outputs (sinks) they go to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Event:
    """One MIDI event at `t` seconds from the start; fields named as mido names them."""

    t: float
    type: str  # note_on | note_off | control_change
    pitch: int = 0  # note number, or the controller number for control_change
    velocity: int = 0  # velocity, or the controller value for control_change
    channel: int = 0
    hand: int | None = None  # with a robot profile: the hand that plays the note (0: leftmost)
    finger: int | None = None  # ... and the finger (1: thumb), for profiles with fingers

    def as_dict(self) -> dict:
        if self.type == "control_change":
            return {
                "t": round(self.t, 6),
                "type": self.type,
                "control": self.pitch,
                "value": self.velocity,
                "channel": self.channel,
            }
        out = {
            "t": round(self.t, 6),
            "type": self.type,
            "pitch": self.pitch,
            "velocity": self.velocity,
            "channel": self.channel,
        }
        if self.hand is not None:
            out["hand"] = self.hand
        if self.finger is not None:
            out["finger"] = self.finger
        return out


class SinkClosed(Exception):
    """The output went away (a closed pipe, an unplugged port): playback stops cleanly."""


class Sink(Protocol):
    def send(self, event: Event) -> None: ...
    def close(self) -> None: ...
