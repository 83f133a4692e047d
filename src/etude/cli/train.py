"""`etude train`: train a generator on prepared data, or resume or fine-tune one."""

from __future__ import annotations

import argparse
from pathlib import Path

from etude.cli.common import (
    at_least,
    finite,
)
from etude.config import ENCODINGS, MODELS
from etude.errors import InputError


def cmd_train(args: argparse.Namespace) -> int:
    from etude.config import load_preset
    from etude.training.loop import train

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.device:
        overrides.append(f"device={args.device}")
    if args.compile:
        overrides.append("train.compile=true")
    if args.budget is not None:
        overrides.append(f"train.max_minutes={args.budget}")
    if args.resume and args.init:
        raise InputError("--init starts a new run from a model's weights; --resume continues a run: give one")
    if args.resume:
        result = train(run_dir=Path(args.resume), resume=True, overrides=overrides)
    else:
        if not args.data or not args.out:
            raise InputError("give DATA_DIR and --out RUN_DIR (or --resume RUN_DIR)")
        from etude.data.store import read_meta

        encoding = read_meta(Path(args.data))["settings"]["encoding"]["name"]
        if args.encoding and args.encoding != encoding:
            raise InputError(
                f"{args.data} holds {encoding} data, not {args.encoding}; prepare it with `etude data prepare "
                f"... --encoding {args.encoding}`"
            )
        config = load_preset(args.preset, args.model or "lstm", pianoroll=encoding == "pianoroll")
        config.data = str(Path(args.data).resolve())
        if args.init:
            from etude.models.pretrained import model_path

            config.init = str(model_path(args.init).absolute())
            if args.model:  # the model's settings, another model on top (lstm -> lstm-memory)
                overrides.append(f"model.name={args.model}")
        result = train(config, Path(args.out), overrides=overrides, force=args.force)
    if result.metrics:
        from etude.training.loop import describe_metrics

        unit = "token" if "unigram_loss" in result.metrics else "frame"
        why = {"budget": " (time budget reached)", "patience": " (no longer improving)", "signal": " (stopped)"}.get(
            result.stopped_by, ""
        )
        print(
            f"{result.run_dir}: iteration {result.iteration} of {result.planned}{why}, "
            f"{describe_metrics(result.metrics)}; "
            f"best {result.best['loss']:.4f} nats/{unit} at iteration {result.best['iteration']}"
        )
    return 130 if result.interrupted else 0


def add_train(sub, help: str) -> None:
    from etude.config import PRESETS

    p = sub.add_parser(
        "train",
        help=help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train a generator on DATA_DIR (from `etude data prepare`). On event tokens (remi, midilike,\n"
            "tsd) the model is the stacked-LSTM generator. On piano rolls (--encoding pianoroll, or a\n"
            "benchmark .mat/.pickle) --model picks one of: lstm (independent Bernoulli per key),\n"
            "lstm-nade (keys of a frame one after another), rnn-rbm (an LSTM sets each frame's RBM\n"
            "biases; CD-k), rbm (an RBM over windows of model.window frames; CD-k or persistent CD).\n"
            "Validation of the RBM models estimates the NLL by a small AIS (train.ais_temps/ais_runs).\n\n"
            "Settings come from a preset and may be overridden with --section.key=value, e.g.\n"
            "  --train.iterations=6000 --model.hidden=1024 --model.layers=4 --model.keep_prob=0.5\n"
            "model.keep_prob is the study's dropout coefficient: the probability of KEEPING a unit\n"
            "(Bernoulli mask = 1 with probability p), applied between LSTM layers and before the head;\n"
            "PyTorch's dropout is 1 - keep_prob (0.7 -> dropout 0.3, the study's best).\n\n"
            "Every train.eval_every iterations: validation loss, perplexity (beside a unigram model's)\n"
            "and accuracy; checkpoints RUN_DIR/checkpoints/{best,last}; metrics.csv and TensorBoard\n"
            "logs (RUN_DIR/tb). Ctrl-C or SIGTERM writes a checkpoint and exits with code 130;\n"
            "train.precision=auto uses bf16 autocast on CUDA devices that support it.\n"
            "Several GPUs or machines: torchrun ... -m etude train (see docs/distributed.md).\n"
            "--resume RUN_DIR continues exactly where it stopped.\n"
            "--train.carry_state=true (lstm): truncated back-propagation through time, each\n"
            "batch lane reading whole pieces with its state carried from window to window.\n\n"
            "Presets: tiny (seconds, for tests); cpu (the default: 2 x 256, for a laptop's minutes);\n"
            "piano (2 x 256, the shipped piano model's settings: a GPU's minutes or a CPU's hours, so\n"
            "give it --budget MINUTES and go on with --resume); paper (the method's 4 x 1024, keep\n"
            "probability 0.7, 6000 iterations: a GPU run). Measured times are in docs/training.md."
        ),
    )
    p.add_argument("data", nargs="?", metavar="DATA_DIR", help="prepared data folder")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder to create")
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default="cpu",
        help="settings to start from (default cpu; on piano rolls each model has its own section)",
    )
    p.add_argument(
        "--model",
        choices=MODELS,
        help="model to train (default lstm, or with --init the model's own; lstm-memory: event tokens only, the "
        "LSTM with a memory of the piece; lstm-nade, rbm, rnn-rbm: piano rolls only)",
    )
    p.add_argument("--encoding", choices=ENCODINGS, help="check that DATA_DIR holds this encoding")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run (its saved settings, plus overrides)")
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="fine-tune: start from a trained model's weights and model settings (a checkpoint folder, "
        "or pretrained / pretrained:NAME) with a fresh optimiser and schedule; DATA_DIR must have its "
        "vocabulary and genres",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto: cuda when available")
    p.add_argument("--seed", type=at_least(0), help="seeds Python, NumPy and torch (default 0)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (train.compile=true)")
    p.add_argument(
        "--budget",
        type=finite(0),
        metavar="MINUTES",
        help="stop after this much training time, with a checkpoint (train.max_minutes)",
    )
    p.add_argument("--force", action="store_true", help="overwrite a non-empty RUN_DIR")
    p.set_defaults(func=cmd_train, overrides=[])
