"""A piece as the notes a performer plays, in seconds, and the keyboard state at any moment."""

from __future__ import annotations

from dataclasses import dataclass

from symusic import Score


@dataclass(frozen=True)
class Note:
    start: float  # seconds from the start of the piece
    end: float  # seconds; end > start
    pitch: int  # MIDI note number
    velocity: int


def score_notes(score: Score) -> list[Note]:
    """Every note of every track in seconds (tempo map applied), sorted by start, then pitch."""
    notes = [
        Note(float(n.time), float(n.time) + max(float(n.duration), 1e-6), int(n.pitch), int(n.velocity))
        for track in score.to("second").tracks
        for n in track.notes
    ]
    return sorted(notes, key=lambda n: (n.start, n.pitch, n.end))


def coverable(pitches: list[int], hands: int, span: int | None, fingers: int | None) -> bool:
    """Whether `hands` hands, each holding keys at most `span` semitones apart and at most
    `fingers` of them, can hold all of `pitches` at once. Greedy from the lowest key is optimal
    for covering points on a line with windows of fixed width and capacity."""
    keys = sorted(set(pitches))
    used, i = 0, 0
    while i < len(keys):
        used += 1
        if used > hands:
            return False
        low, held = keys[i], 0
        while i < len(keys) and (span is None or keys[i] - low <= span) and (fingers is None or held < fingers):
            i += 1
            held += 1
    return True
