import numpy as np
import pytest
from miditok import TokSequence

from etude.config import DataConfig, EncodingConfig
from etude.data.encoding import make_encoding
from etude.data.midi import load_pieces
from etude.generation.grammar import Cursor, Grammar


@pytest.mark.parametrize("name", ["remi", "tsd", "midilike"])
def test_random_walks_under_the_grammar_decode_without_errors(name):
    enc = make_encoding(EncodingConfig(name=name), ["a", "b"])
    grammar = Grammar(enc)
    rng = np.random.default_rng(0)
    for walk in range(5):
        c = Cursor()
        ids = [enc.genre_id("b")]
        for _ in range(300):
            allowed = np.flatnonzero(grammar.allowed(c, may_end=False))
            assert enc.eos_id not in allowed and enc.genre_id("a") not in allowed
            tok = int(rng.choice(allowed))
            grammar.advance(c, tok)
            ids.append(tok)
        ids += grammar.closing(c) + [enc.eos_id]
        events = [i for i in ids if i < enc.base_size and i not in enc.special_ids]
        seq = TokSequence(ids=events)
        enc.tokenizer.complete_sequence(seq)
        assert enc.tokenizer.tokens_errors(seq) == 0
        assert enc.decode(np.array(ids)).note_num() > 0
        assert c.seconds > 0


@pytest.mark.parametrize("name", ["remi", "tsd", "midilike"])
@pytest.mark.parametrize("time_signatures", [False, True])
def test_kept_masks_are_the_masks_worked_out_afresh(name, time_signatures):
    """allowed_ids looks masks up by grammar state: along random walks (and with EOS allowed or
    not) it must give exactly what allowed() works out, so the state key misses nothing."""
    enc = make_encoding(EncodingConfig(name=name, time_signatures=time_signatures, tempos=True), ["a"])
    grammar = Grammar(enc)
    rng = np.random.default_rng(1)
    for walk in range(6):
        c = Cursor()
        for step in range(400):
            may_end = bool(step % 3 == 0)
            fresh = np.flatnonzero(grammar.allowed(c, may_end))
            assert np.array_equal(grammar.allowed_ids(c, may_end), fresh), (step, c)
            tok = int(rng.choice(fresh[fresh != enc.eos_id]))
            grammar.advance(c, tok)
    assert len(grammar._ids) > 10  # states were kept and looked up again


@pytest.mark.parametrize("name", ["remi", "tsd", "midilike"])
def test_clock_follows_a_real_piece(good_corpus, name):
    enc = make_encoding(EncodingConfig(name=name, tempos=True), ["g"])
    piece = load_pieces(good_corpus / "march" / "march1.mid", "m", "g", DataConfig(min_seconds=1))[0]
    grammar = Grammar(enc)
    c = Cursor()
    ids = enc.encode(piece.score, "g")
    for tok in ids[1:-1]:
        assert grammar.allowed(c, may_end=True)[tok], enc.vocab[tok]  # real data obeys the grammar
        grammar.advance(c, int(tok))
    decoded = enc.decode(ids).to("second")
    last_onset = max(n.time for n in decoded.tracks[0].notes)
    last_time = last_onset if name != "midilike" else max(n.end for n in decoded.tracks[0].notes)
    assert abs(c.seconds - last_time) < 0.05


@pytest.mark.parametrize(
    "name, tempos, time_signatures, opening",
    [
        ("remi", True, True, ["Bar_None", "TimeSig", "Position_0", "Tempo"]),
        ("remi", False, False, ["Bar_None", "Position_0"]),
        ("tsd", True, True, ["TimeSig", "Tempo"]),
        ("midilike", True, False, ["Tempo"]),
    ],
)
def test_every_walk_opens_as_the_tokenizer_opens_a_piece(name, tempos, time_signatures, opening):
    # MidiTok writes these before any piece's first note; a generated piece that skipped the opening
    # Tempo would play at the decoder's default 120 quarter notes per minute, whatever its genre.
    enc = make_encoding(EncodingConfig(name=name, tempos=tempos, time_signatures=time_signatures), ["a"])
    grammar = Grammar(enc)
    rng = np.random.default_rng(1)
    for walk in range(20):
        c = Cursor()
        tokens = []
        for _ in opening:
            tok = int(rng.choice(np.flatnonzero(grammar.allowed(c, may_end=False))))
            grammar.advance(c, tok)
            tokens.append(enc.vocab[tok])
        assert [t if "_" in o else t.split("_")[0] for t, o in zip(tokens, opening)] == opening
        assert (grammar.allowed(c, may_end=False) & grammar.note_starts).any()  # then the music
