"""The form plan's copy pointer (etude.models.section_copy) by hand: where it points after each
kind of token, and that a memory model's stepper proposes the token it points at; and the plan's
lead-in bar (etude.models.form_plan.LeadIn), a pickup its sections are counted after."""

from __future__ import annotations

import numpy as np
import torch

from etude.config import ModelConfig
from etude.models.form_plan import FormPlan, LeadIn
from etude.models.memory import MemoryLSTM
from etude.models.section_copy import SectionCopy

VOCAB = ["PAD_None", "Position_0", "Position_4", "Pitch_60", "Pitch_62", "Bar_None", "Velocity_75"]
VOCAB += ["Duration_1.0.8", "Tempo_120.0", "Pitch_64", "Position_8", "TimeSig_4/4", "TimeSig_1/4"]
ID = {name: i for i, name in enumerate(VOCAB)}
P0, P4, P8 = ID["Position_0"], ID["Position_4"], ID["Position_8"]
C, D, E = ID["Pitch_60"], ID["Pitch_62"], ID["Pitch_64"]
BAR, VEL, DUR, TEMPO = ID["Bar_None"], ID["Velocity_75"], ID["Duration_1.0.8"], ID["Tempo_120.0"]
FOUR, ONE = ID["TimeSig_4/4"], ID["TimeSig_1/4"]


def _after(token: int, source_tokens: list[int], at: int) -> int:
    """Where a pointer at entry `at` of a source bar goes after `token`: the memory holds that bar
    alone (bar 1), entry j's token the one after output j (the bar's tokens from the one after
    its bar token to the next bar token)."""
    p = SectionCopy(VOCAB, 1, 12.0)
    values = np.array([source_tokens])
    p.lo[0], p.hi[0], p.at[0] = 0, len(source_tokens), at
    p.follow(np.array([token]), values, np.ones_like(values), np.array([1]), np.array([False]))
    return int(p.at[0])


# the source bar: a C at beat 0, a D at position 4, then the next bar
SOURCE = [P0, C, VEL, DUR, P4, D, VEL, DUR, BAR]


def test_a_bar_starts_at_its_source_bars_first_entry_and_the_sources_own_token_moves_on():
    p = SectionCopy(VOCAB, 2, 12.0)
    values = np.array([[P0, E, BAR] + SOURCE] * 2)  # bar 1, then bar 2 (the source)
    bars = np.array([[1, 1, 1] + [2] * len(SOURCE)] * 2)
    p.follow(np.array([BAR, BAR]), values, bars, np.array([2, 0]), np.array([True, True]))
    assert p.at.tolist() == [3, -1]  # the first entry after the source's bar token; row 2 copies nothing
    assert p.focus_index.flatten().tolist() == [3, 0] and p.focus_bonus.flatten().tolist() == [12.0, 0.0]
    assert (p.lo[0], p.hi[0]) == (3, 3 + len(SOURCE))
    assert _after(P0, SOURCE, at=0) == 1  # expects C
    assert _after(C, SOURCE, at=1) == 2  # expects its velocity


def test_another_note_keeps_the_rhythm():
    assert _after(E, SOURCE, at=1) == 2  # an E for the C: on to the velocity
    assert _after(E, SOURCE, at=5) == 6


def test_a_position_realigns_by_time():
    assert _after(P4, SOURCE, at=1) == 5  # the C left out: on from the source's D at position 4
    assert _after(P8, SOURCE, at=4) == 8  # no onset at 8 in the source: wait for its bar's end
    assert _after(P4, SOURCE, at=4) == 5


def test_a_token_of_another_type_skips_what_the_copy_left_out_or_waits():
    with_tempo = [P0, TEMPO, C, VEL, DUR, BAR]
    assert _after(D, with_tempo, at=1) == 3  # the tempo left out: past the source's C
    assert _after(E, SOURCE, at=4) == 4  # a note added where the source moves on: wait


def test_no_source_or_no_place_means_no_pointer_and_shifts_follow_the_memory():
    p = SectionCopy(VOCAB, 1, 12.0)
    p.at[0] = 3
    values = np.array([SOURCE])
    p.follow(np.array([DUR]), values, np.ones_like(values), np.array([0]), np.array([False]))
    assert int(p.at[0]) == -1  # not copying
    assert _after(C, SOURCE, at=-1) == -1  # mid-bar with no place: none until the next bar
    p.at[0], p.lo[0], p.hi[0] = 5, 2, 9
    p.shift(4)
    assert (int(p.at[0]), int(p.lo[0]), int(p.hi[0])) == (1, 0, 5)
    p.shift(4)
    assert int(p.at[0]) == -1
    assert SectionCopy.possible(VOCAB) and not SectionCopy.possible(["PAD_None", "TimeShift_1.0.8", "Pitch_60"])


def test_a_memory_models_stepper_proposes_the_token_the_pointer_points_at():
    """A small random model with a plan of one-bar sections "AA": in bar 2 each step puts most of
    its probability on the source bar's token in step with it, a changed note included."""
    torch.manual_seed(0)
    cfg = ModelConfig(name="lstm-memory", embed=8, genre_embed=4, hidden=16, layers=2, memory_size=64)
    m = MemoryLSTM(len(VOCAB), 2, cfg, pad_id=0, bar_id=BAR, vocab=VOCAB).eval()
    bar1 = [BAR, *SOURCE[:-1]]
    bar2 = [BAR, P0, C, VEL, DUR, P4, E, VEL, DUR]  # an E where the source had a D
    # after each token of bar 2 (its last aside), what the source bar has next
    expected = [P0, C, VEL, DUR, P4, D, VEL, DUR, BAR]
    with torch.no_grad():
        stepper = m.stepper(torch.tensor([1]), form=FormPlan("AA", 1))
        assert stepper.pointer is not None
        stepper.prime(torch.tensor([bar1]))
        for token, want in zip(bar2, expected):
            p = stepper.step(torch.tensor([token]))[0].exp()
            assert float(p[want]) > 0.5, (token, want, p)
        assert int(stepper.pointer.at[0]) == stepper.pointer.hi[0] - 1  # at the source's bar token
    plain = MemoryLSTM(len(VOCAB), 2, cfg, pad_id=0, bar_id=BAR)  # no vocabulary: no pointer
    assert plain.stepper(torch.tensor([1]), form=FormPlan("AA", 1)).pointer is None


def test_the_pointer_stays_inside_the_memory_as_it_fills_and_halves():
    """A long piece through a memory of 32 entries (halved 15 times): the pointer always names an
    entry of the source bar that the memory still holds, or none."""
    torch.manual_seed(1)
    cfg = ModelConfig(name="lstm-memory", embed=8, genre_embed=4, hidden=16, layers=2, memory_size=32)
    m = MemoryLSTM(len(VOCAB), 2, cfg, pad_id=0, bar_id=BAR, vocab=VOCAB).eval()
    bars = [[BAR, P0, C, VEL, DUR, P4, D, VEL, DUR], [BAR, P0, E, VEL, DUR, P8, C, VEL, DUR, TEMPO]]
    tokens = [t for k in range(30) for t in bars[k % 3 == 2]]
    with torch.no_grad():
        stepper = m.stepper(torch.tensor([0]), form=FormPlan("AB", 1))
        stepper.prime(torch.tensor([tokens[:1]]))
        pointed = 0
        for t in tokens[1:]:
            stepper.step(torch.tensor([t]))
            at, lo, hi = int(stepper.pointer.at[0]), int(stepper.pointer.lo[0]), int(stepper.pointer.hi[0])
            assert at == -1 or lo <= at < hi <= stepper.n, (at, lo, hi, stepper.n)
            pointed += at >= 0
    assert pointed > len(tokens) // 4  # it does point, in the B bars


def test_a_first_bar_is_a_lead_in_when_its_first_note_is_late_or_it_is_shorter():
    lead_in = LeadIn(VOCAB)
    assert not lead_in(np.array(SOURCE), P0)  # a C on the downbeat
    assert lead_in(np.array([P0, TEMPO, P4, C, VEL, DUR, BAR]), P0)  # a tempo on the downbeat, the note later
    assert lead_in(np.array([P8, E, VEL, DUR, BAR]), P0)
    assert lead_in(np.array([P0, TEMPO, BAR]), P0)  # no note at all
    assert not lead_in(np.array([P0, TEMPO, C, VEL, DUR, P4, D, VEL, DUR]), P0)
    assert lead_in(np.array([ONE, P0, C, VEL, DUR, BAR]), FOUR)  # a bar of 1/4 before bars of 4/4
    assert not lead_in(np.array([FOUR, P0, C, VEL, DUR, BAR]), FOUR)
    assert not lead_in(np.array([ONE, P0, C, VEL, DUR, BAR]), ONE)  # 1/4 throughout


def test_a_plan_counts_its_sections_after_a_lead_in():
    """Plan "AA" of one-bar sections. Bar 1 a pickup: bar 2 is the first A, so bar 3 copies bar 2
    (1 bar back), not bar 1; bar 1 on the downbeat: bar 3 copies bar 1 (the plan's second pass)."""
    torch.manual_seed(2)
    cfg = ModelConfig(name="lstm-memory", embed=8, genre_embed=4, hidden=16, layers=2, memory_size=64)
    m = MemoryLSTM(len(VOCAB), 2, cfg, pad_id=0, bar_id=BAR, vocab=VOCAB).eval()
    theme = [BAR, FOUR, P0, C, VEL, DUR, P4, D, VEL, DUR]
    late, short, full = [BAR, FOUR, P0, TEMPO, P8, E, VEL, DUR], [BAR, ONE, P0, E, VEL, DUR], [BAR, FOUR, *SOURCE[:-1]]
    for bar1, lead, back in ((late, 1, 1), (short, 1, 1), (full, 0, 2)):
        with torch.no_grad():
            stepper = m.stepper(torch.tensor([1, 1]), form=FormPlan("AA", 1))
            stepper.prime(torch.tensor([bar1 + theme + [BAR, FOUR]] * 2))
        assert stepper.lead.tolist() == [lead, lead]
        assert stepper.back.flatten().tolist() == [back, back]
        assert stepper.source.tolist() == [3 - back, 3 - back]
