"""Piano-roll models with a recurrent state: an LSTM reads the frames so far and an output head
gives the next frame's distribution over the 88 keys.

Heads (etude.models.base.OutputHead): `lstm` independent Bernoulli per key; `lstm-nade` NADE
(etude.models.nade); `rnn-rbm` an RBM (etude.models.rnn_rbm). Batches (etude.data.windows) are frames (B, T + 1, K)
float whose first row is the silent frame before the piece, a mask (B, T + 1) of real frames, and
genres (B,). Frame t + 1 is predicted from frames 0..t, so every real frame is a target.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from etude.config import AIS, ModelConfig, TrainConfig
from etude.data.windows import Windows
from etude.models.base import FrameFilter, OutputHead
from etude.models.lstm import State, lstm_step


class BernoulliHead(nn.Module):
    """Each key on with its own probability sigmoid(out(u)), independently of the others."""

    estimated_likelihood = False

    def __init__(self, state_size: int, n_keys: int):
        super().__init__()
        self.out = nn.Linear(state_size, n_keys)

    def objective(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """-log p(v | u), keys independent: (..., S), (..., K) -> (...)."""
        return F.binary_cross_entropy_with_logits(self.out(u), v, reduction="none").sum(-1)

    def nll(self, u: torch.Tensor, v: torch.Tensor, ais: AIS | None = None) -> torch.Tensor:
        """Exact: the objective (`ais` is not needed)."""
        return self.objective(u, v)

    @torch.no_grad()
    def start_biases(self, log_odds: torch.Tensor) -> None:
        self.out.bias.copy_(log_odds)

    @torch.no_grad()
    def sample(
        self, u: torch.Tensor, temperature: float, generator: torch.Generator | None, previous: torch.Tensor
    ) -> torch.Tensor:
        p = torch.sigmoid(self.out(u) / temperature)
        return (torch.rand(p.shape, generator=generator) < p).float()

    @torch.no_grad()
    def predict(self, u: torch.Tensor) -> torch.Tensor:
        return (self.out(u) > 0).float()


class RollModel(nn.Module):
    """Frame + genre embedding -> stacked LSTM -> dropout (1 - keep_prob) -> output head (its
    state size is cfg.hidden, its keys n_keys). Built from a validated config (etude.models.registry)."""

    unit = "frame"
    remembers_piece = False
    carries_state = False

    def __init__(self, n_genres: int, cfg: ModelConfig, head: OutputHead, n_keys: int = 88):
        super().__init__()
        self.cfg, self.n_genres, self.n_keys = cfg, n_genres, n_keys
        p_drop = 1.0 - cfg.keep_prob
        self.genre = nn.Embedding(max(n_genres, 1), cfg.genre_embed) if cfg.genre_embed else None
        self.lstm = nn.LSTM(
            n_keys + cfg.genre_embed,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            dropout=p_drop if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(p_drop)
        self.in_drop = nn.Dropout(1.0 - cfg.input_keep)
        self.head = head
        self.estimated_likelihood = head.estimated_likelihood

    def training_windows(self, rows: np.ndarray, index: np.ndarray, train: TrainConfig) -> Windows:
        """Windows of train.seq_len + 1 frames, which may start at the silent frame before a piece,
        each shifted by up to train.roll_transpose keys."""
        return Windows(
            rows, index, train.seq_len, roll=True, transpose=train.roll_transpose, start_share=train.start_share
        )

    def start_biases(self, log_odds: torch.Tensor) -> None:
        """Start the output's visible biases at the training data's per-key log-odds (K,): without
        this, an output at p = 0.5 spends many steps unlearning it."""
        self.head.start_biases(log_odds)

    def _input(self, frames: torch.Tensor, genre: torch.Tensor) -> torch.Tensor:
        if self.genre is None:
            return frames
        g = self.genre(genre)
        if frames.dim() == 3:
            g = g[:, None, :].expand(-1, frames.shape[1], -1)
        return torch.cat([frames, g], dim=-1)

    def states(self, frames: torch.Tensor, genre: torch.Tensor) -> torch.Tensor:
        """The state that predicts each next frame: frames (B, T + 1, K) -> (B, T, H)."""
        out, _ = self.lstm(self._input(self.in_drop(frames[:, :-1]), genre))
        return self.drop(out)

    def objective(
        self, frames: torch.Tensor, mask: torch.Tensor, genre: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss summed over real target frames, and their count. The head sees only
        real frames (padding costs the LSTM, not the NADE or RBM output)."""
        m = mask[:, 1:]
        per_frame = self.head.objective(self.states(frames, genre).float()[m], frames[:, 1:][m])  # (frames,)
        return per_frame.sum(), m.sum()

    @torch.no_grad()
    def frame_nll(
        self, frames: torch.Tensor, mask: torch.Tensor, genre: torch.Tensor, ais: AIS | None = None
    ) -> torch.Tensor:
        """-log p(frame | earlier frames) in nats for every target frame (B, T); 0 where masked.
        `ais` sets an RBM output's estimate of log Z (its default when None)."""
        return self.head.nll(self.states(frames, genre), frames[:, 1:], ais) * mask[:, 1:]

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, genre: torch.Tensor) -> torch.Tensor:
        """The most likely next frame (greedy) given the true earlier ones: (B, T, K)."""
        u = self.states(frames, genre)
        return self.head.predict(u.reshape(-1, u.shape[-1])).reshape(u.shape[0], u.shape[1], -1)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        n_frames: int,
        genre: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        constrain: FrameFilter | None = None,
    ) -> torch.Tensor:
        """n new pieces of n_frames frames: (n, n_frames, K) of 0/1; genre (n,). `constrain`
        (frame (n, K), frame number) -> frame changes each frame before the model hears it."""
        frame = torch.zeros(n, self.n_keys)
        state: State | None = None
        out = []
        for step in range(n_frames):
            u, state = lstm_step(self.lstm, self._input(frame, genre), state)
            frame = self.head.sample(u, temperature, generator, frame)
            if constrain is not None:
                frame = constrain(frame, step)
            out.append(frame)
        return torch.stack(out, 1)
