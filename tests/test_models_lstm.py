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
