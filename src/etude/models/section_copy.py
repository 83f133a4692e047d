"""SectionCopy: a returning section of a form plan copied from its source bar in step with it.

A section that comes back (etude.models.form_plan) copies the bar that many bars earlier. Found by
the look-up's similarity alone, the copy loses its place wherever the new bar departs from the
source (a token the grammar forbids there, another note drawn from the LSTM's share): it then
jumps ahead in the source bar, which leaves a rest, or plays a stretch twice. Over a 30 s ragtime
piece that left a second or two of silence at the end of each returning section.

The pointer keeps the place, one entry of the memory (an output and the token that followed it)
for each sequence, moved after each token written, in this order of rules:
- a bar of a returning section starts at the source bar's first entry;
- the source's own token moves it on by one;
- a time step (a Position) moves it to the source's first token at or after that place in the bar
  (past it when the source has that very Position): the copy goes on from the same beat;
- another token of the type the source had (another pitch, velocity or duration) moves it on by
  one: a note changed, the rhythm kept;
- a token of another type moves it past the source's first token of that type before the
  source's next time step (the source had, say, a tempo the copy left out); where the source has
  none, the pointer waits (the copy added a note of its own).
The memory then proposes the token after the pointer (MemoryStepper adds SECTION_POINTER to that
entry's score). Encodings without Position and Bar tokens get no pointer.
"""

from __future__ import annotations

import numpy as np
import torch

from etude.data.encoding import token_type

BAR_TIME = 1 << 20  # a bar token's place in time: after every Position of the bar it ends


class SectionCopy:
    """The copy pointer of a batch of B sequences over a memory's entries: for each row, its
    source bar (entries lo .. hi - 1) and the entry it points at (`at`, -1: none). Kept in NumPy,
    a row at a time: most steps only compare one token, and a dozen tensor operations over the
    whole memory would cost more than the step's LSTM."""

    def __init__(self, vocab: list[str], batch: int, weight: float):
        types = [token_type(t) for t in vocab]
        codes = {t: i for i, t in enumerate(sorted(set(types)))}
        self.kind = np.array([codes[t] for t in types])  # (V,) a code per type
        places = {"Bar": lambda t: BAR_TIME, "Position": lambda t: int(t.split("_", 1)[1])}
        self.time = np.array([places.get(k, lambda t: -1)(t) for t, k in zip(vocab, types)])  # (V,) -1: no time step
        self.weight = weight  # added to the look-up's score of the entry pointed at
        self.at = np.full(batch, -1)  # (B,) the entry whose token the copy proposes next
        self.lo, self.hi = np.zeros(batch, dtype=np.int64), np.zeros(batch, dtype=np.int64)  # (B,) the source bar
        # what to add to the look-up's scores (B, 1, N): `bonus` at entry `index` of each row (0
        # where nothing is pointed at); the tensors share the arrays' memory, so they are made once
        self.index, self.bonus = np.zeros((batch, 1, 1), dtype=np.int64), np.zeros((batch, 1, 1), dtype=np.float32)
        self.focus_index, self.focus_bonus = torch.from_numpy(self.index), torch.from_numpy(self.bonus)

    @staticmethod
    def possible(vocab: list[str]) -> bool:
        """Whether an encoding's vocabulary has the bars and positions the pointer follows."""
        return {"Bar", "Position"} <= {token_type(t) for t in vocab}

    def reset(self) -> None:
        self.at.fill(-1)
        self._pointed()

    def shift(self, k: int) -> None:
        """The memory dropped its first k entries: indices move down by k (lost places: -1)."""
        self.at[:] = np.where(self.at >= k, self.at - k, -1)
        self.lo[:], self.hi[:] = np.maximum(self.lo - k, 0), np.maximum(self.hi - k, 0)
        self._pointed()

    def _pointed(self) -> None:
        """The focus arrays from `at`."""
        self.index[:, 0, 0] = np.maximum(self.at, 0)
        self.bonus[:, 0, 0] = np.where(self.at >= 0, self.weight, 0.0)

    def follow(
        self, tokens: np.ndarray, values: np.ndarray, bars: np.ndarray, source: np.ndarray, new_bar: np.ndarray
    ) -> None:
        """Move each row's place after `tokens` (B,) were written (the module docstring's rules).
        values, bars (B, N): the memory's tokens and the bar count at each entry; source (B,):
        the bar each row's section copies now (0: none); new_bar (B,) bool: the token began a bar."""
        for b in range(len(tokens)):
            lo, hi, at = self.lo[b], self.hi[b], self.at[b]
            if source[b] <= 0:
                at = -1
            elif new_bar[b]:  # the source bar's entries, and its first
                lo, hi = self.lo[b], self.hi[b] = np.searchsorted(bars[b], [source[b], source[b] + 1])
                at = lo if hi > lo else -1
            elif at >= 0:
                at = lo + min(self._moved(int(tokens[b]), values[b, lo:hi], at - lo), hi - lo - 1)
            self.at[b], self.index[b, 0, 0], self.bonus[b, 0, 0] = at, max(at, 0), self.weight if at >= 0 else 0.0

    def _moved(self, token: int, bar: np.ndarray, at: int) -> int:
        """The place after `token` in the source bar's tokens `bar`, from place `at` (indices
        into `bar`)."""
        expected, when, kind = bar[at], self.time[token], self.kind[token]
        if token == expected or (when < 0 and kind == self.kind[expected]):  # the source's, or another note
            return at + 1
        if when >= 0:  # a time step: the first source token at or after it, past it if it is it
            later = np.flatnonzero(self.time[bar] >= when)
            return later[0] + (bar[later[0]] == token) if len(later) else len(bar)
        ahead = bar[at:]  # up to the source's next time step, the first token of this type
        steps = np.flatnonzero(self.time[ahead] >= 0)
        found = np.flatnonzero(self.kind[ahead[: steps[0] if len(steps) else len(ahead)]] == kind)
        return at + found[0] + 1 if len(found) else at  # else the source waits
