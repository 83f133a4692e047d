import math

import pytest
import torch

from etude.models.rbm import RBM


def _toy_data(n: int = 512) -> torch.Tensor:
    """Two prototypes of 12 bits with 5 % of bits flipped: a distribution CD can learn."""
    g = torch.Generator().manual_seed(0)
    protos = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]], dtype=torch.float32)
    v = protos[torch.randint(0, 2, (n,), generator=g)]
    flip = torch.rand(v.shape, generator=g) < 0.05
    return torch.where(flip, 1 - v, v)


def test_cd_lowers_reconstruction_error_and_raises_likelihood():
    torch.manual_seed(0)
    data = _toy_data()
    rbm = RBM(12, 6)
    before = rbm.reconstruction_error(data).item()
    ll_before = (-rbm.free_energy(data).mean() - rbm.log_partition_exact()).item()
    opt = torch.optim.SGD(rbm.parameters(), lr=0.1)
    chains = None
    for step in range(300):
        batch = data[(step * 32) % 512 : (step * 32) % 512 + 32]
        loss, chains = rbm.cd_loss(batch, k=1, chains=chains)  # persistent CD
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = rbm.reconstruction_error(data).item()
    ll_after = (-rbm.free_energy(data).mean() - rbm.log_partition_exact()).item()
    assert after < 0.5 * before
    assert ll_after > ll_before + 2  # nats per example, exact


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
