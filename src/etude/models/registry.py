"""Every generator étude can train, by name and by the data it models; the one place that maps a
config's model name to a class. Callers use the built model through etude.models.base."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from etude.config import ModelConfig, check_model, validate
from etude.data.encoding import Encoding, PianoRollEncoding
from etude.models.lstm import LSTMGenerator
from etude.models.memory import MemoryLSTM
from etude.models.nade import NADEHead, NADEMixture
from etude.models.rnn_rbm import RBMHead
from etude.models.roll_lstm import BernoulliHead, RollModel
from etude.models.window_rbm import WindowRBM

N_KEYS = 88  # piano-roll keys, MIDI 21..108 (etude.data.encoding)
Builder = Callable[[ModelConfig, Encoding, int], nn.Module]  # (settings, encoding, piano-roll keys)

# (data, model name) -> builder; data is "events" (event tokens) or "rolls" (piano rolls)
REGISTRY: dict[tuple[str, str], Builder] = {
    ("events", "lstm"): lambda cfg, enc, k: LSTMGenerator(enc.vocab_size, len(enc.genres), cfg, pad_id=enc.pad_id),
    ("events", "lstm-memory"): lambda cfg, enc, k: MemoryLSTM(
        enc.vocab_size, len(enc.genres), cfg, pad_id=enc.pad_id, bar_id=enc.bar_id, vocab=enc.vocab
    ),
    ("rolls", "lstm"): lambda cfg, enc, k: RollModel(len(enc.genres), cfg, BernoulliHead(cfg.hidden, k), k),
    ("rolls", "lstm-nade"): lambda cfg, enc, k: RollModel(
        len(enc.genres),
        cfg,
        NADEHead(cfg.hidden, k, cfg.head_hidden)
        if cfg.head_orders == 1
        else NADEMixture(cfg.hidden, k, cfg.head_hidden, cfg.head_orders),
        k,
    ),
    ("rolls", "rnn-rbm"): lambda cfg, enc, k: RollModel(
        len(enc.genres), cfg, RBMHead(cfg.hidden, k, cfg.head_hidden, cfg.cd_k), k
    ),
    ("rolls", "rbm"): lambda cfg, enc, k: WindowRBM(len(enc.genres), cfg, k),
}


def data_kind(encoding: Encoding) -> str:
    return "rolls" if isinstance(encoding, PianoRollEncoding) else "events"


def build_model(cfg: ModelConfig, encoding: Encoding, n_keys: int = N_KEYS) -> nn.Module:
    """The model `cfg` names for the data's encoding, its settings validated first. `n_keys`
    narrows a piano-roll model's keyboard (the tests' exact likelihoods over every frame)."""
    validate(cfg, "model.")
    kind = data_kind(encoding)
    check_model(cfg.name, kind == "rolls")
    return REGISTRY[(kind, cfg.name)](cfg, encoding, n_keys)
