import math

import pytest
import torch

from etude.models.rbm import RBM


def _toy_data(n: int = 512) -> torch.Tensor:
    """Two prototypes of 12 bits with 5 % of bits flipped: a distribution CD can learn."""
    g = torch.Generator().manual_seed(0)
    protos = torch.tensor(
        [[1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]], dtype=torch.float32
    )
    v = protos[torch.randint(0, 2, (n,), generator=g)]
    flip = torch.rand(v.shape, generator=g) < 0.05
    return torch.where(flip, 1 - v, v)


def _exact_log_likelihood(W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, v: torch.Tensor) -> float:
    """Mean exact log p(v) of an RBM with these weights and biases (log Z by enumeration)."""
    rbm = RBM(*W.shape)
    with torch.no_grad():
        rbm.W.copy_(W), rbm.b.copy_(b), rbm.c.copy_(c)
        return float(-rbm.free_energy(v).mean() - rbm.log_partition_exact())


def _train(model, objective, lr: float = 0.05, steps: int = 300) -> None:
    """The training loop's update: the model's objective (sum, count) -> mean -> Adam step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        total, count = objective()
        opt.zero_grad()
        (total / count).backward()
        opt.step()


@pytest.mark.parametrize(("persistent", "cd_k", "lr", "gain"), [(False, 1, 0.05, 3.0), (True, 10, 0.01, 2.0)])
def test_the_frame_rbm_objective_raises_the_exact_likelihood(persistent, cd_k, lr, gain):
    """WindowRBM (etude train --model rbm) trained through its production objective on a
    two-prototype 12-key toy set, by CD-1 or by persistent CD-10 (the presets' choice, at their
    learning rate 0.01): the exact log-likelihood of the data rises by `gain` nats per frame.
    (Persistent CD with Adam at 0.05 diverges on this set: -8.3 -> -14.8 nats.)"""
    from etude.config import ModelConfig
    from etude.models.window_rbm import WindowRBM

    torch.manual_seed(0)
    data = _toy_data()
    model = WindowRBM(1, ModelConfig(window=1, head_hidden=6, cd_k=cd_k, persistent=persistent), n_keys=12)
    genre = torch.zeros(32, dtype=torch.long)

    def loglik() -> float:
        b, c = model._biases(genre[:1])
        return _exact_log_likelihood(model.rbm.W, b[0], c[0], data)

    before = loglik()
    batches = iter(range(10**6))

    def objective():
        k = next(batches) * 32 % 512
        frames = data[k : k + 32, None, :]  # (B, W = 1, K)
        return model.objective(frames, torch.ones(32, 1, dtype=torch.bool), genre)

    _train(model, objective, lr)
    after = loglik()
    # the toy set's entropy (1 bit for the prototype + 12 flips of p = 0.05) is about 3.1 nats
    assert after > before + gain and after < -2.5, (before, after)


def test_the_rnn_rbm_head_objective_raises_the_exact_likelihood():
    """RBMHead (etude train --model rnn-rbm) trained through its production objective with a fixed
    recurrent state: the exact log-likelihood of the toy set rises by more than 3 nats per frame."""
    from etude.models.rnn_rbm import RBMHead

    torch.manual_seed(0)
    data = _toy_data()
    head = RBMHead(4, 12, 6, cd_k=1)
    u = torch.zeros(32, 4)

    def loglik() -> float:
        return _exact_log_likelihood(head.W, head.to_b(u[0]), head.to_c(u[0]), data)

    before = loglik()
    batches = iter(range(10**6))

    def objective():
        k = next(batches) * 32 % 512
        return head.objective(u, data[k : k + 32]).sum(), torch.tensor(32)

    _train(head, objective)
    assert loglik() > before + 3, (before, loglik())


def _random_rbm(n_visible: int, n_hidden: int, scale: float, seed: int) -> RBM:
    """An RBM with every weight and bias drawn from N(0, scale^2)."""
    torch.manual_seed(seed)
    rbm = RBM(n_visible, n_hidden)
    with torch.no_grad():
        for p in (rbm.W, rbm.b, rbm.c):
            p.normal_(0, scale)
    return rbm


def test_ais_agrees_with_exact_log_partition():
    rbm = _random_rbm(20, 10, 0.5, seed=1)
    exact = rbm.log_partition_exact()
    estimate, spread = rbm.log_partition_ais(n_temps=2000, n_runs=200, generator=torch.Generator().manual_seed(0))
    assert abs(estimate - exact) < 0.1, (estimate, exact, spread)


def test_exact_log_partition_by_brute_force():
    rbm = _random_rbm(4, 3, 1.0, seed=2)
    total = 0.0
    with torch.no_grad():  # sum exp(-E(v, h)) over all 16 x 8 joint states
        for vi in range(16):
            for hi in range(8):
                v = torch.tensor([(vi >> k) & 1 for k in range(4)], dtype=torch.float32)
                h = torch.tensor([(hi >> k) & 1 for k in range(3)], dtype=torch.float32)
                total += math.exp(float(v @ rbm.b + h @ rbm.c + v @ rbm.W @ h))
    assert rbm.log_partition_exact() == pytest.approx(math.log(total), rel=1e-5)
