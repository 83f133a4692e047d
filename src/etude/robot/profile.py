"""Robot profiles: what one performer can physically play, as a JSON file.

Every field is optional; an absent field does not constrain. `name` and `description` are
free text. Units: pitches are MIDI note numbers, spans semitones, times seconds.

  lowest, highest        the keys it has (inclusive)
  max_polyphony          keys down at once
  hands                  hands (or mallets, arms) that move over the keyboard
  hand_span              semitones one hand covers: its lowest and highest held key differ by at most this
  fingers                keys one hand holds at once
  min_restrike           seconds between releasing a key and striking it again
  velocity               [min, max] velocities it plays reliably
  max_notes_per_second   notes struck in any one-second window

Three profiles ship with étude (`SHIPPED`): an 88-key player piano, a two-hand robot and a
25-key toy; `load_profile` takes one of their names or a path.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from etude.errors import InputError

SHIPPED = ("player-piano", "two-hand-robot", "toy-25")
TOLERANCE_S = 1e-3  # times within a millisecond count as equal (MIDI ticks round)


@dataclass(frozen=True)
class RobotProfile:
    """A performer's limits (see the module docstring); None: unconstrained."""

    name: str = "unconstrained"
    description: str = ""
    lowest: int | None = None
    highest: int | None = None
    max_polyphony: int | None = None
    hands: int | None = None
    hand_span: int | None = None
    fingers: int | None = None
    min_restrike: float | None = None
    velocity: tuple[int, int] | None = None
    max_notes_per_second: int | None = None

    @property
    def low(self) -> int:
        return 0 if self.lowest is None else self.lowest

    @property
    def high(self) -> int:
        return 127 if self.highest is None else self.highest

    @property
    def restrike(self) -> float:
        """Seconds a key rests between notes (0: released keys may sound again at once; a key
        is never struck while it is down)."""
        return self.min_restrike or 0.0

    def velocity_range(self) -> tuple[int, int]:
        return tuple(self.velocity) if self.velocity else (1, 127)

    def limits_hands(self) -> bool:
        return self.hands is not None and (self.hand_span is not None or self.fingers is not None)

    def summary(self) -> str:
        """One line of the limits that are set."""
        parts = []
        if self.lowest is not None or self.highest is not None:
            parts.append(f"keys {self.low}..{self.high}")
        for key, text in (
            ("max_polyphony", "at most {} keys down"),
            ("hands", "{} hand(s)"),
            ("hand_span", "span {} semitones"),
            ("fingers", "{} fingers per hand"),
            ("min_restrike", "restrike {} s"),
            ("max_notes_per_second", "at most {} notes/s"),
        ):
            if getattr(self, key) is not None:
                parts.append(text.format(getattr(self, key)))
        if self.velocity:
            parts.append(f"velocity {self.velocity[0]}..{self.velocity[1]}")
        return f"{self.name}: " + (", ".join(parts) or "unconstrained")


# field -> (type, lowest valid value, highest valid value)
_INTS = {
    "lowest": (0, 127),
    "highest": (0, 127),
    "max_polyphony": (1, 128),
    "hands": (1, 16),
    "hand_span": (0, 127),
    "fingers": (1, 16),
    "max_notes_per_second": (1, 10_000),
}


def profile_from_dict(data: Any, source: str = "profile") -> RobotProfile:
    """A validated profile from parsed JSON; InputError naming `source` and the bad field."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: a robot profile is a JSON object, not {type(data).__name__}")
    known = {f.name for f in fields(RobotProfile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{source}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    values = {k: v for k, v in data.items() if v is not None}
    for key in ("name", "description"):
        if key in values and not isinstance(values[key], str):
            raise InputError(f"{source}: {key} must be text")
    for key, (low, high) in _INTS.items():
        if key in values:
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise InputError(f"{source}: {key} must be a whole number in {low}..{high}, not {v!r}")
    if "min_restrike" in values:
        v = values["min_restrike"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 10:
            raise InputError(f"{source}: min_restrike must be seconds in 0..10, not {v!r}")
        values["min_restrike"] = float(v)
    if "velocity" in values:
        v = values["velocity"]
        ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        if not ok or not 1 <= v[0] <= v[1] <= 127:
            raise InputError(f"{source}: velocity must be [min, max] with 1 <= min <= max <= 127, not {v!r}")
        values["velocity"] = (v[0], v[1])
    profile = RobotProfile(**values)
    if profile.low > profile.high:
        raise InputError(f"{source}: lowest ({profile.low}) is above highest ({profile.high})")
    if (profile.hand_span is not None or profile.fingers is not None) and profile.hands is None:
        raise InputError(f"{source}: hand_span and fingers describe hands: give hands too")
    return profile


def load_profile(spec: str | Path) -> RobotProfile:
    """A shipped profile by name (player-piano, two-hand-robot, toy-25) or a JSON file."""
    text = str(spec)
    if text in SHIPPED:
        path = resources.files("etude") / "robot" / "profiles" / f"{text}.json"
        return profile_from_dict(json.loads(path.read_text()), text)
    path = Path(text)
    if not path.is_file():
        raise InputError(f"no robot profile {text!r}: give a JSON file or one of {', '.join(SHIPPED)}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON robot profile ({str(exc).splitlines()[0][:120]})") from None
    return profile_from_dict(data, str(path))
