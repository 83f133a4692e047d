"""A NADE output for piano-roll frames, its biases set by a recurrent state (RNN-NADE).

Boulanger-Lewandowski, Bengio & Vincent (ICML 2012), after Larochelle & Murray (2011): keys are
predicted from lowest to highest, each given the keys below it,
  a_i = c + sum_{j<i} v_j W_j,   p(v_i = 1 | v_<i) = sigmoid(b_i + V_i . sigmoid(a_i)),
with W, V (keys, hidden) shared over time and b (keys), c (hidden) linear in the state u.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from etude.config import AIS


class NADEHead(nn.Module):
    estimated_likelihood = False

    def __init__(self, state_size: int, n_keys: int, hidden: int):
        super().__init__()
        self.n_keys = n_keys
        self.to_b = nn.Linear(state_size, n_keys)  # visible biases b(u)
        self.to_c = nn.Linear(state_size, hidden)  # hidden biases c(u)
        self.W = nn.Parameter(torch.randn(n_keys, hidden) * 0.01)
        self.V = nn.Parameter(torch.randn(n_keys, hidden) * 0.01)

    def logits(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Logits of p(v_i = 1 | v_<i, u) for every key at once: u (..., S), v (..., K) of 0/1 -> (..., K).

        a_i only changes at a sounding key, so a frame with m notes has m + 1 distinct hidden
        vectors: computing those and mapping each key to its own costs (m + 1) x K x Hn per frame
        instead of the K x Hn of a vector per key (m is 3-6 in the benchmark sets)."""
        shape = v.shape
        v = v.reshape(-1, shape[-1])  # (N, K)
        n_on = v.sum(-1).long()
        m = int(n_on.max()) if len(v) else 0
        keys = torch.arange(shape[-1], device=v.device)
        on = torch.argsort(v * (shape[-1] - keys), dim=-1, descending=True)[
            :, :m
        ]  # sounding keys, lowest first: (N, m)
        real = (torch.arange(m, device=v.device) < n_on[:, None]).to(self.W.dtype)  # (N, m)
        steps = (self.W[on] * real[..., None]).cumsum(1)  # (N, m, Hn)
        c = self.to_c(u).reshape(-1, 1, self.W.shape[1])  # (N, 1, Hn)
        a = torch.cat([c, c + steps], 1)  # the hidden input below the 0th, 1st, ... sounding key: (N, m + 1, Hn)
        per_segment = torch.sigmoid(a) @ self.V.T  # (N, m + 1, K)
        below = (v.cumsum(-1) - v).long()  # sounding keys below each key: (N, K)
        out = self.to_b(u).reshape(-1, shape[-1]) + per_segment.gather(1, below[:, None, :])[:, 0]
        return out.reshape(shape)

    def objective(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """-log p(v | u) in nats, exact: u (..., S), v (..., K) -> (...)."""
        return F.binary_cross_entropy_with_logits(self.logits(u, v), v, reduction="none").sum(-1)

    def nll(self, u: torch.Tensor, v: torch.Tensor, ais: AIS | None = None) -> torch.Tensor:
        """Exact: the objective (`ais` is not needed)."""
        return self.objective(u, v)

    def _decode(self, u: torch.Tensor, pick) -> torch.Tensor:
        """Keys one after another; pick(logit (B,)) -> 0/1 values (B,)."""
        b, a = self.to_b(u), self.to_c(u)  # (B, K), (B, Hn)
        v = torch.zeros_like(b)
        for i in range(self.n_keys):
            v[:, i] = pick(b[:, i] + torch.sigmoid(a) @ self.V[i])
            a = a + v[:, i : i + 1] * self.W[i]
        return v

    @torch.no_grad()
    def start_biases(self, log_odds: torch.Tensor) -> None:
        self.to_b.bias.copy_(log_odds)

    @torch.no_grad()
    def sample(
        self, u: torch.Tensor, temperature: float, generator: torch.Generator | None, previous: torch.Tensor
    ) -> torch.Tensor:
        """One frame per row of u (B, S) -> (B, K) of 0/1."""
        return self._decode(
            u, lambda z: (torch.rand(z.shape, generator=generator) < torch.sigmoid(z / temperature)).float()
        )

    @torch.no_grad()
    def predict(self, u: torch.Tensor) -> torch.Tensor:
        """The greedy frame: each key on when p > 0.5 given the keys chosen below it."""
        return self._decode(u, lambda z: (z > 0).float())


class NADEMixture(nn.Module):
    """A mixture of K NADEs, each predicting the keys of a frame in its own fixed order:
      p(v | u) = sum_k pi_k(u) p_k(v | u),   pi(u) = softmax(gate(u)),
    exact like each NADE. Order 0 is low to high, order 1 high to low, further orders are fixed
    random permutations (seeded, saved with the weights). Uria, Murray & Larochelle (2014) get
    better likelihoods from ensembles of NADE orderings; here the mixture is trained directly,
    so its components may specialise, and the gate weighs them per frame."""

    estimated_likelihood = False

    def __init__(self, state_size: int, n_keys: int, hidden: int, orders: int):
        super().__init__()
        perms = [torch.arange(n_keys), torch.arange(n_keys).flip(0)]
        gen = torch.Generator().manual_seed(0)
        perms += [torch.randperm(n_keys, generator=gen) for _ in range(orders - 2)]
        self.register_buffer("perms", torch.stack(perms[:orders]))  # (K, keys): key order of each NADE
        self.parts = nn.ModuleList(NADEHead(state_size, n_keys, hidden) for _ in range(orders))
        self.gate = nn.Linear(state_size, orders)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)  # uniform weights at the start

    def _log_joint(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """log pi_k(u) + log p_k(v | u) for every component: (..., S), (..., K keys) -> (..., K)."""
        parts = [-part.objective(u, v[..., perm]) for part, perm in zip(self.parts, self.perms)]
        return torch.log_softmax(self.gate(u), -1) + torch.stack(parts, -1)

    def objective(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """-log p(v | u) in nats, exact: u (..., S), v (..., K) -> (...)."""
        return -torch.logsumexp(self._log_joint(u, v), -1)

    def nll(self, u: torch.Tensor, v: torch.Tensor, ais: AIS | None = None) -> torch.Tensor:
        """Exact: the objective (`ais` is not needed)."""
        return self.objective(u, v)

    @torch.no_grad()
    def start_biases(self, log_odds: torch.Tensor) -> None:
        for part, perm in zip(self.parts, self.perms):
            part.start_biases(log_odds[perm])

    def _by_component(self, u: torch.Tensor, k: torch.Tensor, draw) -> torch.Tensor:
        """A frame per row of u (B, S) from component k (B,): draw(part, rows) -> those rows'
        frames in the part's key order."""
        out = u.new_zeros(u.shape[0], self.perms.shape[1])
        for c, (part, perm) in enumerate(zip(self.parts, self.perms)):
            rows = (k == c).nonzero()[:, 0]
            if len(rows):
                out[rows[:, None], perm] = draw(part, rows)
        return out

    @torch.no_grad()
    def sample(
        self, u: torch.Tensor, temperature: float, generator: torch.Generator | None, previous: torch.Tensor
    ) -> torch.Tensor:
        """One frame per row of u (B, S): a component drawn from pi(u), then its NADE's frame."""
        k = torch.multinomial(torch.softmax(self.gate(u) / temperature, -1), 1, generator=generator)[:, 0]
        return self._by_component(u, k, lambda part, rows: part.sample(u[rows], temperature, generator, previous[rows]))

    @torch.no_grad()
    def predict(self, u: torch.Tensor) -> torch.Tensor:
        """The greedy frame of the most likely component."""
        return self._by_component(u, self.gate(u).argmax(-1), lambda part, rows: part.predict(u[rows]))
