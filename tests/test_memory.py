"""The LSTM with a memory of the piece (etude.models.memory): its paths agree with each other,
it reads only the past, it starts each piece empty, and it grows from a trained plain LSTM."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from miditok import TokSequence
from safetensors.torch import load_file
from symusic import Score

from etude.config import ModelConfig
from etude.generation.generate import Ask, generate, sample_tokens
from etude.models.checkpoint import load_checkpoint
from etude.models.memory import BAR_BIAS_SCALE, MAX_BAR_LAG, MemoryLSTM, PieceMemory

BAR = 5  # the bar token of the small models here: random tokens 1..19 start a bar now and then


def _model(size: int = 64, seed: int = 0) -> MemoryLSTM:
    torch.manual_seed(seed)
    cfg = ModelConfig(name="lstm-memory", embed=8, genre_embed=4, hidden=16, layers=2, memory_size=size)
    m = MemoryLSTM(20, 3, cfg, pad_id=0, bar_id=BAR).eval()
    with torch.no_grad():  # a gate that varies with the state, a weight worth seeing, bars that matter
        m.memory.gate.weight.normal_()
        m.memory.gate.bias.fill_(0.0)
        m.memory.bar_bias.normal_()
    return m


def test_whole_chunked_stepped_and_fused_paths_agree():
    m = _model()
    x, g = torch.randint(1, 20, (2, 40)), torch.tensor([0, 2])
    with torch.no_grad():
        whole, _, _ = m(x, g)
        a, _, state = m(x[:, :17], g)
        b, _, _ = m(x[:, 17:], g, state=state)
        stepped, state = [], None
        for k in range(40):
            logp, state = m.step(x[:, k], g, state)
            stepped.append(logp)
        for int8, tolerance in ((False, 1e-5), (True, 0.15)):
            stepper = m.stepper(g, int8=int8)
            fused = [stepper.prime(x[:, :1]).clone()] + [stepper.step(x[:, k]).clone() for k in range(1, 40)]
            assert (torch.stack(fused, 1) - whole).abs().max() < tolerance, int8
    assert torch.allclose(torch.cat([a, b], 1), whole, atol=1e-5)
    assert torch.allclose(torch.stack(stepped, 1), whole, atol=1e-5)
    assert torch.allclose(whole.exp().sum(-1), torch.ones(2, 40), atol=1e-5)  # a distribution at every step


def test_it_reads_only_the_past_and_the_memory_matters():
    m = _model()
    x, g = torch.randint(1, 20, (1, 30)), torch.tensor([1])
    y = x.clone()
    y[0, 20:] = torch.randint(1, 20, (10,))
    with torch.no_grad():
        a, b = m(x, g)[0], m(y, g)[0]
        assert torch.equal(a[0, :20], b[0, :20])  # later tokens change nothing before them
        plain = torch.log_softmax(m.head(m.outputs(x, g)[0]), -1)
    assert not torch.allclose(a[0, 1:], plain[0, 1:], atol=1e-3)  # from the second step on it recalls
    assert torch.allclose(a[0, 0], plain[0, 0], atol=1e-5)  # the first step has nothing to recall


def test_recall_by_hand():
    """theta = ln 3, outputs e1 and e2 followed by tokens 5 and 7, then e1: weights 3/4 and 1/4;
    gate 1/2; uniform LSTM over 10 tokens: p(5) = 0.05 + 0.375, p(7) = 0.05 + 0.125, others 0.05."""
    memory = PieceMemory(hidden=2, theta=math.log(3), lam=0.5, size=8, pad_id=0).requires_grad_(False)
    keys, values = memory.key(torch.eye(2)[None]), torch.tensor([[5, 7]])
    same_bar = torch.zeros(1, 1, 2, dtype=torch.long)
    weights, lam = memory.read(
        torch.tensor([[[1.0, 0.0]]]), keys, values, same_bar, torch.ones(1, 1, 2, dtype=torch.bool)
    )
    assert torch.allclose(weights, torch.tensor([[[0.75, 0.25]]])) and float(lam) == pytest.approx(0.5)
    p = memory.mix(torch.zeros(1, 1, 10), weights, lam, values).exp()[0, 0]
    expected = torch.full((10,), 0.05)
    expected[5], expected[7] = 0.425, 0.175
    assert torch.allclose(p, expected)
    hidden = torch.tensor([[[True, False]]])  # a key it may not read, and a padded value: nothing left
    weights, lam = memory.read(torch.tensor([[[1.0, 0.0]]]), keys, torch.tensor([[5, 0]]), same_bar, hidden & False)
    assert float(weights.sum()) == 0 and float(lam) == 0


def test_the_bar_distance_bias_by_hand():
    """Equal scores, keys 4 bars and 1 bar back, biases ln 3 at lag 4 (kept divided by
    BAR_BIAS_SCALE) and 0 at lag 1: weights 3/4 and 1/4; lags past MAX_BAR_LAG share its last
    bias; `phrasing` multiplies the bias (x 2: 9/10 and 1/10)."""
    memory = PieceMemory(hidden=2, theta=1.0, lam=0.5, size=8, pad_id=0).requires_grad_(False)
    memory.bar_bias[4] = math.log(3) / BAR_BIAS_SCALE
    keys, values, h = torch.zeros(1, 2, 2), torch.tensor([[5, 7]]), torch.zeros(1, 1, 2)
    weights, _ = memory.read(h, keys, values, torch.tensor([[[4, 1]]]))
    assert torch.allclose(weights, torch.tensor([[[0.75, 0.25]]]))
    weights, _ = memory.read(h, keys, values, torch.tensor([[[4, 1]]]), phrasing=2.0)
    assert torch.allclose(weights, torch.tensor([[[0.9, 0.1]]]))
    memory.bar_bias[MAX_BAR_LAG + 1] = math.log(3) / BAR_BIAS_SCALE
    weights, _ = memory.read(h, keys, values, torch.tensor([[[MAX_BAR_LAG + 1, 1000]]]))
    assert torch.allclose(weights, torch.tensor([[[0.5, 0.5]]]))


def test_bars_are_counted_from_the_bar_tokens():
    """The whole-piece path and the stepper count the same bars (their predictions agree with a
    bias at 1 bar back), and that bias changes what is predicted."""
    m = _model()
    x, g = torch.tensor([[1, BAR, 7, 8, BAR, 7, 8, BAR, 7, 8, BAR, 7]]), torch.tensor([0])
    with torch.no_grad():
        m.memory.bar_bias.zero_()
        m.memory.bar_bias[1] = 5.0 / BAR_BIAS_SCALE  # one bar back: attention moves to the previous bar
        near = m(x, g)[0][0, -1]
        stepped = m.stepper(g).prime(x)[0]
        m.memory.bar_bias[1] = -5.0 / BAR_BIAS_SCALE
        far = m(x, g)[0][0, -1]
    assert torch.allclose(near, stepped, atol=1e-5)
    assert not torch.allclose(near, far, atol=1e-3)


def test_the_objective_is_the_mixtures_nll_and_trains_the_memory():
    m = _model().train()
    x, g = torch.randint(1, 20, (2, 25)), torch.tensor([0, 1])
    x[1, 20:] = 0  # padding is not scored
    loss_sum, count = m.objective(x[:, :-1], x[:, 1:], g)
    m.eval()
    with torch.no_grad():
        logp = m(x[:, :-1], g)[0]
        mask = x[:, 1:] != 0
        ref = -logp.gather(-1, x[:, 1:, None])[..., 0][mask].sum()
        m.train()
    assert int(count) == int(mask.sum())
    torch.manual_seed(0)
    loss_sum, _ = m.objective(x[:, :-1], x[:, 1:], g)
    loss_sum.backward()
    assert all(p.grad.abs().sum() > 0 for p in m.memory.parameters())
    m.eval()
    with torch.no_grad():
        assert m.objective(x[:, :-1], x[:, 1:], g)[0] == pytest.approx(float(ref), rel=1e-5)


def test_recall_moves_the_stepper_between_the_lstm_and_its_memory():
    """Sampling.recall is added to the gate's log-odds: far below, the plain LSTM's distribution;
    far above, only tokens the piece has already had after some step."""
    m = _model()
    x, g = torch.randint(1, 10, (1, 12)), torch.tensor([1])  # tokens 1..9: 10..19 never heard
    with torch.no_grad():
        plain = m.stepper(g, recall=-40.0).prime(x)
        lstm = torch.log_softmax(m.head(m.outputs(x, g)[0][:, -1]), -1)
        copying = m.stepper(g, recall=40.0).prime(x).exp()
        house = m.stepper(g).prime(x)
        moved = m.stepper(g, recall=1.5).prime(x)
    assert torch.allclose(plain, lstm, atol=1e-5)
    heard = torch.zeros(20, dtype=torch.bool)
    heard[x[0, 1:]] = True
    assert float(copying[0, ~heard].sum()) < 1e-6 and float(copying[0, heard].sum()) == pytest.approx(1, abs=1e-5)
    assert torch.allclose(house, m(x, g)[0][:, -1], atol=1e-5)  # 0 is the model as trained
    assert float((moved.exp()[0, heard]).sum()) > float((house.exp()[0, heard]).sum())


def test_the_stepper_starts_each_piece_empty_and_bounds_its_memory():
    m = _model(size=8)
    g = torch.tensor([0])
    with torch.no_grad():
        s = m.stepper(g)
        s.prime(torch.randint(1, 20, (1, 30)))  # past its size: the older half is let go
        assert s.n <= 8
        first = s.prime(torch.tensor([[3, 4]])).clone()
        fresh = m.stepper(g).prime(torch.tensor([[3, 4]]))
    assert torch.equal(first, fresh)


def test_a_plain_lstm_grows_a_memory(tiny_run, real_data, tmp_path):
    """`etude train --init PLAIN --model lstm-memory`: the LSTM's weights carried over, the memory new."""
    source = tiny_run / "checkpoints" / "best"
    run = tmp_path / "memory"
    done = subprocess.run(
        [sys.executable, "-m", "etude", "train", str(real_data), "--out", str(run), "--preset", "tiny"]
        + ["--init", str(source), "--model", "lstm-memory", "--train.iterations=2", "--train.lr=0"]
        + ["--train.eval_every=2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "config.json").read_text())["model"]["name"] == "lstm-memory"
    before, after = (
        load_file(source / "model.safetensors"),
        load_file(run / "checkpoints" / "last" / "model.safetensors"),
    )
    assert set(after) - set(before) == {
        "memory.query.weight",
        "memory.key.weight",
        "memory.gate.weight",
        "memory.gate.bias",
        "memory.bar_bias",
    }
    assert all(torch.equal(before[k], after[k]) for k in before)

    # it generates through the same path as the plain LSTM: grammatical pieces, playable MIDI
    ckpt = load_checkpoint(run / "checkpoints" / "last")
    enc = ckpt.encoding
    for s in sample_tokens(ckpt, Ask("bach", 2, "150t", seed=1)):
        events = [i for i in s if i < enc.base_size and i not in enc.special_ids]
        seq = TokSequence(ids=events)
        enc.tokenizer.complete_sequence(seq)
        assert s[0] == enc.genre_id("bach") and enc.tokenizer.tokens_errors(seq) == 0
    (result,) = generate(run, Ask("fiddle", 1, "8s", seed=2), tmp_path / "pieces")
    assert Score(str(result.midi)).note_num() > 0


def test_a_form_plan_names_the_section_each_section_repeats():
    """FormPlan by hand: AABA in sections of 4 bars, then the plan again, each section that comes
    back copied from its first statement, or from the earliest the memory still holds; its bridge
    new in every pass; a plan without a refrain repeated whole."""
    from etude.errors import ConfigError
    from etude.models.form_plan import FormPlan

    plan = FormPlan("AABA", 4)
    # bar 0 (before the first bar token) and bars 1-4: A, new; 5-8: A, the first 4 back; 9-12: B,
    # new; 13-16: A, 12 back; 17: the next pass's first A, 16 back; 25 and 41: its B, new again
    bars = torch.tensor([0, 1, 4, 5, 8, 9, 13, 17, 25, 29, 33, 41, 45, 49])
    assert plan.lag_at(bars).tolist() == [0, 0, 0, 4, 4, 0, 12, 16, 0, 28, 32, 0, 44, 48]
    assert FormPlan("ab", 8).lag_at(torch.tensor([1, 9, 17, 25])).tolist() == [0, 0, 16, 16]  # ABAB
    assert FormPlan("ABAC", 1).lag_at(torch.arange(1, 9)).tolist() == [0, 0, 2, 0, 4, 0, 6, 0]  # a rondo
    assert FormPlan("AABB", 1).lag_at(torch.arange(5, 9)).tolist() == [4, 5, 4, 5]  # no bridge: all again
    # bar 29 repeats bar 1 (28 back); a memory of only the last 12 bars holds it 16 bars later, at 12 back
    whole, recent = torch.arange(0, 30)[None, None], torch.arange(0, 13)[None, None]
    assert plan.copy_lag(torch.tensor([29]), whole).item() == 28
    assert plan.copy_lag(torch.tensor([29]), recent).item() == 12
    assert plan.copy_lag(torch.tensor([10]), whole).item() == 0  # B: new
    assert plan.copy_lag(torch.tensor([29]), torch.zeros(1, 1, 0, dtype=torch.long)).item() == 0  # empty memory
    for form, bars_each in (("", 4), ("A-B", 4), ("AÄ", 4), ("AB", 0)):
        with pytest.raises(ConfigError):
            FormPlan(form, bars_each)


def test_a_form_plan_copies_the_section_it_brings_back():
    """In a section that comes back the stepper's look-up goes to the keys exactly that many bars
    back and its gate opens; in a new section the gate only closes by FORM_NOVELTY."""
    from etude.models.form_plan import FormPlan
    from etude.models.memory import FORM_FOCUS, FORM_NOVELTY, FORM_RECALL

    m = _model()
    g = torch.tensor([0])
    # bar tokens at 0, 6, 12, 18: bars 1-4 of 6 tokens each (1..4 never start a bar here)
    x = torch.tensor([[BAR, 1, 2, 3, 4, 1, BAR, 2, 3, 4, 1, 2, BAR, 3, 4, 1, 2, 3, BAR, 4, 1, 2, 3]])
    with torch.no_grad():
        planned = m.stepper(g, form=FormPlan("AB", 2))  # every section new
        assert torch.allclose(m.stepper(g, recall=FORM_NOVELTY).prime(x), planned.prime(x), atol=1e-6)
        again = m.stepper(g, form=FormPlan("AA", 2))  # bars 3-4 repeat bars 1-2, two bars back
        seen = again.prime(x)
        n = again.n
        lag = (again.bar[:, None] - again.bars[:, :n])[:, None]
        q, keys, values = again.top[:, None], again.keys[:, :n], again.values[:, :n]
        focus = FORM_FOCUS * (lag == 2)
        weights, lam = m.memory.read(q, keys, values, lag, None, FORM_RECALL, 1.0, focus)
        by_hand = m.memory.mix(torch.log_softmax(m.head(q), -1), weights, lam, values)[:, 0]
        plain_weights, plain_lam = m.memory.read(q, keys, values, lag)
    assert torch.allclose(seen, by_hand, atol=1e-5)
    assert float(weights[lag == 2].sum()) > float(plain_weights[lag == 2].sum()) and float(lam) > float(plain_lam)


def test_a_shipped_memory_model_with_a_plan_brings_its_sections_back():
    """pretrained:piano-memory through generation: with --form AABA the bars that come back are
    there in the music, far more than without a plan, for the same seeds."""
    from etude.evaluation.form import Bars, bar_repetition
    from etude.generation.generate import Sampling, sample_scores
    from etude.models.pretrained import model_path

    ckpt = load_checkpoint(model_path("pretrained:piano-memory"))
    shares = {}
    for form in ("", "AABA"):
        ask = Ask("folk", 4, "24s", Sampling(form=form), seed=5)
        shares[form] = sum(bar_repetition(Bars.of(s)) for s in sample_scores(ckpt, ask)) / 4
    assert shares["AABA"] >= 0.25 and shares["AABA"] >= shares[""] + 0.15, shares  # measured 0.38 and 0.03


def test_only_a_model_that_remembers_the_piece_takes_the_memorys_settings(tiny_run):
    """Recall, phrasing and a form plan steer a memory of the piece: a plain LSTM refuses them
    (one line naming them), a memory model takes them, and evaluate's baselines beside a memory
    model are sampled without them."""
    from etude.errors import ConfigError
    from etude.evaluation.compare import generated_set
    from etude.generation.generate import Sampling

    plain = load_checkpoint(tiny_run)
    planned = Sampling(temperature=0.9, recall=1.5, form="AABA")
    assert planned.memory_settings() == ["--recall 1.5", "--form AABA"]
    assert Sampling().memory_settings() == [] and planned.without_memory() == Sampling(temperature=0.9)
    with pytest.raises(ConfigError, match="--recall 1.5 --form AABA: this model has no memory of the piece"):
        sample_tokens(plain, Ask(plain.encoding.genres[0], 1, "8t", planned))
    Sampling(temperature=0.9).check(plain.model)
    planned.check(_model())
    baseline = generated_set("plain", plain, list(plain.encoding.genres[:1]), 1, "8t", 0, planned)
    assert len(baseline.scores) == 1
