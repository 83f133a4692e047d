"""A binary restricted Boltzmann machine's parameters, free energy, block Gibbs chains (the
negative samples of CD-k training in window_rbm and rnn_rbm), and its log partition function,
exact (small models) or estimated by annealed importance sampling.

Energy E(v, h) = -b.v - c.h - v.W.h over binary visible v (V,) and hidden h (H,). The free energy
F(v) = -b.v - sum_j softplus(c_j + (v W)_j) gives log p(v) = -F(v) - log Z.
AIS follows Salakhutdinov & Murray, "On the quantitative analysis of deep belief networks"
(ICML 2008): a base model with W = 0 and visible biases b_A, geometric path over inverse
temperatures beta_0 = 0 < ... < beta_K = 1, one Gibbs transition per temperature.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RBM(nn.Module):
    def __init__(self, n_visible: int, n_hidden: int):
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_visible, n_hidden) * 0.01)
        self.b = nn.Parameter(torch.zeros(n_visible))  # visible biases
        self.c = nn.Parameter(torch.zeros(n_hidden))  # hidden biases

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) for v (B, V) -> (B,)."""
        return -v @ self.b - F.softplus(v @ self.W + self.c).sum(-1)

    @torch.no_grad()
    def log_partition_exact(self) -> float:
        """log Z by enumerating the 2^H hidden states (H <= 20)."""
        H = self.c.numel()
        if H > 20:
            raise ValueError("exact log Z enumerates 2^H hidden states; H must be at most 20")
        states = ((torch.arange(2**H)[:, None] >> torch.arange(H)) & 1).to(self.W.dtype)  # (2^H, H)
        terms = states @ self.c + F.softplus(states @ self.W.T + self.b).sum(-1)
        return float(torch.logsumexp(terms, 0))

    @torch.no_grad()
    def log_partition_ais(
        self,
        base_bias: torch.Tensor | None = None,
        n_temps: int = 1000,
        n_runs: int = 100,
        generator: torch.Generator | None = None,
    ) -> tuple[float, float]:
        """AIS estimate of log Z and the standard deviation of the n_runs log importance weights.

        `base_bias`: the base model's visible biases b_A (default zeros; the data's log-odds make a
        better base)."""
        b_a = torch.zeros_like(self.b) if base_bias is None else base_bias
        log_z = ais_log_partition(
            self.W, self.b[None], self.c[None], b_a[None], n_temps, n_runs, generator
        )  # (1, runs)
        return float(mean_log_z(log_z)[0]), float(log_z.std())


def free_energy(v: torch.Tensor, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """F(v) = -b.v - sum_j softplus(c_j + (v W)_j) for v (..., V), biases broadcast -> (...)."""
    return -(v * b).sum(-1) - F.softplus(v @ W + c).sum(-1)


def gibbs_chain(
    v: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """k sweeps v -> h -> v of block Gibbs sampling; the visible logits divided by `temperature`."""
    for _ in range(k):
        act = v @ W + c
        h = (torch.rand(act.shape, generator=generator, device=v.device) < torch.sigmoid(act)).to(v.dtype)
        v = (torch.rand(v.shape, generator=generator, device=v.device) < torch.sigmoid((h @ W.T + b) / temperature)).to(
            v.dtype
        )
    return v


def mean_field_frame(W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, steps: int = 25) -> torch.Tensor:
    """The most likely visible units by mean field, thresholded at 0.5: from v = sigmoid(b),
    `steps` times v <- sigmoid(sigmoid(v W + c) W^T + b). W (V, H); b (..., V) and c (..., H)
    broadcast (c may carry the input of clamped units) -> (..., V) of 0/1."""
    v = torch.sigmoid(b)
    for _ in range(steps):
        v = torch.sigmoid(torch.sigmoid(v @ W + c) @ W.T + b)
    return (v > 0.5).to(b.dtype)


def mean_log_z(log_z_runs: torch.Tensor) -> torch.Tensor:
    """log of the mean importance weight: (N, runs) per-run estimates -> (N,)."""
    return torch.logsumexp(log_z_runs, -1) - math.log(log_z_runs.shape[-1])


@torch.no_grad()
def ais_log_partition(
    W: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    base_bias: torch.Tensor,
    n_temps: int = 1000,
    n_runs: int = 100,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """AIS for N RBMs that share W (V, H) and have their own biases b (N, V), c (N, H).

    Returns (N, n_runs): log Z_A + the log importance weight of each run; the estimate of log Z is
    their log-mean-exp (`mean_log_z`), whose mean over runs is unbiased for Z, so log Z is
    slightly underestimated when the weights spread. Intermediate models:
    p*_beta(v) = exp((1 - beta) b_A.v + beta b.v) prod_j (1 + exp(beta (c_j + (v W)_j))); at
    beta = 0 that is the base model (biases `base_bias` (N, V)) times 2^H, at beta = 1 the RBM.
    """
    N, V = b.shape
    betas = torch.linspace(0, 1, n_temps + 1, dtype=torch.float64).tolist()
    b_a, b, c = base_bias[:, None, :], b[:, None, :], c[:, None, :]  # (N, 1, V|H)
    log_z_base = F.softplus(base_bias).sum(-1) + c.shape[-1] * math.log(2)  # (N,)

    def rand(shape) -> torch.Tensor:
        return torch.rand(shape, generator=generator, dtype=W.dtype)

    v = (rand((N, n_runs, V)) < torch.sigmoid(b_a)).to(W.dtype)  # (N, R, V)
    log_w = torch.zeros(N, n_runs, dtype=torch.float64)
    for beta_prev, beta in zip(betas[:-1], betas[1:]):
        va, vb, act = (v * b_a).sum(-1), (v * b).sum(-1), v @ W + c  # (N, R), (N, R), (N, R, H)

        def log_p_star(t: float) -> torch.Tensor:
            return (1 - t) * va + t * vb + F.softplus(t * act).sum(-1)

        log_w += (log_p_star(beta) - log_p_star(beta_prev)).double()
        # one Gibbs sweep of the joint at beta, which leaves p*_beta invariant
        h = (rand(act.shape) < torch.sigmoid(beta * act)).to(W.dtype)
        v = (rand(v.shape) < torch.sigmoid((1 - beta) * b_a + beta * (h @ W.T + b))).to(W.dtype)
    return (log_z_base[:, None] + log_w).to(W.dtype)
