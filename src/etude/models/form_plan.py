"""FormPlan: a piece's plan of sections, and which earlier section each one brings back.

A plan is one letter a section of `section_bars` bars, e.g. "AABA": a letter heard before is that
section again, a new letter is new music. After its last letter the plan starts again. Its
returning letters (a refrain: A in "AABA") bring their first statement back in every pass; a letter
heard once in a plan that has a refrain (a bridge, an episode: B) is new music in each pass, so
"AABA" over 48 bars is AABA AAB'A AAB''A. (Played whole each pass, a 2-minute AABA piece was its
first 16 bars four times over: 0.81-0.89 of its bars repeated, against 0-0.5 in real music.) A
plan without a refrain repeats whole: "AB" over 32 bars is ABAB. A model with a memory of the piece
(etude.models.memory) follows it by copying, in a section that comes back, from the first section
with its letter, exactly that many bars back; a new section is written as the model would without
a plan. (Copying the latest statement instead let each copy's losses pile up: over 120 s the
music thinned out.)

Bars are counted by the encoding's bar tokens, from 1 at the first; before it, section 0. A piece
whose first bar is a lead-in (`LeadIn`: a pickup) counts them from the bar after it, so a section
that comes back starts where the tune does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from etude.data.encoding import token_type
from etude.errors import ConfigError


@dataclass(frozen=True)
class FormPlan:
    form: str  # one letter a section, e.g. "AABA"
    section_bars: int = 4  # bars a section

    def __post_init__(self) -> None:
        if not self.form or not (self.form.isascii() and self.form.isalpha()):
            raise ConfigError(f"--form takes letters, one a section (like AABA), not {self.form!r}", option="--form")
        if self.section_bars < 1:
            raise ConfigError(f"--section-bars must be at least 1, not {self.section_bars}", option="--section-bars")

    @cached_property
    def firsts(self) -> torch.Tensor:
        """For each letter of the plan, the first section with that letter: (len(form),) long."""
        form = self.form.upper()
        return torch.tensor([form.index(letter) for letter in form])

    @cached_property
    def fresh(self) -> torch.Tensor:
        """For each letter of the plan, whether it is new music in every pass: heard once, in a
        plan with a refrain. (len(form),) bool."""
        form = self.form.upper()
        refrain = any(form.count(letter) > 1 for letter in form)
        return torch.tensor([refrain and form.count(letter) == 1 for letter in form])

    def lag_at(self, bar: torch.Tensor) -> torch.Tensor:
        """bar (B,) bar counts -> (B,) bars back to copy from at that bar: to the first section
        with the same letter, so a theme heard many times is copied from its first statement, not
        from a copy of a copy (0: a new section)."""
        k = (bar - 1).clamp(min=0) // self.section_bars  # the section each row is in
        letter = k % len(self.form)
        new = (k >= len(self.form)) & self.fresh.to(bar.device)[letter]  # a bridge after the first pass
        return torch.where(new, 0, (k - self.firsts.to(bar.device)[letter]) * self.section_bars)

    def copy_lag(self, bar: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
        """bar (B,) bar counts and lags (B, 1, N), bars back to each key of a memory -> (B, 1, 1)
        bars back to copy from: the earliest statement the memory still holds of the section this
        bar's section repeats (its first, or the same place in a later cycle of the plan, once a
        long piece has pushed the first out); 0 in a new section or where none is held."""
        back = self.lag_at(bar)[:, None, None]  # (B, 1, 1)
        if lags.shape[-1] == 0:
            return torch.zeros_like(back)
        cycle = len(self.form) * self.section_bars
        held = (lags > 0) & (lags <= back) & ((back - lags) % cycle == 0)
        return torch.where(held, lags, 0).amax(-1, keepdim=True)


class LeadIn:
    """Whether a piece's first bar is a lead-in, to be left out of a form plan's sections: a pickup
    (its first note after the bar's downbeat, or a bar shorter than the next, as the beat grid
    writes a pickup: a bar of 1/4 before bars of 4/4) or a bar with no note at all. A plan then
    counts its sections from the bar after it: counted from the lead-in, each return of the first
    section began with the pickup bar's rests (30 s folk pieces with the plan AABA: 0.068 of beats
    silent against 0.028 without a plan) or put a bar of one or two beats into the metre."""

    def __init__(self, vocab: list[str]):
        types = [token_type(t) for t in vocab]
        self.note = np.array([k == "Pitch" for k in types])  # (V,)
        self.step = np.array([k == "Position" for k in types])  # (V,) a time step
        self.late = np.array([k == "Position" and t != "Position_0" for t, k in zip(vocab, types)])  # (V,)
        self.length = np.array([_bar_length(t) if k == "TimeSig" else 0.0 for t, k in zip(vocab, types)])  # (V,)

    def __call__(self, bar: np.ndarray, next_token: int) -> bool:
        """bar (T,): a first bar's tokens in order, and the token after the next bar token ->
        whether the first bar is a lead-in: no note in it; the last time step before its first
        note not the downbeat (Position_0); or its time signature shorter than the next bar's."""
        notes = np.flatnonzero(self.note[bar])
        if not len(notes):
            return True
        steps = np.flatnonzero(self.step[bar[: notes[0]]])
        if len(steps) and self.late[bar[steps[-1]]]:
            return True
        signed = bar[self.length[bar] > 0]
        return bool(len(signed)) and 0 < self.length[signed[0]] < self.length[next_token]


def _bar_length(token: str) -> float:
    """A time signature token's bar length in quarter notes: 3.0 for "TimeSig_6/8"."""
    numerator, denominator = token.split("_", 1)[1].split("/")
    return 4.0 * int(numerator) / int(denominator)
