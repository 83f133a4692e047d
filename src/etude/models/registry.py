"""Build the model a config names, for the data's encoding."""

from __future__ import annotations

from torch import nn

from etude.config import ModelConfig, check_model
from etude.data.encoding import Encoding, PianoRollEncoding
from etude.models.lstm import LSTMGenerator
from etude.models.roll_lstm import RollModel
from etude.models.window_rbm import WindowRBM


def build_model(cfg: ModelConfig, encoding: Encoding) -> nn.Module:
    """LSTMGenerator for event tokens; RollModel or WindowRBM for piano rolls."""
    pianoroll = isinstance(encoding, PianoRollEncoding)
    check_model(cfg.name, pianoroll)
    n_genres = len(encoding.genres)
    if not pianoroll:
        return LSTMGenerator(encoding.vocab_size, n_genres, cfg, pad_id=encoding.pad_id)
    if cfg.name == "rbm":
        return WindowRBM(n_genres, cfg)
    return RollModel(n_genres, cfg)


def is_roll_model(model: nn.Module) -> bool:
    return isinstance(model, (RollModel, WindowRBM))
