"""From MIDI files to arrays on disk: ingest, corpus and split, encodings, cache, built-in corpus."""

from etude.data.cache import info, open_encoding, open_split, prepare, read_meta
from etude.data.corpus import discover
from etude.data.encoding import load_encoding, make_encoding, roll_to_score
from etude.data.midi import Piece, Rejection, load_pieces, reduce_to_piano
from etude.data.polyphonic import load_polyphonic, roll_piece_to_midi

__all__ = [
    "Piece",
    "Rejection",
    "discover",
    "info",
    "load_encoding",
    "load_pieces",
    "load_polyphonic",
    "make_encoding",
    "open_encoding",
    "open_split",
    "prepare",
    "read_meta",
    "reduce_to_piano",
    "roll_piece_to_midi",
    "roll_to_score",
]
