import numpy as np
import pytest
import torch
from miditok import TokSequence
from symusic import Score

from etude.errors import ConfigError, InputError
from etude.generation.generate import Ask, Length, PieceFiles, Sampling, filter_logits, generate, sample_tokens
from etude.models.checkpoint import load_checkpoint
from etude.models.pretrained import pretrained_path


def test_length_parsing():
    assert Length.parse("60s") == Length(60.0, "s")
    assert Length.parse("512t") == Length(512.0, "t")
    assert Length.parse("12") == Length(12.0, "s")
    with pytest.raises(ConfigError):
        Length.parse("long")


def test_sampling_of_an_object_takes_its_fields_by_name():
    """The command line's parsed arguments and the studio's request become Sampling this way: the
    fields they carry, the house values for the rest, anything else ignored."""
    from types import SimpleNamespace

    got = Sampling.of(SimpleNamespace(top_p=0.5, key_hold=1.5, form="AABA", seed=3, genre="folk"))
    assert got == Sampling(top_p=0.5, key_hold=1.5, form="AABA")
    assert Sampling.of(object()) == Sampling()


@pytest.mark.parametrize(
    "bad,option",
    [
        ({"temperature": 0.0}, "--temperature"),
        ({"top_k": -1}, "--top-k"),
        ({"top_p": float("nan")}, "--top-p"),
        ({"recall": float("inf")}, "--recall"),
        ({"phrasing": float("nan")}, "--phrasing"),
        ({"key_hold": -1.0}, "--key-hold"),
        ({"form": "A-B"}, "--form"),
        ({"form": "AB", "section_bars": 0}, "--section-bars"),
        ({"section_bars": 8, "recall": 1.0}, "--recall"),  # the first setting a plain model cannot use
    ],
)
def test_a_refused_sampling_setting_is_named_by_its_option(bad, option):
    """The studio names the request field at fault from `option` (key_hold for --key-hold)."""
    plain = load_checkpoint(pretrained_path("piano")).model
    with pytest.raises(ConfigError) as caught:
        Sampling(**bad).check(plain)
    assert caught.value.option == option and str(caught.value).startswith(option)


def test_top_k_and_top_p():
    import torch

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    k2 = filter_logits(logits, Sampling(top_k=2))
    assert torch.isinf(k2[0, 2:]).all() and not torch.isinf(k2[0, :2]).any()
    p = filter_logits(logits, Sampling(top_p=0.75))  # 0.5 + 0.3 reach 0.75
    assert torch.isinf(p[0, 2:]).all() and not torch.isinf(p[0, :2]).any()
    t = filter_logits(logits, Sampling(temperature=2.0))
    assert torch.allclose(torch.softmax(t, -1), torch.softmax(logits / 2, -1))
    greedy = torch.softmax(filter_logits(logits, Sampling(temperature=1e-30)), -1)  # no inf - inf = nan
    assert greedy.tolist() == [[1.0, 0.0, 0.0, 0.0]]
    spared = filter_logits(logits, Sampling(top_k=1, temperature=2.0), torch.tensor([False, False, True, False]))
    assert torch.isinf(spared[0, [1, 3]]).all() and torch.allclose(spared[0, [0, 2]], t[0, [0, 2]])


def test_durations_are_spared_by_top_k_unless_cut(tiny_run):
    """Greedy top-k on every kind repeats one sequence in every row; sparing durations (the
    default) lets the rows part, first at a Duration token."""
    ckpt = load_checkpoint(tiny_run)
    vocab = ckpt.encoding.vocab
    greedy = sample_tokens(ckpt, Ask("bach", 6, "120t", Sampling(top_k=1, spare=())))
    assert len({tuple(s) for s in greedy}) == 1
    spared = sample_tokens(ckpt, Ask("bach", 6, "120t", Sampling(top_k=1)))
    assert len({tuple(s) for s in spared}) > 1
    for s in spared[1:]:
        first = next(k for k, (a, b) in enumerate(zip(spared[0], s)) if a != b)
        assert vocab[s[first]].startswith("Duration_") and vocab[spared[0][first]].startswith("Duration_")


@pytest.mark.parametrize("genre", ["bach", "fiddle"])
def test_every_genre_gives_valid_midi_of_the_asked_length(tiny_run, tmp_path, genre):
    results = generate(tiny_run, Ask(genre, 3, "12s", seed=1), tmp_path)
    assert len(results) == 3
    for r in results:
        score = Score(str(r.midi))
        assert score.note_num() > 0
        assert 12 * 0.75 <= r.seconds <= 12 + 8  # last onset reaches the length; notes may ring on
        assert r.wav.stat().st_size > 44 and r.png.stat().st_size > 1000


def test_sequences_are_grammatical_and_batched(tiny_run):
    ckpt = load_checkpoint(tiny_run)
    seqs = sample_tokens(ckpt, Ask("bach", 4, "200t", Sampling(temperature=1.5), seed=3))
    assert len(seqs) == 4 and len({tuple(s) for s in seqs}) == 4
    enc = ckpt.encoding
    for s in seqs:
        assert s[0] == enc.genre_id("bach") and s[-1] == enc.eos_id
        assert len(s) <= 1 + 200 + 4 + 1  # genre, new tokens, closing, EOS
        events = [i for i in s if i < enc.base_size and i not in enc.special_ids]
        seq = TokSequence(ids=events)
        enc.tokenizer.complete_sequence(seq)
        assert enc.tokenizer.tokens_errors(seq) == 0
    again = sample_tokens(ckpt, Ask("bach", 4, "200t", Sampling(temperature=1.5), seed=3))
    assert again == seqs  # --seed repeats


def test_primer_is_continued(tiny_run, tmp_path, real_data):
    from etude.data.store import open_encoding, open_split

    enc = open_encoding(real_data)
    rows, index = open_split(real_data, "test")
    start, length, _ = index[0]
    primer = enc.decode(rows[start : start + length, 0])
    primer.dump_midi(str(tmp_path / "primer.mid"))
    ask = Ask("bach", 1, "6s", primer=f"{tmp_path / 'primer.mid'}:4")
    out = generate(tiny_run, ask, tmp_path / "g", PieceFiles(audio=False))
    got = Score(str(out[0].midi)).to("second").tracks[0].notes
    want = [n for n in primer.to("second").tracks[0].notes if n.time < 4 - 1e-6]
    assert [(round(n.time, 2), n.pitch) for n in got[: len(want)]] == [(round(n.time, 2), n.pitch) for n in want]
    assert out[0].seconds >= 4 + 6 * 0.75


def test_errors(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="knows: bach, fiddle"):
        generate(tiny_run, Ask("jazz"), tmp_path)
    generate(tiny_run, Ask("bach", length="32t"), tmp_path, PieceFiles(audio=False))
    before = (tmp_path / "bach-00.mid").read_bytes()
    with pytest.raises(InputError, match="--force"):
        generate(tiny_run, Ask("bach", length="32t", seed=5), tmp_path, PieceFiles(audio=False))
    assert (tmp_path / "bach-00.mid").read_bytes() == before
    generate(tiny_run, Ask("bach", length="32t", seed=5), tmp_path, PieceFiles(audio=False, force=True))
    with pytest.raises(InputError, match="primer not found"):
        generate(tiny_run, Ask("bach", primer="nope.mid:3"), tmp_path / "x")


PIANO_GENRES = ["classical", "folk", "jazz", "pop", "ragtime", "videogame"]


@pytest.mark.parametrize("name", ["piano", "piano-memory", "builtin"])
def test_each_shipped_model_generates_every_genre(name, tmp_path):
    """The default (`pretrained`, the piano model), `pretrained:piano-memory` and
    `pretrained:builtin`: every genre gives a piece with notes that lasts about the asked length;
    each model folder stays small."""
    from etude.data.builtin import STYLES
    from etude.models.pretrained import model_path

    assert model_path(None) == model_path("pretrained") == pretrained_path("piano")
    ckpt = load_checkpoint(model_path(f"pretrained:{name}"))
    assert ckpt.encoding.genres == (PIANO_GENRES if name.startswith("piano") else sorted(s.name for s in STYLES))
    assert sum(f.stat().st_size for f in pretrained_path(name).iterdir()) <= 30 * 2**20
    results = generate(f"pretrained:{name}", Ask("all", length="8s"), tmp_path, PieceFiles(audio=False, image=False))
    assert [r.midi.name for r in results] == [f"{g}-00.mid" for g in ckpt.encoding.genres]
    for r in results:
        assert Score(str(r.midi)).note_num() > 0 and r.seconds >= 6


def test_an_unknown_shipped_model_lists_the_shipped_ones():
    from etude.models.pretrained import model_path

    with pytest.raises(ConfigError, match="pretrained:piano, pretrained:piano-memory, pretrained:builtin"):
        model_path("pretrained:nope")


def test_genre_names_from_a_downloaded_checkpoint_never_leave_out(tmp_path):
    """A checkpoint whose tokenizer.json names a genre `../../../../tmp/x` or `a/b`: the files are
    written inside --out, under a safe name."""
    import json
    import shutil

    from etude.generation.generate import generate
    from etude.models.pretrained import pretrained_path

    ckpt = tmp_path / "ckpt"
    shutil.copytree(pretrained_path(), ckpt)
    tok = json.loads((ckpt / "tokenizer.json").read_text())
    escape = f"../../../..{tmp_path}/escaped"
    tok["genres"][:2] = [escape, "a/b"]
    (ckpt / "tokenizer.json").write_text(json.dumps(tok))
    out = tmp_path / "deep" / "out"
    written = [r for g in (escape, "a/b") for r in generate(ckpt, Ask(g, length="2s"), out, PieceFiles(audio=False))]
    for r in written:
        for f in (r.midi, r.png):
            assert f.resolve().parent == out.resolve() and f.exists()
    assert not list(tmp_path.glob("escaped*"))
    assert len(list(out.glob("*.mid"))) == 2 and (out / "a_b-00.mid").exists()


def test_the_token_cap_is_sized_from_the_training_music(tiny_run, real_data):
    import json

    import numpy as np

    from etude.data.store import read_pieces
    from etude.generation.generate import CAP_FACTOR, Length

    state = json.loads((tiny_run / "checkpoints" / "last" / "state.json").read_text())
    density = [
        int(r["rows"]) / float(r["seconds"]) for r in read_pieces(real_data / "pieces.csv") if r["split"] == "train"
    ]
    assert state["tokens_per_second"] == pytest.approx(np.quantile(density, 0.99))
    assert Length.parse("30s").max_tokens(50.0) == 30 * CAP_FACTOR * 50 + 256
    assert Length.parse("512t").max_tokens(50.0) == 512


def _reference_tokens(ckpt, genre: str, n: int, tokens: int, sampling: Sampling, seed: int) -> list[list[int]]:
    """Sampling as étude did before the fused path: the plain model step, the grammar's full
    mask, filter_logits on whole rows, torch.multinomial."""
    from etude.generation.grammar import Cursor, Grammar

    enc, model = ckpt.encoding, ckpt.model.eval()
    grammar = Grammar(enc)
    spare = torch.from_numpy(grammar.of_types(*sampling.spare))
    gen = torch.Generator().manual_seed(seed)
    cursors, seqs = [Cursor() for _ in range(n)], [[enc.genre_id(genre)] for _ in range(n)]
    g = torch.full((n,), enc.genres.index(genre))
    with torch.no_grad():
        logits, _, state = model(torch.tensor(seqs), g)
        logits = logits[:, -1]
        for _ in range(tokens):
            allowed = torch.from_numpy(np.stack([grammar.allowed(c, may_end=True) for c in cursors]))
            scores = filter_logits(logits.masked_fill(~allowed, float("-inf")), sampling, spare)
            drawn = torch.multinomial(torch.softmax(scores, -1), 1, generator=gen)[:, 0].tolist()
            for c, s, tok in zip(cursors, seqs, drawn):
                grammar.advance(c, tok)
                s.append(tok)
            logits, state = model.step(torch.tensor(drawn), g, state)
    return seqs


@pytest.mark.parametrize("sampling", [Sampling(), Sampling(temperature=0.8, top_k=20), Sampling(top_p=1.0)])
def test_the_fast_path_draws_what_the_plain_sampler_drew(sampling):
    """At fp32 a seed gives the tokens the plain sampler gave (before the fused step, the kept
    masks and the draw on allowed tokens only): 3 genres x 2 rows x 150 tokens of the piano model."""
    from etude.models.pretrained import pretrained_path

    ckpt = load_checkpoint(pretrained_path("piano"))
    for seed, genre in enumerate(("classical", "jazz", "ragtime")):
        want = _reference_tokens(ckpt, genre, 2, 150, sampling, seed)
        got = sample_tokens(ckpt, Ask(genre, 2, "150t", sampling, seed))
        assert [s[: len(w)] for s, w in zip(got, want)] == want, genre
