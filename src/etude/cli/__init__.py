"""The `etude` command: one module per command group, each parsing its arguments and calling one
library function. A command's module is imported only when that command runs, so `etude --help`
stays fast; `COMMANDS` lists them.

Errors meant for the user (`EtudeError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from etude import __version__
from etude.errors import EtudeError

log = logging.getLogger("etude")

# command -> (module of etude.cli, the function that adds its parser, the one line of `etude --help`)
COMMANDS = {
    "corpus": ("corpus", "add_corpus", "make corpora: the built-in one, or the public piano sets"),
    "data": ("data", "add_data", "prepare and inspect training data"),
    "train": ("train", "add_train", "train a generator (LSTM, or on piano rolls also LSTM-NADE, RNN-RBM, RBM)"),
    "generate": ("generate", "add_generate", "sample new pieces as MIDI, WAV and PNG"),
    "perform": ("perform", "add_perform", "play in real time (MIDI port, JSON lines, OSC, TCP), or answer a player"),
    "studio": ("studio", "add_studio", "generation in the browser: a local web service and its page"),
    "robot": ("robot", "add_robot", "check or adapt pieces for a robot profile"),
    "evaluate": ("evaluate", "add_evaluate", "generated music against the original: spectra, statistics, form, genre"),
    "classifier": ("evaluate", "add_classifier", "the genre judge: train a classifier, classify MIDI files"),
    "experiment": ("experiment", "add_experiment", "re-run the hyper-parameter study"),
    "polyphonic": (
        "polyphonic",
        "add_polyphonic",
        "piano-roll models on the polyphonic benchmark sets (JSB, Nottingham, MuseData, Piano-midi.de)",
    ),
}
EXTRA_OVERRIDES = ("train", "polyphonic")
# old command -> its new name ("benchmark" now means only the speed scripts of benchmarks/)
RENAMED = {"benchmark": "polyphonic"}  # commands that take --section.key=value settings


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (and exit code 2), like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the command named there is built in full (its module
    imported), the others listed by name and help line."""
    parser = _Parser(
        prog="etude",
        description="LSTM piano music generation: corpora, training data, models, generation, evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"etude {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for name, (module, adder, help) in COMMANDS.items():
        if wanted is None or wanted == name:
            getattr(importlib.import_module(f"etude.cli.{module}"), adder)(sub, help)
        else:
            sub.add_parser(name, help=help)
    return parser


# OpenMP threads that spin while they wait take the cores a busy neighbour needs, and wait for
# it in turn: beside one CPU-bound process, training on 2 cores ran 10 x slower with torch's
# default waiting, 1.7 x with passive waiting, which costs 4-9 % on a quiet machine
# (benchmarks/busy_neighbour.py). Set before torch is imported; a user's own value is kept.
WAIT_POLICY = "PASSIVE"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    if command in RENAMED:
        print(f"etude: error: `etude {command}` is now `etude {RENAMED[command]}`", file=sys.stderr)
        return 2
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command not in EXTRA_OVERRIDES or not all(e.startswith("--") and "=" in e for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = extra
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except EtudeError as exc:
        print(f"etude: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the system refused (permissions, a full disk, /proc, /dev/null)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"etude: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print("etude: error: out of memory (try smaller settings: --n, --length, train.batch_size)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("etude: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
