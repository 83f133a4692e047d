"""`etude polyphonic`: piano-roll models on a polyphonic benchmark set beside published figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from etude.cli.common import (
    at_least,
    finite,
)
from etude.config import AIS, PIANOROLL_MODELS


def cmd_polyphonic(args: argparse.Namespace) -> int:
    from etude.study.polyphonic import polyphonic, table

    models = list(PIANOROLL_MODELS) if args.model == "all" else [m.strip() for m in args.model.split(",") if m.strip()]
    out = Path(args.out) if args.out else Path("polyphonic-out") / Path(args.data).stem.lower()
    report = polyphonic(
        Path(args.data),
        models,
        out,
        budget_minutes=args.budget,
        ais=AIS(args.ais_temps, args.ais_runs),
        ais_repeats=args.ais_repeats,
        seed=args.seed,
        overrides=args.overrides,
    )
    text = table(report)
    (out / "results.md").write_text(text + "\n")
    print(text)
    print(f"\n{out / 'results.json'}  {out / 'results.md'}")
    return 0


def add_polyphonic(sub, help: str) -> None:
    b = sub.add_parser(
        "polyphonic",
        help=help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train each model on the set's train part, keep the checkpoint with the best validation NLL,\n"
            "and report on test: frame-level NLL in nats (summed over the 88 keys, averaged over all\n"
            "test frames) and frame accuracy (Bay et al. 2009), beside the published figures.\n"
            "lstm and lstm-nade NLLs are exact; rbm and rnn-rbm ones are estimated by annealed\n"
            "importance sampling (--ais-temps inverse temperatures, --ais-runs runs per frame),\n"
            "repeated --ais-repeats times with different seeds: the table gives the mean and sd.\n"
            "Settings come from the cpu preset's piano-roll sections (chosen on validation data);\n"
            "--section.key=value overrides them. OUT/MODEL is an ordinary run folder: an interrupted\n"
            "run resumes it. Writes OUT/results.json and OUT/results.md."
        ),
    )
    b.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="benchmark set, .mat or .pickle (e.g. shared/data/polyphonic/JSB_Chorales.mat)",
    )
    b.add_argument(
        "--model", default="all", help=f"one of {', '.join(PIANOROLL_MODELS)}, a comma list, or all (default)"
    )
    b.add_argument("--out", metavar="DIR", help="output folder (default ./polyphonic-out/SET)")
    b.add_argument(
        "--budget",
        type=finite(0, inclusive=True),
        default=0.0,
        metavar="MINUTES",
        help="cap each model's training time (default: no cap; the preset's iterations)",
    )
    b.add_argument(
        "--ais-temps", type=at_least(2), default=AIS.temps, help=f"AIS inverse temperatures (default {AIS.temps})"
    )
    b.add_argument("--ais-runs", type=at_least(1), default=AIS.runs, help=f"AIS runs per frame (default {AIS.runs})")
    b.add_argument(
        "--ais-repeats", type=at_least(1), default=3, help="independent AIS estimates, for the spread (default 3)"
    )
    b.add_argument("--seed", type=at_least(0), default=0, help="training seed (default 0)")
    b.set_defaults(func=cmd_polyphonic, overrides=[])
