"""Checking a piece against a robot profile: every moment it asks for more than the robot has.

Definitions (times compared to TOLERANCE_S):
- range: a note below `lowest` or above `highest`;
- velocity: a velocity outside [min, max];
- restrike: a key struck again before `min_restrike` seconds after its release (or while down);
- polyphony: more than `max_polyphony` keys down at an onset (notes ending at that instant are up);
- hands: the keys down at an onset cannot be held by `hands` hands of `hand_span` and `fingers`,
  each key keeping its hand while it is down and hands never crossing (etude.robot.hands);
- rate: more than `max_notes_per_second` onsets in the second ending at an onset.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass

from etude.robot.hands import hand_overloads
from etude.robot.notes import Note
from etude.robot.profile import TOLERANCE_S, RobotProfile

LIMITS = ("range", "velocity", "restrike", "polyphony", "hands", "rate")


@dataclass(frozen=True)
class Violation:
    time: float  # seconds
    limit: str  # one of LIMITS
    keys: tuple[int, ...]  # the keys involved
    detail: str

    def __str__(self) -> str:
        return f"{self.time:9.3f} s  {self.limit:<9}  keys {' '.join(map(str, self.keys))}: {self.detail}"


def violations(profile: RobotProfile, notes: list[Note]) -> list[Violation]:
    """Every violation of `profile` in `notes` (sorted by start), in time order."""
    found = _per_note(profile, notes) + _restrikes(profile, notes) + _per_onset(profile, notes)
    if profile.limits_hands():
        found += [Violation(t, "hands", keys, _hands_text(profile)) for t, keys in hand_overloads(profile, notes)]
    return sorted(found, key=lambda v: (v.time, LIMITS.index(v.limit), v.keys))


def _per_note(profile: RobotProfile, notes: list[Note]) -> list[Violation]:
    out = []
    vmin, vmax = profile.velocity_range()
    for n in notes:
        if not profile.low <= n.pitch <= profile.high:
            out.append(Violation(n.start, "range", (n.pitch,), f"outside keys {profile.low}..{profile.high}"))
        if not vmin <= n.velocity <= vmax:
            out.append(Violation(n.start, "velocity", (n.pitch,), f"velocity {n.velocity} outside {vmin}..{vmax}"))
    return out


def _restrikes(profile: RobotProfile, notes: list[Note]) -> list[Violation]:
    out = []
    by_key: dict[int, list[Note]] = defaultdict(list)
    for n in notes:
        by_key[n.pitch].append(n)
    for key, ns in by_key.items():
        for a, b in zip(ns, ns[1:]):
            gap = b.start - a.end
            if gap < profile.restrike - TOLERANCE_S:
                what = "struck while down" if gap < -TOLERANCE_S else f"{gap:.3f} s after release"
                out.append(Violation(b.start, "restrike", (key,), f"{what} (needs {profile.restrike:g} s)"))
    return out


def _per_onset(profile: RobotProfile, notes: list[Note]) -> list[Violation]:
    """Polyphony, hands and rate at each distinct onset time, sweeping once through the notes."""
    out = []
    starts = [n.start for n in notes]
    down: list[tuple[float, int]] = []  # heap of (end, key) of the notes down
    begun = 0
    for t in sorted(set(starts)):
        while begun < len(notes) and notes[begun].start < t + TOLERANCE_S:
            heapq.heappush(down, (notes[begun].end, notes[begun].pitch))
            begun += 1
        while down and down[0][0] <= t + TOLERANCE_S:
            heapq.heappop(down)
        keys = tuple(sorted(k for _, k in down))
        if profile.max_polyphony is not None and len(keys) > profile.max_polyphony:
            out.append(Violation(t, "polyphony", keys, f"{len(keys)} keys down (max {profile.max_polyphony})"))
        if profile.max_notes_per_second is not None:
            recent = begun - bisect_left(starts, t - 1.0 + TOLERANCE_S)
            if recent > profile.max_notes_per_second:
                limit = profile.max_notes_per_second
                out.append(Violation(t, "rate", (), f"{recent} notes in the last second (max {limit})"))
    return out


def _hands_text(profile: RobotProfile) -> str:
    span = f" of span {profile.hand_span}" if profile.hand_span is not None else ""
    fingers = f", {profile.fingers} fingers each" if profile.fingers is not None else ""
    return f"cannot be held by {profile.hands} hand(s){span}{fingers}"
