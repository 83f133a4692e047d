"""Making any piece playable by a robot profile, and saying what it took.

In order: velocities are clamped into range; notes outside the keyboard are folded by octaves
into it (dropped if the range is under an octave and no octave fits); then, moment by moment,
each chord's notes are taken most important first (its top note, the melody; its bottom note,
the bass; then by velocity): a key struck while down ends the earlier note just in time (or the
two merge), a key struck too soon after its release is delayed (or dropped); a note the keys
down, the hands or the note rate cannot take is dropped, except that the melody and the bass
end sustained notes to make room. A last pass drops whatever `violations` still finds, so the
result always satisfies the profile.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from symusic import Note as SymNote
from symusic import Score, Track

from etude.robot.check import violations
from etude.robot.hands import choose_hand
from etude.robot.notes import Note, score_notes
from etude.robot.profile import TOLERANCE_S, RobotProfile

MIN_NOTE_S = 0.03  # a note shortened or delayed keeps at least this long
TICKS_PER_QUARTER = 960  # resolution of adapted files


@dataclass
class Adapted:
    notes: list[Note]
    changes: Counter = field(default_factory=Counter)  # what was done -> how many notes

    def report(self, before: int) -> str:
        done = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(self.changes.items())) or "nothing to change"
        return f"{before} notes in, {len(self.notes)} out: {done}"


def adapt_notes(profile: RobotProfile, notes: list[Note]) -> Adapted:
    """`notes` (any order) made to satisfy `profile`; see the module docstring. A piece that
    already satisfies it is returned as it is."""
    notes = sorted(notes, key=lambda n: (n.start, n.pitch))
    if not violations(profile, notes):
        return Adapted(notes)
    out = Adapted([])
    placed = [n for n in (_fit_key(profile, n, out.changes) for n in notes) if n is not None]
    placed.sort(key=lambda n: (n.start, n.pitch))
    kept: list[Note] = []  # done with: too long ago to matter to later notes
    live: list[Note] = []  # down, resting (restrike) or within the last second (rate)
    hand: dict[Note, int] = {}  # the hand each live note was placed with (profiles with hands)
    i = 0
    while i < len(placed):  # one chord (notes starting within the tolerance) at a time
        j = i
        while j < len(placed) and placed[j].start < placed[i].start + TOLERANCE_S:
            j += 1
        horizon = placed[i].start - profile.restrike - 1.0 - TOLERANCE_S
        kept += [m for m in live if m.end <= horizon]
        live = [m for m in live if m.end > horizon]
        for rank, n in enumerate(_by_importance(placed[i:j])):
            _place(profile, n, live, hand, out.changes, leading=rank < 2)
        i = j
    kept += live
    kept.sort(key=lambda n: (n.start, n.pitch))
    out.notes = _drop_remaining(profile, kept, out.changes)
    return out


def adapt_score(profile: RobotProfile, score: Score) -> tuple[Score, Adapted, int]:
    """A copy of `score` whose notes (all tracks merged into one piano track) satisfy `profile`,
    with tempo and time signatures kept; also the changes and the number of notes before.
    Written at TICKS_PER_QUARTER or finer, so rounding to ticks moves a time by well under the
    tolerance; what rounding still breaks is dropped by checking the written notes again."""
    notes = score_notes(score)
    adapted = adapt_notes(profile, notes)
    while True:
        out = _written(score, adapted.notes)
        written = score_notes(out)
        if not violations(profile, written):
            return out, adapted, len(notes)
        adapted.notes = _drop_remaining(profile, written, adapted.changes)


def _written(score: Score, notes: list[Note]) -> Score:
    seconds = score.to("second")
    seconds.ticks_per_quarter = max(seconds.ticks_per_quarter, TICKS_PER_QUARTER)
    track = Track(name="piano", program=0, ttype="second")
    for n in notes:
        track.notes.append(SymNote(n.start, n.end - n.start, n.pitch, n.velocity, ttype="second"))
    seconds.tracks = [track]
    return seconds.to("tick")


def _fit_key(profile: RobotProfile, n: Note, changes: Counter) -> Note | None:
    vmin, vmax = profile.velocity_range()
    velocity = min(max(n.velocity, vmin), vmax)
    if velocity != n.velocity:
        changes["velocity_clamped"] += 1
    pitch = n.pitch
    while pitch < profile.low:
        pitch += 12
    while pitch > profile.high:
        pitch -= 12
    if not profile.low <= pitch <= profile.high:
        changes["dropped_range"] += 1
        return None
    if pitch != n.pitch:
        changes["folded_into_range"] += 1
    return Note(n.start, n.end, pitch, velocity)


def _by_importance(chord: list[Note]) -> list[Note]:
    """Top note, bottom note, then the rest by velocity (loudest first) and pitch (highest first)."""
    ordered = sorted(chord, key=lambda n: -n.pitch)
    top, rest = ordered[0], ordered[1:]
    if not rest:
        return [top]
    bottom = rest.pop()
    return [top, bottom, *sorted(rest, key=lambda n: (-n.velocity, -n.pitch))]


def _place(
    profile: RobotProfile, n: Note, kept: list[Note], hand: dict[Note, int], changes: Counter, leading: bool
) -> None:
    """Add `n` to `kept` if the profile allows it at its onset, changing it or its neighbours as
    the module docstring says; otherwise count it as dropped."""
    n = _restrike(profile, n, kept, hand, changes)
    if n is None:
        return
    t = n.start
    down = [m for m in kept if m.start < t + TOLERANCE_S and m.end > t + TOLERANCE_S]
    reason, h = _blocked(profile, n, down, kept, hand)
    if reason and leading and reason != "rate":  # melody and bass end sustained notes to make room
        for m in sorted((m for m in down if m.start < t - TOLERANCE_S), key=lambda m: m.start):
            _replace(kept, hand, m, Note(m.start, t, m.pitch, m.velocity))
            changes["shortened"] += 1
            down.remove(m)
            reason, h = _blocked(profile, n, down, kept, hand)
            if not reason:
                break
    if reason:
        changes[f"dropped_{reason}"] += 1
        return
    kept.append(n)
    if h is not None:
        hand[n] = h


def _replace(kept: list[Note], hand: dict[Note, int], old: Note, new: Note) -> None:
    kept[kept.index(old)] = new
    if old in hand:
        hand[new] = hand.pop(old)


def _restrike(profile: RobotProfile, n: Note, kept: list[Note], hand: dict[Note, int], changes: Counter) -> Note | None:
    same = [m for m in kept if m.pitch == n.pitch and m.start <= n.start + TOLERANCE_S]
    if not same:
        return n
    prev = max(same, key=lambda m: m.end)
    if prev.end > n.start - profile.restrike + TOLERANCE_S:
        cut = n.start - profile.restrike
        if prev.end > n.start and cut - prev.start >= MIN_NOTE_S:  # still down: end it in time
            _replace(kept, hand, prev, Note(prev.start, cut, prev.pitch, prev.velocity))
            changes["shortened"] += 1
            return n
        if prev.end > n.start:  # too short to cut: one longer note
            _replace(kept, hand, prev, Note(prev.start, max(prev.end, n.end), prev.pitch, prev.velocity))
            changes["merged"] += 1
            return None
        start = prev.end + profile.restrike
        if n.end - start >= MIN_NOTE_S:
            changes["delayed"] += 1
            return Note(start, n.end, n.pitch, n.velocity)
        changes["dropped_restrike"] += 1
        return None
    return n


def _blocked(
    profile: RobotProfile, n: Note, down: list[Note], kept: list[Note], hand: dict[Note, int]
) -> tuple[str, int | None]:
    """Which limit `n` would break at its onset given the notes down ("" if none), and the hand
    it would be struck with (profiles with hands)."""
    if profile.max_polyphony is not None and len(down) + 1 > profile.max_polyphony:
        return "polyphony", None
    h = None
    if profile.limits_hands():
        h = choose_hand(profile, [(m.pitch, hand[m]) for m in down if m in hand], n.pitch)
        if h is None:
            return "hands", None
    if profile.max_notes_per_second is not None:
        recent = sum(1 for m in kept if n.start - 1.0 + TOLERANCE_S < m.start < n.start + TOLERANCE_S)
        if recent + 1 > profile.max_notes_per_second:
            return "rate", None
    return "", h


def _drop_remaining(profile: RobotProfile, notes: list[Note], changes: Counter) -> list[Note]:
    """Drop, at each onset with a violation, one of the notes starting there that it involves
    (the quietest, then the lowest), checking again until there is none."""
    notes = list(notes)
    while found := violations(profile, notes):
        for time in dict.fromkeys(v.time for v in found):
            v = next(v for v in found if v.time == time)
            at = [n for n in notes if abs(n.start - time) < TOLERANCE_S]
            involved = [n for n in at if n.pitch in v.keys] or at
            if involved:
                notes.remove(min(involved, key=lambda n: (n.velocity, n.pitch)))
                changes[f"dropped_{v.limit}"] += 1
    return notes
