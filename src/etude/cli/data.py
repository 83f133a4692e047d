"""`etude data`: prepare a corpus into arrays, summarise a prepared folder, a benchmark piece as MIDI."""

from __future__ import annotations

import argparse
from pathlib import Path

from etude.cli.common import (
    at_least,
    corpus_path,
    finite,
)
from etude.config import ENCODINGS, DataConfig, EncodingConfig


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from etude.data import info, prepare
    from etude.data.isolation import Limits

    data = DataConfig(
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
        long_pieces=args.long_pieces,
        test_frac=args.test_frac,
        valid_frac=args.valid_frac,
        seed=args.seed,
        transpose=args.transpose,
        retime=args.retime,
    )
    encoding = EncodingConfig(
        name=args.encoding,
        beat_res=args.beat_res,
        velocities=args.velocities,
        frames_per_beat=args.frames_per_beat,
    )
    if Path(args.corpus).suffix.lower() in (".mat", ".pickle", ".pkl"):
        from etude.data.polyphonic import prepare_rolls

        prepare_rolls(Path(args.corpus), Path(args.out), force=args.force)  # keeps the set's own split
    else:
        limits = Limits(seconds=args.file_timeout, memory_mb=args.file_memory)
        prepare(
            corpus_path(args.corpus),
            Path(args.out),
            data,
            encoding,
            args.genre,
            args.workers,
            args.force,
            args.append,
            limits,
        )
    print(info(Path(args.out)))
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from etude.data import info

    print(info(Path(args.dir)))
    return 0


def cmd_data_roll2midi(args: argparse.Namespace) -> int:
    from etude.data import roll_piece_to_midi

    score = roll_piece_to_midi(Path(args.file), args.split, args.index, Path(args.out), qpm=args.qpm)
    print(f"{args.out}: {score.note_num()} notes")
    return 0


def _add_data_prepare(ps) -> None:
    prep = ps.add_parser(
        "prepare",
        help="encode a MIDI corpus into flat arrays for training",
        description=(
            "Read every .mid/.midi file of CORPUS with symusic, reduce it to one piano part "
            "(sustain pedal applied), reject bad files with a reason, drop duplicates, split each "
            "genre into train/valid/test (saved to split.json and reused), encode, and write flat "
            "arrays read by np.memmap. Running it again with the same settings does nothing."
        ),
    )
    prep.add_argument(
        "corpus",
        metavar="CORPUS",
        help=(
            "folder with one sub-folder per genre, a flat folder with --genre, a CSV manifest (path,genre), "
            "`builtin`, or a polyphonic benchmark set (.mat or .pickle: piano rolls, its own split)"
        ),
    )
    prep.add_argument("--out", required=True, metavar="DIR", help="output folder")
    prep.add_argument("--genre", metavar="NAME", help="genre of MIDI files not in a genre sub-folder")
    _add_encoding_options(prep)
    _add_split_options(prep)
    prep.add_argument("--workers", type=at_least(1), metavar="N", help="parallel processes (default: all cores)")
    prep.add_argument(
        "--file-timeout",
        type=finite(0),
        default=60.0,
        metavar="S",
        help="reject a file whose reading takes longer (default 60 s)",
    )
    prep.add_argument(
        "--file-memory",
        type=at_least(64),
        default=4096,
        metavar="MB",
        help="reject a file whose reading needs more memory (default 4096 MB)",
    )
    prep.add_argument("--force", action="store_true", help="rebuild even when settings and files are unchanged")
    prep.add_argument(
        "--append",
        action="store_true",
        help="read only files not yet in DIR and append their pieces (same settings and genres)",
    )
    prep.set_defaults(func=cmd_data_prepare)


def _add_encoding_options(prep) -> None:
    """How pieces become arrays (EncodingConfig)."""
    e = EncodingConfig()
    prep.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default=e.name,
        help=f"event tokens via MidiTok, or an 88-key piano roll (default {e.name})",
    )
    prep.add_argument(
        "--beat-res",
        type=int,
        default=e.beat_res,
        metavar="N",
        help=f"event grid positions per beat (default {e.beat_res})",
    )
    prep.add_argument(
        "--velocities",
        type=int,
        default=e.velocities,
        metavar="N",
        help=f"event velocity bins (default {e.velocities})",
    )
    prep.add_argument(
        "--frames-per-beat",
        type=int,
        default=e.frames_per_beat,
        metavar="N",
        help=f"piano-roll frames per quarter note (default {e.frames_per_beat})",
    )


def _add_split_options(prep) -> None:
    """Which pieces are kept and how they are split (DataConfig)."""
    d = DataConfig()
    prep.add_argument(
        "--min-seconds",
        type=float,
        default=d.min_seconds,
        metavar="S",
        help=f"reject shorter pieces (default {d.min_seconds:g})",
    )
    prep.add_argument(
        "--max-seconds",
        type=float,
        default=d.max_seconds,
        metavar="S",
        help=f"longer pieces are cut into clips or rejected (default {d.max_seconds:g})",
    )
    prep.add_argument(
        "--long-pieces",
        choices=("clip", "reject"),
        default=d.long_pieces,
        help="what to do with pieces longer than --max-seconds (default clip)",
    )
    prep.add_argument(
        "--test-frac",
        type=float,
        default=d.test_frac,
        metavar="F",
        help=f"share of each genre for testing (default {d.test_frac:g})",
    )
    prep.add_argument(
        "--valid-frac",
        type=float,
        default=d.valid_frac,
        metavar="F",
        help=f"share of each genre's training part for validation (default {d.valid_frac:g})",
    )
    prep.add_argument(
        "--transpose",
        type=int,
        default=d.transpose,
        metavar="K",
        help="add training copies shifted by ±1..K semitones (default 0: none)",
    )
    prep.add_argument("--seed", type=at_least(0), default=d.seed, help=f"seed of the split (default {d.seed})")
    prep.add_argument(
        "--retime",
        choices=("auto", "off"),
        default=d.retime,
        help=(
            "auto (default): a piece whose notes do not sit on its file's beat grid (a performance, a "
            "piano roll, a grid shifted off the beat) is re-timed onto the beats and bars found from its "
            "notes; off: every file's own grid"
        ),
    )


def add_data(sub, help: str) -> None:
    p = sub.add_parser("data", help=help, description="Prepare and inspect training data.")
    ps = p.add_subparsers(dest="action", required=True)
    _add_data_prepare(ps)

    inf = ps.add_parser(
        "info",
        help="summarise a prepared data folder",
        description="Pieces and tokens per genre and split, durations, rejections by reason.",
    )
    inf.add_argument("dir", metavar="DIR")
    inf.set_defaults(func=cmd_data_info)

    r2m = ps.add_parser(
        "roll2midi",
        help="write one piece of a piano-roll benchmark file as MIDI",
        description="Convert one piece of a polyphonic benchmark set (.mat or .pickle) to a MIDI file for listening.",
    )
    r2m.add_argument("file", metavar="FILE", help="JSB_Chorales.mat, Nottingham.pickle, ...")
    r2m.add_argument("--split", default="test", choices=("train", "valid", "test"))
    r2m.add_argument("--index", type=at_least(0), default=0, help="piece number within the split (default 0)")
    r2m.add_argument("--qpm", type=finite(0), default=120.0, help="tempo in quarter notes per minute (default 120)")
    r2m.add_argument("--out", required=True, metavar="FILE.mid")
    r2m.set_defaults(func=cmd_data_roll2midi)
