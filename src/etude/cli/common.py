"""Helpers every command module shares: argument types, the sampling and robot options, paths."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from etude.errors import InputError


def corpus_path(text: str) -> Path:
    """A corpus argument: a folder, a CSV manifest, or `builtin` for the exported built-in corpus."""
    if text != "builtin":
        return Path(text)
    from etude.data.builtin import default_dir

    path = default_dir()
    if not path.exists():
        raise InputError(f"the built-in corpus is not exported yet ({path}); run `etude corpus builtin` first")
    return path


def at_least(low: int):
    """An argparse type: a whole number >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, not {value}")
        return value

    return parse


def finite(low: float, inclusive: bool = False):
    """An argparse type: a finite number above low (or equal to it when `inclusive`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(
                f"must be a finite number {'>=' if inclusive else 'above'} {low:g}, not {text}"
            )
        return value

    return parse


def sampling_of(args: argparse.Namespace):
    from dataclasses import replace

    from etude.generation.generate import Sampling

    sampling = Sampling.of(args)
    return replace(sampling, spare=()) if args.cut_durations else sampling


def ask_of(args: argparse.Namespace, length: str, n: int = 1, primer: str | None = None):
    """The pieces a command's --genre, --seed, sampling and --robot flags ask for."""
    from etude.generation.generate import Ask

    return Ask(args.genre, n, length, sampling_of(args), args.seed, primer, robot_profile(args.robot), args.int8)


def optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


def add_sampling(p) -> None:
    """The sampling options shared by generate, perform (each with `add_seed_and_int8`) and
    evaluate."""
    from etude.generation.generate import Sampling

    house = Sampling()
    p.add_argument(
        "--temperature",
        type=float,
        default=house.temperature,
        help=f"below 1: safer, above 1: wilder (default {house.temperature:g})",
    )
    p.add_argument(
        "--top-k", type=int, default=house.top_k, help="sample among the k most likely tokens (default 0: all)"
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=house.top_p,
        help=f"nucleus sampling mass (default {house.top_p:g}); top-k and top-p leave note durations whole",
    )
    p.add_argument(
        "--cut-durations",
        action="store_true",
        help="let top-k and top-p cut note durations too (plain nucleus sampling; it shortens notes)",
    )
    p.add_argument(
        "--key-hold",
        type=float,
        default=house.key_hold,
        help=f"pull new notes toward the key the first section (--section-bars bars of 4 beats) set: a note's "
        f"log-probability moves by this times ln(its Krumhansl-Kessler rating / the tonic's), e.g. -1.05 x for "
        f"a major key's minor second (default {house.key_hold:g}: no pull; event models only)",
    )
    p.add_argument(
        "--recall",
        type=float,
        default=house.recall,
        help=f"for a model with a memory of the piece (pretrained:piano-memory): how much more it copies "
        f"what it has heard, added to its copy gate's log-odds (default {house.recall:g}: as trained; higher: "
        "more comes back and the music varies less, see docs/generation.md; other models refuse it)",
    )
    p.add_argument(
        "--phrasing",
        type=float,
        default=house.phrasing,
        help=f"for a model with a memory of the piece: how strongly it returns to passages whole bars back at "
        f"the distances it learned (phrases of 4 and 8 bars), a multiplier on that preference (default "
        f"{house.phrasing:g}; 1: as trained; other models refuse it)",
    )
    p.add_argument(
        "--form",
        default=house.form,
        metavar="LETTERS",
        help="for a model with a memory of the piece: a plan of sections, one letter each, like AABA: a section "
        "whose letter came before brings that section back (copied from its own earlier bars), a new letter is "
        "new music; after its last letter the plan starts again, a letter heard once in it (the B of AABA) new "
        f"music each time (default {house.form or 'none'}: no plan; encodings with bar tokens only; other models "
        "refuse it)",
    )
    p.add_argument(
        "--section-bars",
        type=at_least(1),
        default=house.section_bars,
        help=f"bars in each section of --form (default {house.section_bars}; counted from the second bar where "
        "the first is a pickup)",
    )


def add_seed_and_int8(p) -> None:
    """The seed and weight options of generate and perform."""
    p.add_argument("--seed", type=at_least(0), default=0, help="sampling seed (default 0)")
    p.add_argument(
        "--int8",
        action="store_true",
        help="int8 weights on the CPU: faster steps for big models (see docs/generation.md); default fp32, "
        "which repeats a seed exactly",
    )


def robot_profile(spec: str | None):
    from etude.robot.profile import load_profile

    return load_profile(spec) if spec else None


def add_robot_option(p) -> None:
    p.add_argument(
        "--robot",
        metavar="PROFILE",
        help=(
            "a robot profile (player-piano, two-hand-robot, toy-25, or a JSON file; see `etude robot "
            "profiles`): generated music stays within its limits, a file is adapted to them, and "
            "JSON lines carry the hand (and finger) of each note"
        ),
    )
