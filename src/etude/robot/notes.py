"""A piece as the notes a performer plays, in seconds."""

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
