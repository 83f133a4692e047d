"""The `etude` command: each sub-command parses its arguments and calls one library function.

Errors meant for the user (`EtudeError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from etude import __version__
from etude.config import ENCODINGS, DataConfig, EncodingConfig
from etude.errors import EtudeError, InputError

log = logging.getLogger("etude")


def _corpus_path(text: str) -> Path:
    """A corpus argument: a folder, a CSV manifest, or `builtin` for the exported built-in corpus."""
    if text != "builtin":
        return Path(text)
    from etude.data.builtin import default_dir

    path = default_dir()
    if not path.exists():
        raise InputError(f"the built-in corpus is not exported yet ({path}); run `etude corpus builtin` first")
    return path


# ----------------------------------------------------------------------------- corpus builtin
def cmd_corpus_builtin(args: argparse.Namespace) -> int:
    from etude.data.builtin import STYLES, default_dir, export_builtin

    out = Path(args.out) if args.out else default_dir()
    counts = export_builtin(out, per_genre=args.per_genre, styles=args.styles, workers=args.workers)
    described = {s.name: s.description for s in STYLES}
    print(f"built-in corpus in {out}")
    for name, n in counts.items():
        print(f"  {name:<11} {n:>5} pieces  {described[name]}")
    return 0


def _add_corpus(sub) -> None:
    from etude.data.builtin import STYLES

    p = sub.add_parser("corpus", help="make corpora", description="Make corpora.")
    ps = p.add_subparsers(dest="action", required=True)
    b = ps.add_parser(
        "builtin",
        help="export music21's shipped corpus to MIDI, one folder per style",
        description=(
            "Export music21's shipped corpus to MIDI files, one folder per style: "
            + "; ".join(f"{s.name} ({s.description})" for s in STYLES)
            + ". Resumable: pieces already exported are skipped. Cached under $ETUDE_HOME "
            "(default ~/.cache/etude) unless --out is given; `builtin` names it as a corpus."
        ),
    )
    b.add_argument("--per-genre", type=int, default=200, metavar="N", help="pieces per style (default 200, as in the study)")
    b.add_argument("--out", metavar="DIR", help="output folder (default $ETUDE_HOME/corpus/builtin)")
    b.add_argument("--styles", nargs="+", metavar="STYLE", help="only these styles (default all)")
    b.add_argument("--workers", type=int, metavar="N", help="parallel processes (default: all cores)")
    b.set_defaults(func=cmd_corpus_builtin)


# ----------------------------------------------------------------------------- data
def cmd_data_prepare(args: argparse.Namespace) -> int:
    from etude.data import info, prepare

    data = DataConfig(
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
        long_pieces=args.long_pieces,
        test_frac=args.test_frac,
        valid_frac=args.valid_frac,
        seed=args.seed,
        transpose=args.transpose,
    )
    encoding = EncodingConfig(
        name=args.encoding,
        beat_res=args.beat_res,
        velocities=args.velocities,
        frames_per_beat=args.frames_per_beat,
    )
    prepare(_corpus_path(args.corpus), Path(args.out), data, encoding, args.genre, args.workers, args.force)
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


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="prepare and inspect training data", description="Prepare and inspect training data.")
    ps = p.add_subparsers(dest="action", required=True)
    d = DataConfig()
    e = EncodingConfig()
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
    prep.add_argument("corpus", metavar="CORPUS", help="folder with one sub-folder per genre, a flat folder with --genre, a CSV manifest (path,genre), or `builtin`")
    prep.add_argument("--out", required=True, metavar="DIR", help="output folder")
    prep.add_argument("--genre", metavar="NAME", help="genre of MIDI files not in a genre sub-folder")
    prep.add_argument("--encoding", choices=ENCODINGS, default=e.name, help=f"event tokens via MidiTok, or an 88-key piano roll (default {e.name})")
    prep.add_argument("--beat-res", type=int, default=e.beat_res, metavar="N", help=f"event grid positions per beat (default {e.beat_res})")
    prep.add_argument("--velocities", type=int, default=e.velocities, metavar="N", help=f"event velocity bins (default {e.velocities})")
    prep.add_argument("--frames-per-beat", type=int, default=e.frames_per_beat, metavar="N", help=f"piano-roll frames per quarter note (default {e.frames_per_beat})")
    prep.add_argument("--min-seconds", type=float, default=d.min_seconds, metavar="S", help=f"reject shorter pieces (default {d.min_seconds:g})")
    prep.add_argument("--max-seconds", type=float, default=d.max_seconds, metavar="S", help=f"longer pieces are cut into clips or rejected (default {d.max_seconds:g})")
    prep.add_argument("--long-pieces", choices=("clip", "reject"), default=d.long_pieces, help="what to do with pieces longer than --max-seconds (default clip)")
    prep.add_argument("--test-frac", type=float, default=d.test_frac, metavar="F", help=f"share of each genre for testing (default {d.test_frac:g})")
    prep.add_argument("--valid-frac", type=float, default=d.valid_frac, metavar="F", help=f"share of each genre's training part for validation (default {d.valid_frac:g})")
    prep.add_argument("--transpose", type=int, default=d.transpose, metavar="K", help="add training copies shifted by ±1..K semitones (default 0: none)")
    prep.add_argument("--seed", type=int, default=d.seed, help=f"seed of the split (default {d.seed})")
    prep.add_argument("--workers", type=int, metavar="N", help="parallel processes (default: all cores)")
    prep.add_argument("--force", action="store_true", help="rebuild even when settings and files are unchanged")
    prep.set_defaults(func=cmd_data_prepare)

    inf = ps.add_parser("info", help="summarise a prepared data folder", description="Pieces and tokens per genre and split, durations, rejections by reason.")
    inf.add_argument("dir", metavar="DIR")
    inf.set_defaults(func=cmd_data_info)

    r2m = ps.add_parser(
        "roll2midi",
        help="write one piece of a piano-roll benchmark file as MIDI",
        description="Convert one piece of a polyphonic benchmark set (.mat or .pickle) to a MIDI file for listening.",
    )
    r2m.add_argument("file", metavar="FILE", help="JSB_Chorales.mat, Nottingham.pickle, ...")
    r2m.add_argument("--split", default="test", choices=("train", "valid", "test"))
    r2m.add_argument("--index", type=int, default=0, help="piece number within the split (default 0)")
    r2m.add_argument("--qpm", type=float, default=120.0, help="tempo in quarter notes per minute (default 120)")
    r2m.add_argument("--out", required=True, metavar="FILE.mid")
    r2m.set_defaults(func=cmd_data_roll2midi)


# ----------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etude",
        description="LSTM piano music generation: corpora, training data, models, generation, evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"etude {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_corpus(sub)
    _add_data(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except EtudeError as exc:
        print(f"etude: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("etude: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
