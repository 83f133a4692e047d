"""Models: the LSTM event generator, piano-roll LSTMs (Bernoulli, NADE, RBM outputs), the RBM."""

from etude.models.lstm import LSTMGenerator
from etude.models.registry import build_model

__all__ = ["LSTMGenerator", "build_model"]
