"""étude: LSTM-based piano music generation.

The Python API mirrors the command line: each sub-command calls one function from here.
"""

__version__ = "0.1.0"

from etude.errors import CheckpointError, ConfigError, EtudeError, InputError

__all__ = ["__version__", "EtudeError", "InputError", "ConfigError", "CheckpointError"]
