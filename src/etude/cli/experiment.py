"""`etude experiment study`: the hyper-parameter study behind the method."""

from __future__ import annotations

import argparse
from pathlib import Path

from etude.cli.common import (
    at_least,
    optional_path,
)
from etude.errors import EtudeError


def _numbers(kind):
    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None

    return parse


def cmd_experiment_study(args: argparse.Namespace) -> int:
    from etude.study.run import study

    report = study(
        Path(args.data),
        Path(args.out),
        args.scale,
        args.seeds,
        args.workers,
        optional_path(args.roll_data),
        args.keep_probs,
        args.hidden,
        args.layers,
        optional_path(args.soundfont),
    )
    for c in report["claims"]:
        verdict = {True: "held", False: "did NOT hold", None: "not measured"}[c["held"]]
        spread = " (within the seeds' spread)" if c["within_spread"] else ""
        print(f"{verdict:>13}{spread}: {c['claim']} [{c['measure']}: {c['numbers']}]")
    print(f"\n{Path(args.out) / 'study.html'}  {Path(args.out) / 'study.json'}  ({report['wall_seconds']:.0f} s)")
    if report["problems"]:
        raise EtudeError(
            f"{len(report['problems'])} run(s) failed (listed in study.html); run the command again to retry them"
        )
    return 0


def add_experiment(sub, help: str) -> None:
    from etude.study.scales import SCALES

    p = sub.add_parser("experiment", help=help, description="Experiments behind the method.")
    ps = p.add_subparsers(dest="action", required=True)
    s = ps.add_parser(
        "study",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="dropout, training length, hidden units, layers, LSTM vs RBM: does each claim hold on your corpus?",
        description=(
            "Train LSTMs around one base configuration, varying one thing at a time: the keep\n"
            "probability (loss curves), the training length (checkpoints along the base run), the\n"
            "hidden units and the layers (test NLL, spectral distance, training time); and a frame RBM\n"
            "and an RNN-RBM on the same corpus as piano rolls, compared with the LSTM and the\n"
            "original by spectrum and musical statistics. Every run is a folder OUT/runs/NAME-seedS;\n"
            "finished runs are skipped, so an interrupted study resumes. Writes OUT/study.html,\n"
            "OUT/study.json and PNG figures, with a table saying whether each claim held here.\n\n"
            "Scales (sizes are printed before the runs start, with an estimate of the training time):\n"
            "  tiny   seconds per run, for tests (hidden 16-48, 40 iterations)\n"
            "  cpu    hidden 64/128/256/512, layers 1-4 at 128 units, 1200 iterations of 16 x 64\n"
            "         tokens; about 25 minutes with 3 seeds and 2 workers on 2 CPU cores\n"
            "  paper  hidden 128-1024, layers 1-4 at 1024 units, 6000 iterations: for a GPU"
        ),
    )
    s.add_argument(
        "--data", required=True, metavar="DIR", help="prepared event-token folder (etude data prepare CORPUS)"
    )
    s.add_argument("--scale", choices=list(SCALES), default="cpu", help="sizes (default cpu)")
    s.add_argument("--out", required=True, metavar="DIR", help="study folder (reuse it to resume)")
    s.add_argument("--seeds", type=at_least(1), default=3, help="seeds per configuration (default 3)")
    s.add_argument(
        "--workers",
        type=at_least(1),
        default=1,
        help="runs trained in parallel (default 1; each gets cores/workers threads)",
    )
    s.add_argument(
        "--keep-probs",
        type=_numbers(float),
        metavar="P,P,...",
        help="keep probabilities to compare (default 0.5,0.7,0.9)",
    )
    s.add_argument(
        "--hidden", type=_numbers(int), metavar="N,N,...", help="hidden units to compare (default: the scale's)"
    )
    s.add_argument("--layers", type=_numbers(int), metavar="N,N,...", help="depths to compare (default 1,2,3,4)")
    s.add_argument(
        "--roll-data",
        metavar="DIR",
        help=(
            "the corpus as piano rolls for the RBM runs (default: prepared from the corpus DATA was made "
            "from, into OUT/data-pianoroll)"
        ),
    )
    s.add_argument("--soundfont", metavar="SF2", help="SoundFont for rendering (default: the bundled General MIDI one)")
    s.set_defaults(func=cmd_experiment_study)
