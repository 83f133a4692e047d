"""The key hold (etude.generation.key_hold): the pull by hand, and what it does to sampling."""

import math

import numpy as np
import pytest
from symusic import Note, Score, Track

from etude.data.keys import key_of, profile_of
from etude.errors import ConfigError
from etude.generation.generate import Ask, Sampling, sample_tokens
from etude.generation.grammar import Cursor, Grammar
from etude.generation.key_hold import KeyHold
from etude.models.checkpoint import load_checkpoint
from etude.models.pretrained import pretrained_path

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


@pytest.fixture(scope="module")
def piano():
    return load_checkpoint(pretrained_path("piano"))


def test_the_pull_by_hand(piano):
    """Sixteen quarter notes up and down a C major scale, then a note on beat 17: nothing is
    pulled before beat 16 is passed; then C major holds, and with strength 2 a note's logit moves
    by 2 ln(rating / 6.35): 0 for C, 2 ln(2.23 / 6.35) for C#, 2 ln(5.19 / 6.35) for G (any
    octave), nothing for tokens that are not notes."""
    enc = piano.encoding
    score, track = Score(480), Track(program=0)
    track.notes.extend(Note(480 * k, 480, p, 80) for k, p in enumerate(C_MAJOR + C_MAJOR[::-1] + [60]))
    score.tracks.append(track)
    grammar = Grammar(enc)
    hold, c = KeyHold(grammar, 1, 2.0, 16.0), Cursor()
    pitch = {int(grammar.value_of[i]): i for i in np.flatnonzero(grammar.of_types("Pitch"))}
    for tok in enc.events(score):
        before = c.quarters
        grammar.advance(c, tok)
        hold.advance(0, c, tok)
        if c.quarters < 16.0:
            assert not hold.fixed[0] and not hold.bias.any(), before
    assert hold.keys == [0]
    bias = hold.bias[0]
    assert bias[pitch[60]] == bias[pitch[72]] == 0.0
    assert bias[pitch[61]] == pytest.approx(2 * math.log(2.23 / 6.35))
    assert bias[pitch[43]] == pytest.approx(2 * math.log(5.19 / 6.35))
    assert not bias[~grammar.of_types("Pitch")].any()
    z = np.zeros((1, grammar.size), dtype=np.float32)
    assert np.array_equal(hold.apply(z), bias[None])


def _outside(seq, enc, grammar, after: float) -> tuple[int, float]:
    """Where a sequence's cursor passes `after` quarters (token index), and the share of its
    notes from there on outside the scale of the key its notes before set."""
    c, before, later, cut = Cursor(), [], [], None
    for k, tok in enumerate(seq[1:], start=1):
        grammar.advance(c, tok)
        if grammar.type_of[tok] == "Pitch":
            (before if cut is None else later).append(int(grammar.value_of[tok]) % 12)
        if cut is None and c.quarters >= after:
            cut = k
    scale = set(np.argsort(-profile_of(key_of(np.bincount(before, minlength=12))))[:7].tolist())
    return cut, float(np.mean([pc not in scale for pc in later]))


def test_a_held_key_keeps_the_notes_in_the_opening_s_scale(piano):
    """Jazz (the shipped model's most chromatic genre), 3 pieces of 40 s from one seed, without and
    with a strong pull after the first section (4 bars of 4 beats): token for token the same
    until the section ends, then fewer notes outside the opening's scale in every piece."""
    grammar = Grammar(piano.encoding)
    free = sample_tokens(piano, Ask("jazz", 3, "40s", Sampling(), 5))
    held = sample_tokens(piano, Ask("jazz", 3, "40s", Sampling(key_hold=4.0), 5))
    for a, b in zip(free, held):
        cut, outside_free = _outside(a, piano.encoding, grammar, 16.0)
        assert a[: cut + 1] == b[: cut + 1]
        _, outside_held = _outside(b, piano.encoding, grammar, 16.0)
        assert outside_held < 0.5 * outside_free, (outside_held, outside_free)


def test_the_key_hold_is_checked():
    with pytest.raises(ConfigError, match="--key-hold must be 0"):
        Sampling(key_hold=-1.0).check()
    with pytest.raises(ConfigError, match="--key-hold must be a finite"):
        Sampling(key_hold=float("nan")).check()

    class Roll:
        unit, remembers_piece = "frame", False

    with pytest.raises(ConfigError, match="piano-roll"):
        Sampling(key_hold=1.0).check(Roll())
    Sampling(key_hold=1.0).check(load_checkpoint(pretrained_path("piano")).model)
