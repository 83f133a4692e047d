"""An RBM output for piano-roll frames, its biases set by a recurrent state (RNN-RBM).

Boulanger-Lewandowski, Bengio & Vincent (ICML 2012): at frame t an RBM with weights W (keys,
hidden), shared over time, and biases b(u_{t-1}), c(u_{t-1}) linear in the recurrent state. It is
trained by CD-k, the gradient reaching the recurrent network through the biases; its likelihood
needs each frame's log partition function, estimated here by AIS (`etude.models.rbm`).
Our recurrent state comes from an LSTM (etude.models.roll_lstm) instead of the paper's tanh RNN.
"""

from __future__ import annotations

import torch
from torch import nn

from etude.config import AIS
from etude.models.rbm import ais_log_partition, free_energy, gibbs_chain, mean_field_frame, mean_log_z


class RBMHead(nn.Module):
    estimated_likelihood = True

    def __init__(self, state_size: int, n_keys: int, hidden: int, cd_k: int = 10):
        super().__init__()
        self.cd_k = cd_k
        self.to_b = nn.Linear(state_size, n_keys)
        self.to_c = nn.Linear(state_size, hidden)
        self.W = nn.Parameter(torch.randn(n_keys, hidden) * 0.01)

    def objective(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Per frame F(v) - F(v~), v~ from k Gibbs steps started at v: its gradient is CD-k's."""
        b, c = self.to_b(u), self.to_c(u)
        with torch.no_grad():
            negative = gibbs_chain(v, self.W, b, c, self.cd_k)
        return free_energy(v, self.W, b, c) - free_energy(negative, self.W, b, c)

    @torch.no_grad()
    def nll(self, u: torch.Tensor, v: torch.Tensor, ais: AIS | None = None) -> torch.Tensor:
        """-log p(v | u) = F(v) + log Z(u), log Z by AIS per frame (base: the frame's own visible
        biases; `AIS()` when None): u (..., S), v (..., K) -> (...)."""
        ais = ais or AIS()
        b, c = self.to_b(u), self.to_c(u)
        flat_b, flat_c = b.reshape(-1, b.shape[-1]), c.reshape(-1, c.shape[-1])
        gen = torch.Generator().manual_seed(ais.seed)
        chunk = max(1, ais.max_chains // ais.runs)
        log_z = (
            torch.cat(
                [
                    mean_log_z(ais_log_partition(self.W.cpu(), bb.cpu(), cc.cpu(), bb.cpu(), ais.temps, ais.runs, gen))
                    for bb, cc in zip(flat_b.split(chunk), flat_c.split(chunk))
                ]
            )
            if len(flat_b)
            else flat_b.new_zeros(0)
        )
        return free_energy(v, self.W, b, c) + log_z.to(v.device).reshape(v.shape[:-1])

    @torch.no_grad()
    def start_biases(self, log_odds: torch.Tensor) -> None:
        self.to_b.bias.copy_(log_odds)

    @torch.no_grad()
    def sample(
        self,
        u: torch.Tensor,
        temperature: float,
        generator: torch.Generator | None,
        previous: torch.Tensor,
        steps: int = 25,
    ) -> torch.Tensor:
        """One frame per row of u (B, S): `steps` Gibbs steps started at the previous frame (B, K)."""
        b, c = self.to_b(u), self.to_c(u)
        return gibbs_chain(previous, self.W, b, c, steps, generator, temperature)

    @torch.no_grad()
    def predict(self, u: torch.Tensor, steps: int = 25) -> torch.Tensor:
        """The mean-field frame (etude.models.rbm.mean_field_frame) under the biases u sets."""
        return mean_field_frame(self.W, self.to_b(u), self.to_c(u), steps)
