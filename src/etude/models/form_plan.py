"""FormPlan: a piece's plan of sections, and which earlier section each one brings back.

A plan is one letter a section of `section_bars` bars, e.g. "AABA": a letter heard before is that
section again (the second A repeats the first, the last A the second), a new letter is new
music. After its last letter the plan starts again, so "AABA" over 32 bars is AABA AABA, and the
second cycle's sections bring back the first cycle's. A model with a memory of the piece
(etude.models.memory) follows it by copying, in a section that comes back, from exactly that many
bars back; a new section is written as the model would without a plan.

Bars are counted by the encoding's bar tokens, from 1 at the first; before it, section 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from etude.errors import ConfigError


@dataclass(frozen=True)
class FormPlan:
    form: str  # one letter a section, e.g. "AABA"
    section_bars: int = 4  # bars a section

    def __post_init__(self) -> None:
        if not self.form or not (self.form.isascii() and self.form.isalpha()):
            raise ConfigError(f"--form takes letters, one a section (like AABA), not {self.form!r}")
        if self.section_bars < 1:
            raise ConfigError(f"--section-bars must be at least 1, not {self.section_bars}")

    @cached_property
    def lags(self) -> torch.Tensor:
        """Bars back to the section each section repeats (0: a new section), for the plan's
        first two cycles; every later cycle repeats the second's: (2 x len(form),) long."""
        n, form = len(self.form), self.form.upper()
        out = []
        for k in range(2 * n):
            earlier = [j for j in range(k) if form[j % n] == form[k % n]]
            out.append((k - earlier[-1]) * self.section_bars if earlier else 0)
        return torch.tensor(out)

    def lag_at(self, bar: torch.Tensor) -> torch.Tensor:
        """bar (B,) bar counts -> (B,) bars back to copy from at that bar (0: a new section)."""
        n = len(self.form)
        k = (bar - 1).clamp(min=0) // self.section_bars  # the section each row is in
        return self.lags.to(bar.device)[torch.where(k < n, k, n + k % n)]
