"""From MIDI files to arrays on disk: ingest, corpus and split, encodings, the prepared-data store,
batching windows, the built-in corpus.

The names below are imported on first use (PEP 562), so that importing a light module of this
package (the built-in corpus's style list, for `etude --help`) does not import MidiTok and torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "info": "summary",
    "open_encoding": "store",
    "open_split": "store",
    "prepare": "store",
    "read_meta": "store",
    "discover": "corpus",
    "load_encoding": "encoding",
    "make_encoding": "encoding",
    "roll_to_score": "encoding",
    "Piece": "midi",
    "Rejection": "midi",
    "load_pieces": "midi",
    "reduce_to_piano": "midi",
    "load_polyphonic": "polyphonic",
    "roll_piece_to_midi": "polyphonic",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
