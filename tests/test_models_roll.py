import itertools
import math

import numpy as np
import pytest
import torch

from etude.config import AIS, ModelConfig
from etude.data.windows import Windows, piece_batches
from etude.evaluation.likelihood import frame_accuracy, frame_likelihood, marginal_log_probs
from etude.models.nade import NADEHead, NADEMixture
from etude.models.rbm import RBM
from etude.models.rnn_rbm import RBMHead
from etude.models.roll_lstm import BernoulliHead, RollModel
from etude.models.window_rbm import WindowRBM


def _all_frames(k: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=k)))  # (2^k, k)


HEADS = {
    "nade": lambda K: NADEHead(7, K, 4),
    "nade-mixture": lambda K: NADEMixture(7, K, 4, orders=3),
    "bernoulli": lambda K: BernoulliHead(7, K),
}


@pytest.mark.parametrize("head", HEADS)
def test_output_sums_to_one_over_every_frame(head):
    torch.manual_seed(0)
    K = 5
    h = HEADS[head](K)
    for p in h.parameters():  # away from the near-uniform initialisation
        torch.nn.init.normal_(p, std=1.0)
    u = torch.randn(3, 7)
    frames = _all_frames(K)
    nll = h.nll(u[:, None, :].expand(-1, len(frames), -1), frames[None].expand(3, -1, -1))  # (3, 2^K)
    np.testing.assert_allclose(torch.exp(-nll).sum(-1).detach().numpy(), 1.0, atol=1e-5)


def test_nade_logits_follow_the_definition_key_by_key():
    torch.manual_seed(3)
    K, Hn = 9, 6
    h = NADEHead(4, K, Hn)
    for p in h.parameters():
        torch.nn.init.normal_(p, std=1.0)
    u = torch.randn(2, 5, 4)
    v = (torch.rand(2, 5, K) < 0.35).float()
    v[0, 0] = 0  # a silent frame
    v[0, 1] = 1  # every key sounding
    expected = torch.empty(2, 5, K)
    for idx in itertools.product(range(2), range(5)):
        for i in range(K):  # a_i = c + sum_{j<i} v_j W_j;  logit_i = b_i + V_i . sigmoid(a_i)
            a = h.to_c(u[idx]) + (v[idx][:i, None] * h.W[:i]).sum(0)
            expected[idx + (i,)] = h.to_b(u[idx])[i] + h.V[i] @ torch.sigmoid(a)
    torch.testing.assert_close(h.logits(u, v), expected, atol=1e-5, rtol=1e-5)


def test_nade_greedy_decode_and_sampling_follow_the_conditionals():
    torch.manual_seed(1)
    h = NADEHead(3, 4, 5)
    for p in h.parameters():
        torch.nn.init.normal_(p, std=2.0)
    u = torch.randn(1, 3)
    frames = _all_frames(4)
    probs = torch.exp(-h.nll(u.expand(len(frames), -1), frames))
    samples = h.sample(u.expand(4000, -1), 1.0, torch.Generator().manual_seed(0), torch.zeros(4000, 4))
    freq = torch.tensor([(samples == f).all(-1).float().mean() for f in frames])
    assert (freq - probs).abs().max() < 0.03
    greedy = h.predict(u)  # (1, K)
    # greedy decoding sets each key on exactly when its conditional, given the keys already
    # decided, is above 1/2: the frame must agree with its own teacher-forced conditionals
    conditional_on = torch.sigmoid(h.logits(u, greedy)) > 0.5  # (1, K)
    assert torch.equal(conditional_on.float(), greedy)


def test_nade_mixture_is_its_gate_weighted_parts_and_samples_them():
    """p(v) = sum_k pi_k p_k(v in order k), by hand from the parts; the order 1 part reads the
    keys high to low; samples follow the mixture; the greedy frame is the likeliest part's."""
    torch.manual_seed(2)
    h = NADEMixture(3, 4, 5, orders=3)
    for p in h.parameters():
        torch.nn.init.normal_(p, std=2.0)
    u = torch.randn(1, 3)
    frames = _all_frames(4)
    pi = torch.softmax(h.gate(u), -1)[0]
    by_hand = sum(pi[k] * torch.exp(-h.parts[k].nll(u.expand(16, -1), frames[:, h.perms[k]])) for k in range(3))
    probs = torch.exp(-h.nll(u.expand(16, -1), frames))
    torch.testing.assert_close(probs, by_hand, atol=1e-6, rtol=1e-5)
    assert h.perms[1].tolist() == [3, 2, 1, 0]
    samples = h.sample(u.expand(6000, -1), 1.0, torch.Generator().manual_seed(0), torch.zeros(6000, 4))
    freq = torch.tensor([(samples == f).all(-1).float().mean() for f in frames])
    assert (freq - probs.detach()).abs().max() < 0.03
    best = int(pi.argmax())
    assert torch.equal(h.predict(u)[0, h.perms[best]], h.parts[best].predict(u)[0])


def _exact_rbm_frame_nll(head: RBMHead, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """-log p(v | u) with log Z by enumerating the hidden units."""
    rbm = RBM(head.W.shape[0], head.W.shape[1])
    out = []
    for ui, vi in zip(u, v):
        with torch.no_grad():
            rbm.W.copy_(head.W)
            rbm.b.copy_(head.to_b(ui))
            rbm.c.copy_(head.to_c(ui))
        out.append(rbm.free_energy(vi[None])[0] + rbm.log_partition_exact())
    return torch.stack(out)


def test_rnn_rbm_ais_likelihood_matches_enumeration():
    torch.manual_seed(2)
    head = RBMHead(4, 8, 10)
    with torch.no_grad():
        head.W.normal_(std=0.7)
    u = torch.randn(6, 4)
    v = (torch.rand(6, 8) < 0.4).float()
    estimate = head.nll(u, v, ais=AIS(temps=500, runs=64))
    exact = _exact_rbm_frame_nll(head, u, v)
    assert torch.allclose(estimate, exact.detach(), atol=0.1)


def test_window_rbm_ais_likelihood_matches_enumeration_and_leaves_the_tail_unscored():
    torch.manual_seed(3)
    model = WindowRBM(2, ModelConfig(name="rbm", head_hidden=10, window=2), n_keys=4)
    with torch.no_grad():
        model.rbm.W.normal_(std=0.7)
        model.genre_b.weight.normal_()
    frames = torch.zeros(1, 6, 4)  # a 5-frame piece: two whole windows, one frame left over
    frames[0, 1:] = (torch.rand(5, 4) < 0.5).float()
    mask = torch.ones(1, 6, dtype=torch.bool)
    mask[0, 0] = False
    nll = model.frame_nll(frames, mask, torch.tensor([1]), ais=AIS(temps=500, runs=64))
    assert torch.isnan(nll[0, 4]) and not torch.isnan(nll[0, :4]).any()
    rbm = RBM(8, 10)
    with torch.no_grad():
        rbm.W.copy_(model.rbm.W)
        rbm.b.copy_(model.rbm.b + model.genre_b.weight[1])
        rbm.c.copy_(model.rbm.c + model.genre_c.weight[1])
    windows = frames[0, 1:5].reshape(2, 8)
    exact = (rbm.free_energy(windows) + rbm.log_partition_exact()).detach()
    assert torch.allclose(nll[0, :4].reshape(2, 2).sum(-1), exact, atol=0.1)


def test_roll_windows_start_at_the_silent_frame_and_stay_inside_pieces():
    rows = np.arange(1, 11, dtype=np.uint8)[:, None].repeat(88, 1)  # frame values 1..10
    index = np.array([[0, 3, 0], [3, 7, 1]])
    w = Windows(rows, index, seq_len=4, roll=True)
    spots = [(0, -1), (1, 2)]
    frames, mask, genre = w._tensors(spots)
    assert frames.shape == (2, 5, 88)
    assert frames[0, :, 0].tolist() == [0, 1, 2, 3, 0] and mask[0].tolist() == [False, True, True, True, False]
    assert frames[1, :, 0].tolist() == [6, 7, 8, 9, 10] and mask[1].all() and genre.tolist() == [0, 1]
    batch = w.random_batch(np.random.default_rng(0), 64)
    firsts = batch[0][:, 0, 0]
    assert (firsts == 0).any() and (batch[0][~batch[1]] == 0).all()


def test_piece_batches_hold_every_frame_once():
    rows = (np.random.default_rng(0).random((50, 88)) < 0.1).astype(np.uint8)
    index = np.array([[0, 20, 0], [20, 5, 0], [25, 25, 0]])
    seen = 0
    for frames, mask, _ in piece_batches(rows, index, max_frames=40):
        assert not mask[:, 0].any() and (frames[:, 0] == 0).all()
        seen += int(mask.sum())
        assert frames.shape[0] * (frames.shape[1] - 1) <= 40 or frames.shape[0] == 1
    assert seen == 50


def test_thin_pieces_keeps_whole_pieces_within_the_frame_budget():
    from etude.data.windows import thin_pieces

    index = np.array([[0, 10, 0], [10, 30, 1], [40, 5, 0], [45, 20, 1], [65, 50, 0]])
    assert thin_pieces(index, 0) is index and thin_pieces(index, 115) is index  # off, or all fit
    kept = thin_pieces(index, 40)
    assert 0 < kept[:, 1].sum() <= 40 and len(kept) >= 2
    assert all(any((row == r).all() for r in index) for row in kept)  # whole rows of the index
    assert list(kept[:, 0]) == sorted(kept[:, 0])  # in split order
    assert (thin_pieces(index, 40) == kept).all()  # the same choice every time
    assert len(thin_pieces(index, 1)) == 1  # at least one piece, even one longer than the budget


def test_frame_accuracy_and_marginal_floor_by_hand():
    assert frame_accuracy(3, 1, 2) == pytest.approx(0.5)
    assert math.isnan(frame_accuracy(0, 0, 0))
    rows = np.array([[1, 0], [1, 1], [0, 0]], dtype=np.uint8)
    logp = marginal_log_probs(rows)  # p(on) = (2 + 1) / 5 and (1 + 1) / 5
    np.testing.assert_allclose(torch.exp(logp[1]).numpy(), [0.6, 0.4], rtol=1e-6)


def test_bernoulli_model_nll_is_the_per_key_cross_entropy_of_its_output():
    torch.manual_seed(4)
    model = RollModel(
        1, ModelConfig(name="lstm", hidden=8, layers=1, genre_embed=0), BernoulliHead(8, 6), n_keys=6
    ).eval()
    frames = torch.zeros(1, 4, 6)
    frames[0, 1:] = (torch.rand(3, 6) < 0.5).float()
    mask = torch.tensor([[False, True, True, False]])
    nll = model.frame_nll(frames, mask, torch.tensor([0]))
    p = torch.sigmoid(model.head.out(model.states(frames, torch.tensor([0])))).detach()
    by_hand = -(frames[:, 1:] * torch.log(p) + (1 - frames[:, 1:]) * torch.log(1 - p)).sum(-1)
    assert torch.allclose(nll[0, :2], by_hand[0, :2], atol=1e-5) and nll[0, 2] == 0
    m = frame_likelihood(model, [(frames, mask, torch.tensor([0]))])
    assert m["frames"] == 2 and m["loss"] == pytest.approx(float(by_hand[0, :2].mean()), rel=1e-5)


def test_input_dropout_only_while_training():
    torch.manual_seed(5)
    model = RollModel(
        1,
        ModelConfig(name="lstm", hidden=8, layers=1, genre_embed=0, keep_prob=1.0, input_keep=0.5),
        BernoulliHead(8, 6),
        n_keys=6,
    )
    frames = torch.ones(2, 5, 6)
    g = torch.tensor([0, 0])
    model.train()
    assert not torch.allclose(model.states(frames, g), model.states(frames, g))
    model.eval()
    assert torch.equal(model.states(frames, g), model.states(frames, g))


def test_shift_keys_moves_notes_and_drops_those_off_the_keyboard():
    from etude.data.windows import shift_keys

    frames = torch.zeros(3, 2, 88)
    frames[:, 0, 0] = 1  # lowest key
    frames[:, 1, 40] = 1
    out = shift_keys(frames, np.array([2, -1, 0]))
    assert out[0, 0, 2] == 1 and out[0, 1, 42] == 1 and out[0].sum() == 2
    assert out[1, 1, 39] == 1 and out[1].sum() == 1  # key 0 moved down falls off
    assert torch.equal(out[2], frames[2])


def test_transposed_windows_shift_keys_only():
    rows = np.zeros((40, 88), np.uint8)
    rows[::2, 30:34] = 1
    index = np.array([[0, 20, 0], [20, 20, 1]])
    plain = Windows(rows, index, 8, roll=True).random_batch(np.random.default_rng(0), 6)
    moved = Windows(rows, index, 8, roll=True, transpose=3).random_batch(np.random.default_rng(0), 6)
    assert torch.equal(plain[1], moved[1]) and torch.equal(plain[2], moved[2])  # same windows, masks, genres
    assert torch.equal(plain[0].sum(-1), moved[0].sum(-1))  # every note kept (none near the ends)
    assert not torch.equal(plain[0], moved[0])
