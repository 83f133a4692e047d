"""The interface every generator offers to training, evaluation, benchmarks and generation.

Callers choose behaviour by what a model declares (`unit`, `estimated_likelihood`,
`remembers_piece`) and by the methods below, never by its name or class. Batches come from
`etude.data.windows`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from etude.config import AIS, TrainConfig
from etude.data.windows import Lanes, Windows
from etude.models.form_plan import FormPlan

FrameFilter = Callable[[torch.Tensor, int], torch.Tensor]  # (frame (n, K), frame number) -> frame to keep


@runtime_checkable
class Model(Protocol):
    """What the training loop needs of any generator."""

    unit: str  # "token": event tokens, loss in nats per token | "frame": piano rolls, nats per frame
    estimated_likelihood: bool  # the likelihood needs log Z estimated by AIS (an RBM output)
    # a memory of the piece it is writing, which Sampling's recall, phrasing and form steer
    remembers_piece: bool
    # trains with its state carried from window to window (train.carry_state)
    carries_state: bool

    def training_windows(self, rows: np.ndarray, index: np.ndarray, train: TrainConfig) -> Windows | Lanes:
        """The windows its training batches are drawn from (`batch(seed, it, batch_size, part)`),
        cut from a split's rows and index."""
        ...

    def objective(self, *batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss summed over a batch's targets, and their count."""
        ...


@runtime_checkable
class EventModel(Model, Protocol):
    """A next-token model over event tokens (unit "token")."""

    vocab_size: int
    pad_id: int

    def __call__(self, x: torch.Tensor, genre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, object]:
        """x (B, T) token ids, genre (B,) -> logits (B, T, V), loss (None), recurrent state."""
        ...

    def step(self, token: torch.Tensor, genre: torch.Tensor, state: object | None) -> tuple[torch.Tensor, object]:
        """One generation step: token, genre (B,) -> logits (B, V) and the new state."""
        ...

    def stepper(
        self,
        genres: torch.Tensor,
        int8: bool = False,
        recall: float = 0.0,
        phrasing: float = 1.0,
        form: FormPlan | None = None,
    ) -> Stepper:
        """The fast path generation runs: steps for a batch of `genres` (B,) on the CPU, the
        weights optionally int8; at fp32, recall 0, phrasing 1 and no form its logits equal
        `step`'s to float rounding. A model with a memory of the piece adds `recall` to its copy
        gate's log-odds, multiplies its bar-distance bias by `phrasing` and follows the `form`
        plan (Sampling's settings); a model without one ignores them."""
        ...


class Stepper(Protocol):
    """Generation steps of one batch, state kept inside: `prime` with the prefix, then `step`."""

    def prime(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T) token ids -> logits (B, V) of the token after them."""
        ...

    def step(self, token: torch.Tensor) -> torch.Tensor:
        """token (B,) -> logits (B, V) of the next token."""
        ...


@runtime_checkable
class FrameModel(Model, Protocol):
    """A model of piano-roll frames (unit "frame"): frames (B, T + 1, K) float, row 0 silent."""

    n_keys: int

    def start_biases(self, log_odds: torch.Tensor) -> None:
        """Start the visible biases at the training data's per-key log-odds (K,)."""
        ...

    def frame_nll(
        self, frames: torch.Tensor, mask: torch.Tensor, genre: torch.Tensor, ais: AIS | None = None
    ) -> torch.Tensor:
        """-log p of every target frame in nats (B, T): 0 where masked, nan where not scored."""
        ...

    def predict(self, frames: torch.Tensor, genre: torch.Tensor) -> torch.Tensor:
        """The most likely next frame given the true earlier ones: (B, T, K) of 0/1."""
        ...

    def sample(
        self,
        n: int,
        n_frames: int,
        genre: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        constrain: FrameFilter | None = None,
    ) -> torch.Tensor:
        """n new pieces (n, n_frames, K) of 0/1; genre (n,); each frame passed through
        `constrain` before the model is conditioned on it (robot limits)."""
        ...


class OutputHead(Protocol):
    """The distribution of one piano-roll frame given a recurrent state u (..., S)."""

    estimated_likelihood: bool

    def objective(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Per-frame training loss (...) for frames v (..., K)."""
        ...

    def nll(self, u: torch.Tensor, v: torch.Tensor, ais: AIS | None = None) -> torch.Tensor:
        """-log p(v | u) in nats (...)."""
        ...

    def sample(
        self, u: torch.Tensor, temperature: float, generator: torch.Generator | None, previous: torch.Tensor
    ) -> torch.Tensor:
        """One frame per row of u (B, S) -> (B, K); `previous` (B, K) is the frame before."""
        ...

    def predict(self, u: torch.Tensor) -> torch.Tensor:
        """The most likely frame per row of u (N, S) -> (N, K)."""
        ...

    def start_biases(self, log_odds: torch.Tensor) -> None: ...
