"""Models: the LSTM event generator (more in later modules)."""

from etude.models.lstm import LSTMGenerator

__all__ = ["LSTMGenerator"]
