"""The classical RBM music model: an RBM over a window of W frames x 88 keys, no recurrence.

Trained by CD-k or persistent CD on windows cut from the pieces; generates by Gibbs sampling,
window after window, each window's chain started from the previous window. The visible and hidden
biases have a learned offset per genre. Likelihood: log p(window) = -F(window) - log Z, log Z
by AIS; a piece is scored in consecutive windows, so with W > 1 its last len % W frames are not
scored (frame_nll gives nan there).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from etude.config import AIS, ModelConfig, TrainConfig
from etude.data.windows import Windows
from etude.models.base import FrameFilter
from etude.models.rbm import RBM, ais_log_partition, free_energy, gibbs_chain, mean_field_frame, mean_log_z


class WindowRBM(nn.Module):
    unit = "frame"
    estimated_likelihood = True
    remembers_piece = False
    carries_state = False

    def __init__(self, n_genres: int, cfg: ModelConfig, n_keys: int = 88):
        super().__init__()
        self.cfg, self.n_genres, self.n_keys, self.window = cfg, n_genres, n_keys, cfg.window
        self.rbm = RBM(cfg.window * n_keys, cfg.head_hidden)
        self.genre_b = nn.Embedding(max(n_genres, 1), cfg.window * n_keys)
        self.genre_c = nn.Embedding(max(n_genres, 1), cfg.head_hidden)
        nn.init.zeros_(self.genre_b.weight)
        nn.init.zeros_(self.genre_c.weight)
        self._chains: torch.Tensor | None = None  # persistent CD

    @torch.no_grad()
    def start_biases(self, log_odds: torch.Tensor) -> None:
        """Visible biases at the data's per-key log-odds (K,), in every frame of the window."""
        self.rbm.b.copy_(log_odds.repeat(self.window))

    def training_windows(self, rows: np.ndarray, index: np.ndarray, train: TrainConfig) -> Windows:
        """Windows of exactly model.window frames inside pieces (no silent lead-in)."""
        return Windows(rows, index, self.window - 1, roll=True, lead=False, transpose=train.roll_transpose)

    def _biases(self, genre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rbm.b + self.genre_b(genre), self.rbm.c + self.genre_c(genre)  # (B, V), (B, H)

    def objective(
        self, frames: torch.Tensor, mask: torch.Tensor, genre: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CD surrogate summed over windows (B, W, K) and the number of frames it covers."""
        v = frames.reshape(frames.shape[0], -1).float()
        b, c = self._biases(genre)
        with torch.no_grad():
            start = (
                v if not self.cfg.persistent or self._chains is None or self._chains.shape != v.shape else self._chains
            )
            negative = gibbs_chain(start, self.rbm.W, b, c, self.cfg.cd_k)
            if self.cfg.persistent:
                self._chains = negative
        return (free_energy(v, self.rbm.W, b, c) - free_energy(negative, self.rbm.W, b, c)).sum(), mask.sum()

    @torch.no_grad()
    def log_partition(self, ais: AIS) -> torch.Tensor:
        """log Z of each genre's RBM by AIS (base: visible biases at the weights' zero): (genres,)."""
        b = self.rbm.b + self.genre_b.weight
        c = self.rbm.c + self.genre_c.weight
        gen = torch.Generator().manual_seed(ais.seed)
        return mean_log_z(ais_log_partition(self.rbm.W.cpu(), b.cpu(), c.cpu(), b.cpu(), ais.temps, ais.runs, gen))

    @torch.no_grad()
    def frame_nll(
        self, frames: torch.Tensor, mask: torch.Tensor, genre: torch.Tensor, ais: AIS | None = None
    ) -> torch.Tensor:
        """Each window's -log p spread evenly over its W frames: frames (B, T + 1, K) -> (B, T);
        0 where masked, nan on the frames past the last whole window. log Z by `ais` (AIS() when None)."""
        ais = ais or AIS()
        B, T1, K = frames.shape
        W, T = self.window, T1 - 1
        n_win = T // W
        out = torch.full((B, T), float("nan"), device=frames.device)
        log_z = self.log_partition(ais).to(frames.device)[genre]  # (B,); AIS runs on the CPU
        b, c = self._biases(genre)
        if n_win:
            v = frames[:, 1 : 1 + n_win * W].reshape(B, n_win, W * K).float()  # (B, n, W K)
            nll = free_energy(v, self.rbm.W, b[:, None], c[:, None]) + log_z[:, None]  # (B, n)
            out[:, : n_win * W] = (nll / W).repeat_interleave(W, dim=1)
        # a piece's windows end at its own length, not the batch's
        lengths = mask[:, 1:].sum(1)
        covered = torch.arange(T, device=frames.device)[None, :] < (lengths // W * W)[:, None]
        out = torch.where(covered, out, torch.full_like(out, float("nan")))
        return torch.where(mask[:, 1:], out, torch.zeros_like(out))

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, genre: torch.Tensor, steps: int = 25) -> torch.Tensor:
        """Each next frame by mean field with the W - 1 true frames before it clamped: (B, T, K)."""
        B, T1, K = frames.shape
        W = self.window
        T = T1 - 1
        if W > 1:  # the W - 1 frames before each target; row 0 of frames is already silent
            padded = torch.cat([frames.new_zeros(B, W - 2, K), frames[:, :-1]], 1).float()  # (B, W - 2 + T, K)
            past = padded.unfold(1, W - 1, 1).transpose(-1, -2).reshape(B, T, (W - 1) * K)
        else:
            past = frames.new_zeros(B, T, 0).float()
        b, c = self._biases(genre)
        Wm = self.rbm.W
        fixed = past @ Wm[: (W - 1) * K] + c[:, None]  # the clamped frames' input to the hidden units: (B, T, H)
        return mean_field_frame(Wm[(W - 1) * K :], b[:, None, (W - 1) * K :], fixed, steps)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        n_frames: int,
        genre: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        constrain: FrameFilter | None = None,
        steps: int = 100,
    ) -> torch.Tensor:
        """n pieces (n, n_frames, K): one Gibbs chain per piece, `steps` sweeps per window, each
        window's frames passed through `constrain` (frame, frame number) in order."""
        b, c = self._biases(genre)
        v = (torch.rand(b.shape, generator=generator) < torch.sigmoid(b)).float()
        windows = []
        for w in range(-(-n_frames // self.window)):
            v = gibbs_chain(v, self.rbm.W, b, c, steps, generator, temperature)
            frames = v.reshape(n, self.window, self.n_keys)
            if constrain is not None:
                frames = torch.stack([constrain(frames[:, j], w * self.window + j) for j in range(self.window)], 1)
                v = frames.reshape(n, -1)
            windows.append(frames)
        return torch.cat(windows, 1)[:, :n_frames]
