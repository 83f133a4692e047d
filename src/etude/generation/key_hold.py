"""The key hold: once a piece has set its key, its new notes are drawn with a pull toward it.

After a sequence's first `after_quarters` quarter notes (a primer's included), the key of the
notes so far is found by the Krumhansl-Schmuckler method on their onset counts per pitch class
(etude.data.keys) and fixed. From then on each note token (REMI Pitch, MIDILike NoteOn) of pitch
class pc has strength * ln(profile[pc] / profile[tonic]) added to its logit, the profile being
the key's Krumhansl-Kessler ratings: 0 for the tonic, ln(5.19 / 6.35) = -0.20 for a major key's
fifth, ln(2.23 / 6.35) = -1.05 for its minor second, each times the strength. A strength of 0
changes nothing; 1 makes a note outside the scale about a third as likely as the model had it.
"""

from __future__ import annotations

import numpy as np

from etude.data.keys import key_of, profile_of
from etude.generation.grammar import Cursor, Grammar


class KeyHold:
    """Per-sequence key and logit bias for `n` sequences sampled together."""

    def __init__(self, grammar: Grammar, n: int, strength: float, after_quarters: float):
        self.strength, self.after = strength, after_quarters
        notes = np.flatnonzero(grammar.of_types("Pitch", "NoteOn"))
        self.note_ids = notes
        self.note_pcs = np.array([int(grammar.value_of[i]) % 12 for i in notes], dtype=np.int64)
        self.pc_of = dict(zip(notes.tolist(), self.note_pcs.tolist()))
        self.counts = np.zeros((n, 12))  # onsets per pitch class until the key is set
        self.keys = [-1] * n  # the key each sequence holds (-1: not set yet, or none found)
        self.fixed = [False] * n  # the key is found and fixed
        self.bias = np.zeros((n, grammar.size), dtype=np.float32)  # added to the logits (B, V)

    def advance(self, row: int, c: Cursor, token: int) -> None:
        """Take `token`, already advanced through the grammar (so `c` is after it), into row's count;
        set the row's key once its cursor has passed `after_quarters`."""
        if self.fixed[row]:
            return
        pc = self.pc_of.get(token)
        if pc is not None:
            self.counts[row, pc] += 1
        if c.quarters >= self.after:
            self.fixed[row] = True
            self.keys[row] = key = key_of(self.counts[row])
            if key >= 0:
                profile = profile_of(key)
                self.bias[row, self.note_ids] = self.strength * np.log(profile[self.note_pcs] / profile.max())

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """logits (B, V) with each row's bias added (a new array)."""
        return logits + self.bias
