"""`etude evaluate` and `etude classifier`: generated music against the original, and the genre judge."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from etude.cli.common import (
    add_sampling,
    at_least,
    optional_path,
    sampling_of,
)
from etude.data.corpus import HELD_OUT
from etude.errors import InputError


def cmd_evaluate(args: argparse.Namespace) -> int:
    from etude.evaluation.compare import evaluate
    from etude.models.pretrained import model_path

    report = evaluate(
        model_path(args.run),
        Path(args.out),
        baselines=[Path(b) for b in args.baseline],
        classifier=optional_path(args.classifier),
        n=args.n,
        length=args.length,
        seed=args.seed,
        soundfont=optional_path(args.soundfont),
        data=optional_path(args.data),
        sampling=sampling_of(args),
        split=args.split,
    )
    lstm = report["spectral"]["lstm"]
    print(
        f"{args.out}/report.html: LSTM vs original: log-spectral distance {lstm['log_spectral_distance_db']:.2f} dB, "
        f"JS distance {lstm['js_distance']:.3f}; genre adherence "
        f"{report['genre']['adherence']['lstm']['share_as_labelled']:.2f} "
        f"(classifier test accuracy {report['genre']['test']['accuracy']:.2f}); longest copied run "
        f"{report['memorisation']['lstm']['max']} notes ({report['memorisation']['lstm']['max_bars']:g} bars, "
        f"{report['memorisation']['lstm']['flagged_copies']} pieces flagged); {report['seconds']} s"
    )
    return 0


def add_evaluate(sub, help: str) -> None:
    p = sub.add_parser(
        "evaluate",
        help=help,
        description=(
            "Generate N pieces from RUN (and from each --baseline run), take N test pieces of RUN's "
            "data (each cut to its first LENGTH), render all with one SoundFont, and compare: mean "
            "spectra and spectrograms (log-spectral and Jensen-Shannon distances), musical "
            "statistics (Yang & Lerch KL and overlapped area, overall and per genre), genre "
            "adherence by a classifier (trained on RUN's data unless --classifier), longest run "
            "copied from the training set (notes and bars), and test-set likelihood (also by position in "
            "whole pieces, beside the model mixed with a copy model of the piece). "
            "Event models sample with the sampling options below (generate's; piano-roll baselines ignore them); "
            "report.json records them. Writes report.html (self-contained), report.json and PNG figures into --out."
        ),
    )
    p.add_argument(
        "run",
        metavar="RUN",
        help="run folder or checkpoint (`pretrained`, `pretrained:builtin`: a shipped model, with --data)",
    )
    p.add_argument(
        "--data", metavar="DATA_DIR", help="prepared data to take the real pieces from (default: the run's own)"
    )
    p.add_argument(
        "--split",
        choices=HELD_OUT,
        default=HELD_OUT[0],
        help="the held-out split whose pieces the generated ones are compared with and whose likelihood is "
        "measured (default test: the figures to report; valid: for choosing settings without looking at test)",
    )
    p.add_argument(
        "--baseline", action="append", default=[], metavar="RUN2", help="another run to compare (repeatable)"
    )
    p.add_argument("--classifier", metavar="CLF", help="a classifier folder from `etude classifier train`")
    p.add_argument("--n", type=at_least(1), default=20, help="pieces per set (default 20)")
    p.add_argument("--length", default="30s", help="length of generated pieces (default 30s)")
    p.add_argument(
        "--seed",
        type=at_least(0),
        default=0,
        help="sampling seed of the generated sets (default 0)",
    )
    add_sampling(p)
    p.add_argument("--soundfont", metavar="SF2", help="SoundFont for rendering (default: the bundled General MIDI one)")
    p.add_argument("--out", required=True, metavar="REPORT_DIR")
    p.set_defaults(func=cmd_evaluate)


def add_classifier(sub, help: str) -> None:
    c = sub.add_parser(
        "classifier",
        help=help,
        description=(
            "The genre judge: train one on a prepared data folder, measure how well it holds when whole "
            "composers or collections are left out of its training, or classify MIDI files with it."
        ),
    )
    cs = c.add_subparsers(dest="action", required=True)
    _add_train(cs)

    o = cs.add_parser(
        "leave-one-out",
        help="accuracy on each composer of a genre when it is left out of training",
        description=(
            "For each composer of GENRE in DATA (the file name up to its first underscore, within the genre's "
            "folder), train a listening judge without that composer and classify the composer's pieces: how "
            "well the judge knows the genre rather than the pieces it was trained on."
        ),
    )
    o.add_argument("data", metavar="DATA")
    o.add_argument("--genre", required=True)
    o.add_argument("--iterations", type=at_least(1), help="training steps (default: the listening judge's own)")
    o.set_defaults(func=cmd_leave_one_out)

    k = cs.add_parser(
        "classify",
        help="genre probabilities of MIDI files",
        description="Classify MIDI files (or every MIDI file under a folder) with a trained classifier.",
    )
    k.add_argument("classifier", metavar="CLF")
    k.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER")
    k.add_argument("--genre", help="at the end, print the share of the files recognised as GENRE")
    k.set_defaults(func=cmd_classify)


def _add_train(cs) -> None:
    t = cs.add_parser(
        "train",
        help="train on a prepared data folder",
        description=(
            "Train a genre judge on DATA's training split. Prints its accuracy on the test pieces, whole and "
            "in their first 30 s, per genre, with the confusion matrix; its accuracy on the --hold-out pieces; "
            "and the share of test pieces whose genre survives changes that do not change the music (tempo, "
            "dynamics, key, onsets on a grid or jittered, re-timed by the beat tracker, legato, staccato)."
        ),
    )
    t.add_argument("data", metavar="DATA")
    t.add_argument("--out", required=True, metavar="CLF", help="folder to save the judge in")
    t.add_argument(
        "--kind",
        choices=("listening", "tokens"),
        default="listening",
        help=(
            "listening (default): features of what a listener hears (key-relative pitch classes, melody and "
            "bass motion, harmony, rhythm between onsets, register, texture), blind to how a file was made; "
            "tokens: an LSTM over event tokens (the first version)"
        ),
    )
    t.add_argument("--iterations", type=at_least(1), help="training steps (default: the kind's own, 300 for both)")
    t.add_argument(
        "--hold-out",
        action="append",
        default=[],
        metavar="PREFIX",
        help=(
            "leave pieces whose id starts with PREFIX out of training and report accuracy on them, e.g. "
            "classical/chopin for a composer (repeatable; ids are paths under the corpus, as in pieces.csv)"
        ),
    )
    t.add_argument(
        "--hears",
        choices=("notes", "all"),
        help=(
            "--kind tokens only: notes (its default) reads bars, positions, pitches and durations, blind to tempo, "
            "time signature and dynamics; all: every token but the genre's"
        ),
    )
    t.add_argument(
        "--transpose",
        type=at_least(0),
        metavar="K",
        help="--kind tokens only: train on windows shifted by a random -K..K semitones (its default: 5)",
    )
    t.add_argument("--no-invariance", action="store_true", help="skip the invariance check")
    t.set_defaults(func=cmd_classifier_train)


def _judge_config(args: argparse.Namespace):
    from etude.evaluation.classifier import ListeningConfig, TokenConfig

    if args.kind == "tokens":
        return TokenConfig(**_given(iterations=args.iterations, hears=args.hears, transpose=args.transpose))
    if args.hears is not None or args.transpose is not None:
        raise InputError("--hears and --transpose are options of --kind tokens")
    return ListeningConfig(**_given(iterations=args.iterations))


def _given(**options) -> dict:
    """The options the user gave (not None): the rest keep the config's own defaults."""
    return {k: v for k, v in options.items() if v is not None}


def _print_confusion(genres: list[str], confusion: list[list[int]]) -> None:
    print("confusion of whole pieces (rows true, columns predicted): " + ", ".join(genres))
    for g, row in zip(genres, confusion):
        print(f"  {g:<12} {' '.join(f'{v:4d}' for v in row)}")


def cmd_classifier_train(args: argparse.Namespace) -> int:
    from etude.evaluation.judging import invariance, train_classifier

    clf, info = train_classifier(Path(args.data), Path(args.out), _judge_config(args), hold_out=tuple(args.hold_out))
    opening = info["opening"]
    print(
        f"{args.out}: {args.kind} judge; test accuracy {info['accuracy']:.3f} whole, {opening['accuracy']:.3f} "
        f"in the first 30 s, on {info['pieces']} pieces"
    )
    for g in info["genres"]:
        whole, first = info["per_genre"][g], opening["per_genre"][g]
        if whole is not None:
            print(f"  {g:<12} whole {whole:.3f}   first 30 s {first:.3f}")
    _print_confusion(info["genres"], info["confusion"])
    if "held_out" in info:
        held = info["held_out"]
        print(f"held out ({', '.join(held['prefixes'])}): accuracy {held['accuracy']:.3f} on {held['pieces']} pieces")
    if not args.no_invariance:
        shares = invariance(clf, Path(args.data))
        print("same genre predicted after: " + ", ".join(f"{name} {share:.3f}" for name, share in shares.items()))
    return 0


def cmd_leave_one_out(args: argparse.Namespace) -> int:
    from etude.evaluation.classifier import ListeningConfig
    from etude.evaluation.judging import leave_one_out

    cfg = ListeningConfig(**_given(iterations=args.iterations))
    result = leave_one_out(Path(args.data), args.genre, cfg, progress=True)
    for group, r in result["groups"].items():
        print(f"  {group:<32} {r['accuracy']:.3f} of {r['pieces']}")
    print(
        f"{args.genre}: {result['accuracy']:.3f} of {result['pieces']} pieces recognised with their composer left out"
    )
    return 0


def _midi_files(paths: list[str]) -> list[Path]:
    """The files named, with every .mid/.midi file under a folder named, in order."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            out += sorted(f for f in path.rglob("*") if f.suffix.lower() in (".mid", ".midi"))
        else:
            out.append(path)
    return out


def cmd_classify(args: argparse.Namespace) -> int:
    from etude.data.midi import read_piece
    from etude.evaluation.classifier import Classifier

    clf = Classifier.load(Path(args.classifier))
    if args.genre is not None and args.genre not in clf.genres:
        raise InputError(f"unknown genre {args.genre!r}; the classifier knows {', '.join(clf.genres)}")
    files = _midi_files(args.files)
    if not files:
        raise InputError(f"no MIDI files in {', '.join(args.files)}")
    failed, verdicts = 0, []
    for f in files:
        try:
            score = read_piece(f)
        except InputError as exc:
            print(f"etude: {exc}", file=sys.stderr)
            failed += 1
            continue
        probs = clf.classify_score(score)
        ranked = sorted(zip(clf.genres, probs), key=lambda x: -x[1])
        verdicts.append(ranked[0][0])
        print(f"{f}: {ranked[0][0]}  " + "  ".join(f"{g} {p:.2f}" for g, p in ranked))
    if args.genre is not None and verdicts:
        share = verdicts.count(args.genre) / len(verdicts)
        print(f"recognised as {args.genre}: {share:.3f} of {len(verdicts)} files")
    return 2 if failed else 0
