import torch

from etude.config import ModelConfig
from etude.models.lstm import LSTMGenerator


def test_shapes_and_loss_ignores_padding():
    torch.manual_seed(0)
    m = LSTMGenerator(50, 3, ModelConfig(embed=8, genre_embed=4, hidden=16, layers=3, keep_prob=0.7), pad_id=0)
    x = torch.randint(1, 50, (2, 7))
    y = torch.randint(1, 50, (2, 7))
    logits, loss, (h, c) = m(x, torch.tensor([0, 2]), y)
    assert logits.shape == (2, 7, 50) and h.shape == (3, 2, 16) and c.shape == (3, 2, 16)
    m.eval()
    logits, loss, _ = m(x, torch.tensor([0, 2]), y)
    y_pad = y.clone()
    y_pad[:, 4:] = 0
    _, loss_pad, _ = m(x, torch.tensor([0, 2]), y_pad)
    expected = torch.nn.functional.cross_entropy(logits[:, :4].reshape(-1, 50), y[:, :4].reshape(-1))
    assert torch.allclose(loss_pad, expected, atol=1e-6)


def test_keep_prob_is_the_probability_of_keeping():
    m = LSTMGenerator(10, 1, ModelConfig(embed=4, genre_embed=0, hidden=8, layers=4, keep_prob=0.7))
    assert abs(m.lstm.dropout - 0.3) < 1e-9 and abs(m.drop.p - 0.3) < 1e-9
    one = LSTMGenerator(10, 1, ModelConfig(embed=4, genre_embed=0, hidden=8, layers=1, keep_prob=0.7))
    assert one.lstm.dropout == 0.0 and abs(one.drop.p - 0.3) < 1e-9


def test_genre_changes_the_prediction_and_state_carries():
    torch.manual_seed(0)
    m = LSTMGenerator(20, 2, ModelConfig(embed=8, genre_embed=4, hidden=16, layers=2)).eval()
    x = torch.randint(0, 20, (1, 5))
    a, _, _ = m(x, torch.tensor([0]))
    b, _, _ = m(x, torch.tensor([1]))
    assert not torch.allclose(a, b)
    # feeding step by step with the state equals one call over the whole sequence
    state, steps = None, []
    for t in range(5):
        out, _, state = m(x[:, t : t + 1], torch.tensor([0]), state=state)
        steps.append(out)
    assert torch.allclose(torch.cat(steps, 1), a, atol=1e-5)


def test_step_matches_forward():
    torch.manual_seed(1)
    m = LSTMGenerator(30, 2, ModelConfig(embed=8, genre_embed=4, hidden=16, layers=3)).eval()
    x = torch.randint(0, 30, (3, 6))
    g = torch.tensor([0, 1, 1])
    full, _, _ = m(x, g)
    _, _, state = m(x[:, :2], g)
    for t in range(2, 6):
        logits, state = m.step(x[:, t], g, state)
        assert torch.allclose(logits, full[:, t], atol=1e-5)


import pytest  # noqa: E402


@pytest.mark.parametrize("layers, genre_embed", [(1, 4), (2, 0), (3, 4)])
def test_the_fused_stepper_gives_the_plain_steps_logits(layers, genre_embed):
    """The generation path (LSTMStepper) against LSTMGenerator.step over 60 steps, a batch of
    three rows in two genres: fp32 agrees to float rounding; int8 stays close."""
    torch.manual_seed(layers)
    m = LSTMGenerator(40, 3, ModelConfig(embed=8, genre_embed=genre_embed, hidden=32, layers=layers)).eval()
    genres = torch.tensor([2, 0, 2])
    prefix = torch.randint(0, 40, (3, 5))
    with torch.no_grad():
        logits, _, state = m(prefix, genres)
        plain = [logits[:, -1]]
        tokens = torch.randint(0, 40, (60, 3))
        for tok in tokens:
            out, state = m.step(tok, genres, state)
            plain.append(out)
        for int8, tolerance in ((False, 1e-4), (True, 0.15)):
            stepper = m.stepper(genres, int8=int8)
            fused = [stepper.prime(prefix).clone()] + [stepper.step(tok).clone() for tok in tokens]
            worst = max((a - b).abs().max().item() for a, b in zip(fused, plain))
            assert worst < tolerance, (int8, worst)
            agree = sum(int((a.argmax(-1) == b.argmax(-1)).all()) for a, b in zip(fused, plain))
            assert agree >= (61 if not int8 else 50), (int8, agree)


def test_the_fused_weights_follow_the_parameters():
    """The stepper's fused weights are kept between calls, and made again once a parameter
    changes (an optimiser step, a loaded state): a stepper never runs stale weights."""
    torch.manual_seed(0)
    m = LSTMGenerator(30, 2, ModelConfig(embed=8, genre_embed=4, hidden=16, layers=2)).eval()
    g, tok = torch.tensor([1]), torch.tensor([[3]])
    first = m.stepper(g).prime(tok).clone()
    assert m.stepper(g).fused is m.stepper(g).fused
    with torch.no_grad():
        m.head.bias += 1.0
    after = m.stepper(g).prime(tok)
    assert torch.allclose(after, first + 1.0, atol=1e-5)
    with torch.no_grad():
        m.lstm.weight_hh_l1.mul_(0.5)
        stepper = m.stepper(g)
        stepper.prime(tok)
        fused = stepper.step(torch.tensor([5]))
        plain = m.step(torch.tensor([5]), g, m(tok, g)[2])[0]
    assert torch.allclose(fused, plain, atol=1e-5)


@pytest.mark.parametrize("int8", [False, True])
def test_the_compiled_layer_steps_are_the_python_ones(int8):
    """With int8 the stepper runs its layers as TorchScript (dispatching a quantised product from
    Python costs more than a small model's arithmetic): it compiles here, and its logits are
    bit for bit those of the same function run as Python, over 40 steps of a batch of two."""
    from etude.models.lstm_stepper import compiled_layer_steps, layer_steps

    assert compiled_layer_steps() is not layer_steps, "TorchScript did not compile layer_steps"
    torch.manual_seed(3)
    m = LSTMGenerator(40, 2, ModelConfig(embed=8, genre_embed=4, hidden=32, layers=3)).eval()
    genres, prefix = torch.tensor([1, 0]), torch.randint(0, 40, (2, 4))
    tokens = torch.randint(0, 40, (40, 2))
    runs = []
    for run in (compiled_layer_steps(), layer_steps):
        stepper = m.stepper(genres, int8=int8)
        stepper.run = run
        runs.append([stepper.prime(prefix).clone()] + [stepper.step(tok).clone() for tok in tokens])
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    assert (m.stepper(genres, int8=int8).run is layer_steps) != int8  # int8 compiled, fp32 as Python
