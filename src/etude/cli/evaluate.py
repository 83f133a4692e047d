"""`etude evaluate` and `etude classifier`: generated music against the original, and the genre judge."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from etude.cli.common import (
    at_least,
    optional_path,
)
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
            "copied from the training set (notes and bars), and test-set likelihood. "
            "Writes report.html (self-contained), report.json and PNG figures into --out."
        ),
    )
    p.add_argument(
        "run",
        metavar="RUN",
        help="run folder or checkpoint (`pretrained`, `pretrained:builtin`: a shipped model, with --data)",
    )
    p.add_argument(
        "--data", metavar="DATA_DIR", help="prepared data to take the test split from (default: the run's own)"
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
        help="sampling seed of the generated sets (default 0; event models sample with generate's defaults)",
    )
    p.add_argument("--soundfont", metavar="SF2", help="SoundFont for rendering (default: the bundled General MIDI one)")
    p.add_argument("--out", required=True, metavar="REPORT_DIR")
    p.set_defaults(func=cmd_evaluate)


def add_classifier(sub, help: str) -> None:
    c = sub.add_parser(
        "classifier",
        help=help,
        description="The genre judge: train a classifier on event tokens, or classify MIDI files with one.",
    )
    cs = c.add_subparsers(dest="action", required=True)
    t = cs.add_parser(
        "train",
        help="train on a prepared data folder",
        description=(
            "Train an LSTM genre classifier on DATA's training split; prints test accuracy, the confusion "
            "matrix, and the share of test pieces whose predicted genre survives a tempo change, flattened "
            "dynamics and a transposition."
        ),
    )
    t.add_argument("data", metavar="DATA")
    t.add_argument("--out", required=True, metavar="CLF")
    t.add_argument("--iterations", type=at_least(1), default=300)
    t.add_argument(
        "--hears",
        choices=("notes", "all"),
        default="notes",
        help=(
            "notes (default): bars, positions, pitches and durations only, blind to tempo, time signature "
            "and dynamics; all: every token but the genre's"
        ),
    )
    t.add_argument(
        "--transpose",
        type=at_least(0),
        default=5,
        metavar="K",
        help="train on windows shifted by a random -K..K semitones (default 5)",
    )
    t.add_argument(
        "--no-invariance",
        action="store_true",
        help="skip the invariance check (tempo x0.8/x1.25, one velocity, transposed -3/+3)",
    )
    t.set_defaults(func=cmd_classifier_train)

    k = cs.add_parser(
        "classify",
        help="genre probabilities of MIDI files",
        description="Classify MIDI files with a trained classifier.",
    )
    k.add_argument("classifier", metavar="CLF")
    k.add_argument("files", nargs="+", metavar="FILE.mid")
    k.set_defaults(func=cmd_classify)


def cmd_classifier_train(args: argparse.Namespace) -> int:
    from etude.evaluation.classifier import ClassifierConfig, invariance, train_classifier

    cfg = ClassifierConfig(iterations=args.iterations, hears=args.hears, transpose=args.transpose)
    clf, info = train_classifier(Path(args.data), Path(args.out), cfg)
    print(f"{args.out}: test accuracy {info['accuracy']:.3f} on {info['pieces']} pieces (hears {args.hears})")
    print("confusion (rows true, columns predicted): " + ", ".join(info["genres"]))
    for g, row in zip(info["genres"], info["confusion"]):
        print(f"  {g:<12} {' '.join(f'{v:4d}' for v in row)}")
    if not args.no_invariance:
        shares = invariance(clf, Path(args.data))
        print("same genre predicted after: " + ", ".join(f"{name} {share:.3f}" for name, share in shares.items()))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from etude.data.midi import read_piece
    from etude.evaluation.classifier import Classifier

    clf = Classifier.load(Path(args.classifier))
    failed = 0
    for f in args.files:
        try:
            score = read_piece(Path(f))
        except InputError as exc:
            print(f"etude: {exc}", file=sys.stderr)
            failed += 1
            continue
        probs = clf.classify_score(score)
        ranked = sorted(zip(clf.genres, probs), key=lambda x: -x[1])
        print(f"{f}: {ranked[0][0]}  " + "  ".join(f"{g} {p:.2f}" for g, p in ranked))
    return 2 if failed else 0
