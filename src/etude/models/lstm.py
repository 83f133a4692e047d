"""LSTMGenerator: token embedding (+ genre embedding) -> stacked LSTM -> dropout -> vocabulary head."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from etude.config import ModelConfig, TrainConfig
from etude.data.windows import Lanes, Windows
from etude.models.form_plan import FormPlan
from etude.models.lstm_stepper import FusedLSTM, LSTMStepper

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (layers, B, hidden)


def lstm_step(lstm: nn.LSTM, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
    """One time step of a (batch-first, unidirectional) nn.LSTM without dropout, run as LSTM cells.

    x: (B, input); returns the top layer's output (B, hidden) and the new state. On CPU at small
    batch this is several times faster than calling nn.LSTM on one step, with the same results."""
    if state is None:
        zeros = x.new_zeros(lstm.num_layers, x.shape[0], lstm.hidden_size)
        state = (zeros, zeros)
    hs, cs = [], []
    for layer in range(lstm.num_layers):
        w = [getattr(lstm, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        x, c = torch.lstm_cell(x, (state[0][layer], state[1][layer]), *w)
        hs.append(x)
        cs.append(c)
    return x, (torch.stack(hs), torch.stack(cs))


class LSTMGenerator(nn.Module):
    """Next-token model over event tokens, conditioned on a genre at every step.

    Dropout follows the study's convention: `keep_prob` is the chance a unit is kept, so the
    PyTorch dropout between LSTM layers and before the head is `1 - keep_prob`. Built from a
    validated config (etude.models.registry.build_model).
    """

    unit = "token"
    estimated_likelihood = False
    remembers_piece = False
    carries_state = True

    def __init__(self, vocab_size: int, n_genres: int, cfg: ModelConfig, pad_id: int = 0):
        super().__init__()
        self.carried: State | None = None  # train.carry_state: each lane's state after its last window
        self.cfg, self.vocab_size, self.n_genres, self.pad_id = cfg, vocab_size, n_genres, pad_id
        p_drop = 1.0 - cfg.keep_prob
        self.embed = nn.Embedding(vocab_size, cfg.embed)
        self.genre = nn.Embedding(max(n_genres, 1), cfg.genre_embed) if cfg.genre_embed else None
        self.lstm = nn.LSTM(
            cfg.embed + cfg.genre_embed,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            dropout=p_drop if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(p_drop)
        self.head = nn.Linear(cfg.hidden, vocab_size)

    def forward(
        self,
        x: torch.Tensor,
        genre: torch.Tensor,
        targets: torch.Tensor | None = None,
        state: State | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """x, targets: (B, T) token ids; genre: (B,). Returns logits (B, T, V), mean loss over
        non-pad targets (or None), and the LSTM state for the next call."""
        out, state = self.outputs(x, genre, state)  # (B, T, H)
        logits = self.head(self.drop(out))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1), ignore_index=self.pad_id)
        return logits, loss, state

    def outputs(self, x: torch.Tensor, genre: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """The top LSTM layer's outputs (B, T, H) for tokens x (B, T) of genres (B,), and the state."""
        h = self.embed(x)  # (B, T, E)
        if self.genre is not None:
            g = self.genre(genre)[:, None, :].expand(-1, x.shape[1], -1)  # (B, T, G)
            h = torch.cat([h, g], dim=-1)
        return self.lstm(h, state)

    def training_windows(self, rows: np.ndarray, index: np.ndarray, train: TrainConfig) -> Windows | Lanes:
        """Windows of train.seq_len + 1 tokens inside pieces; with train.carry_state, lanes that
        read whole pieces window after window."""
        if train.carry_state:
            return Lanes(rows, index, train.seq_len, self.pad_id)
        return Windows(rows, index, train.seq_len, self.pad_id, start_share=train.start_share)

    def objective(
        self, x: torch.Tensor, y: torch.Tensor, genre: torch.Tensor, fresh: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss summed over non-pad targets, and their count. With `fresh` (B,) bool
        (batches from Lanes), the LSTM starts from `self.carried`, each lane's state after its
        previous window (zeros where fresh: a piece begins), and leaves its new state there,
        detached: truncated back-propagation through time."""
        state = None
        if fresh is not None and self.carried is not None:
            keep = (~fresh).to(self.carried[0].dtype)[None, :, None]  # (1, B, 1)
            state = (self.carried[0] * keep, self.carried[1] * keep)
        out, state = self.outputs(x, genre, state)  # (B, T, H)
        if fresh is not None:
            self.carried = (state[0].detach(), state[1].detach())
        logits = self.head(self.drop(out)).float()  # (B, T, V)
        loss_sum = F.cross_entropy(
            logits.reshape(-1, self.vocab_size), y.reshape(-1), ignore_index=self.pad_id, reduction="sum"
        )
        return loss_sum, (y != self.pad_id).sum()

    @torch.no_grad()
    def step(self, token: torch.Tensor, genre: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One generation step without dropout: token, genre (B,) -> logits (B, V), new state."""
        h = self.embed(token)  # (B, E)
        if self.genre is not None:
            h = torch.cat([h, self.genre(genre)], dim=-1)  # (B, E + G)
        out, state = lstm_step(self.lstm, h, state)
        return self.head(out), state

    def stepper(
        self,
        genres: torch.Tensor,
        int8: bool = False,
        recall: float = 0.0,
        phrasing: float = 1.0,
        form: FormPlan | None = None,
    ) -> LSTMStepper:
        """Generation steps for a batch of `genres` (B,), fused for the CPU, optionally int8
        (recall, phrasing, form: no memory here to use them). The fused weights are made once and kept
        while no parameter changes (each in-place update bumps a parameter's version)."""
        versions = (tuple(p._version for p in self.parameters()), self.head.weight.device)
        kept = self.__dict__.setdefault("_fused", {})  # int8 -> (versions, FusedLSTM)
        if int8 not in kept or kept[int8][0] != versions:
            kept[int8] = (versions, FusedLSTM(self.embed, self.genre, self.lstm, self.head, int8))
        return LSTMStepper(kept[int8][1], genres)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> float:
        """Forward multiply-adds x 2 per token (LSTM gates and head); training is ~3x this."""
        c = self.cfg
        lstm = sum(
            4 * c.hidden * ((c.embed + c.genre_embed if i == 0 else c.hidden) + c.hidden) for i in range(c.layers)
        )
        return 2.0 * (lstm + c.hidden * self.vocab_size)
