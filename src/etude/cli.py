"""The `etude` command: each sub-command parses its arguments and calls one library function.

Errors meant for the user (`EtudeError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from etude import __version__
from etude.config import AIS, ENCODINGS, MODELS, DataConfig, EncodingConfig
from etude.errors import EtudeError, InputError

log = logging.getLogger("etude")


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (and exit code 2), like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _corpus_path(text: str) -> Path:
    """A corpus argument: a folder, a CSV manifest, or `builtin` for the exported built-in corpus."""
    if text != "builtin":
        return Path(text)
    from etude.data.builtin import default_dir

    path = default_dir()
    if not path.exists():
        raise InputError(f"the built-in corpus is not exported yet ({path}); run `etude corpus builtin` first")
    return path


def _at_least(low: int):
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


def _finite(low: float, inclusive: bool = False):
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


def _sampling(args: argparse.Namespace):
    from dataclasses import replace

    from etude.generation.generate import Sampling

    sampling = Sampling(args.temperature, args.top_k, args.top_p)
    return replace(sampling, spare=()) if args.cut_durations else sampling


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _add_sampling(p) -> None:
    """The sampling options shared by generate and perform."""
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
    p.add_argument("--seed", type=_at_least(0), default=0, help="sampling seed (default 0)")


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
    b.add_argument(
        "--per-genre",
        type=_at_least(1),
        default=200,
        metavar="N",
        help="pieces per style (default 200, as in the study)",
    )
    b.add_argument("--out", metavar="DIR", help="output folder (default $ETUDE_HOME/corpus/builtin)")
    b.add_argument("--styles", nargs="+", metavar="STYLE", help="only these styles (default all)")
    b.add_argument("--workers", type=_at_least(1), metavar="N", help="parallel processes (default: all cores)")
    b.set_defaults(func=cmd_corpus_builtin)

    d = ps.add_parser(
        "download",
        help="fetch the public piano sets behind the six-genre piano corpus",
        description=(
            "Fetch the public piano MIDI sets the piano corpus was made from, each a GitHub "
            "repository pinned at a commit (classical, pop, jazz, ragtime, videogame, folk), take "
            "out the files the corpus kept, and check each one against the SHA-256 recorded from "
            "the corpus. Resumable: a broken download continues where it stopped; archives are "
            "kept in OUT/.archives. Each repository states its own terms (printed as it is "
            "fetched); étude does not redistribute the music."
        ),
    )
    d.add_argument("names", nargs="+", metavar="NAME", help="classical, pop, jazz, ragtime, videogame, folk, or all")
    d.add_argument(
        "--out", metavar="DIR", help="corpus folder, one sub-folder per genre (default $ETUDE_HOME/corpus/piano)"
    )
    d.add_argument(
        "--base-url", metavar="URL", help="a mirror serving OWNER/REPO/tar.gz/COMMIT (default: GitHub's archive host)"
    )
    d.set_defaults(func=cmd_corpus_download)


def cmd_corpus_download(args: argparse.Namespace) -> int:
    from etude.data.builtin import etude_home
    from etude.data.download import download

    out = Path(args.out) if args.out else etude_home() / "corpus" / "piano"
    counts = download(args.names, out, base_url=args.base_url)
    print(f"piano corpus in {out}")
    for genre, n in counts.items():
        print(f"  {genre:<10} {n:>5} files")
    return 0


# ----------------------------------------------------------------------------- data
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
            _corpus_path(args.corpus),
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
    prep.add_argument("--workers", type=_at_least(1), metavar="N", help="parallel processes (default: all cores)")
    prep.add_argument(
        "--file-timeout",
        type=_finite(0),
        default=60.0,
        metavar="S",
        help="reject a file whose reading takes longer (default 60 s)",
    )
    prep.add_argument(
        "--file-memory",
        type=_at_least(64),
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
    prep.add_argument("--seed", type=_at_least(0), default=d.seed, help=f"seed of the split (default {d.seed})")
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


def _add_data(sub) -> None:
    p = sub.add_parser(
        "data", help="prepare and inspect training data", description="Prepare and inspect training data."
    )
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
    r2m.add_argument("--index", type=_at_least(0), default=0, help="piece number within the split (default 0)")
    r2m.add_argument("--qpm", type=_finite(0), default=120.0, help="tempo in quarter notes per minute (default 120)")
    r2m.add_argument("--out", required=True, metavar="FILE.mid")
    r2m.set_defaults(func=cmd_data_roll2midi)


# ----------------------------------------------------------------------------- train
PIANO_ESTIMATE = (
    "piano (2 x 256, the shipped piano model's settings, chosen on the piano corpus's validation\n"
    "split under a generation-speed limit; 16000 iterations of 64 x 256 tokens = 262M tokens):\n"
    "about 7.6 minutes on one H100 GPU (15389 iterations measured in 7.3), many hours on 2 CPU\n"
    "cores, so give it --budget MINUTES and go on with --resume. The shipped model then learnt how\n"
    "pieces open in a fine-tune (--init, train.start_share=0.25); from scratch, start_share 0.25\n"
    "cost validation perplexity (4.91 at 12000 iterations against 4.81 at 8400 without)"
)
PAPER_ESTIMATE = (
    "paper preset (4 x 1024 units, keep_prob 0.7, 6000 iterations of 32 x 256 tokens = 49M "
    "tokens): about 16 hours on 2 CPU cores (~830 tokens/s measured) and an estimated 15-30 "
    "minutes on one current data-centre GPU (not measured here)"
)


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
        config = load_preset(args.preset, args.model, pianoroll=encoding == "pianoroll")
        config.data = str(Path(args.data).resolve())
        if args.init:
            from etude.models.pretrained import model_path

            config.init = str(model_path(args.init).absolute())
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


def _add_train(sub) -> None:
    from etude.config import PRESETS

    p = sub.add_parser(
        "train",
        help="train a generator (LSTM, or on piano rolls also LSTM-NADE, RNN-RBM, RBM) on prepared data",
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
            "--resume RUN_DIR continues exactly where it stopped.\n\n"
            "Presets: tiny (seconds, for tests), cpu (default: 2 x 256, minutes on 2 cores),\n"
            + PIANO_ESTIMATE
            + ", and\n"
            + PAPER_ESTIMATE
            + "."
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
        "--model", choices=MODELS, default="lstm", help="model to train (default lstm; the others need piano-roll data)"
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
    p.add_argument("--seed", type=_at_least(0), help="seeds Python, NumPy and torch (default 0)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (train.compile=true)")
    p.add_argument(
        "--budget",
        type=_finite(0),
        metavar="MINUTES",
        help="stop after this much training time, with a checkpoint (train.max_minutes)",
    )
    p.add_argument("--force", action="store_true", help="overwrite a non-empty RUN_DIR")
    p.set_defaults(func=cmd_train, overrides=[])


# ----------------------------------------------------------------------------- generate
def cmd_generate(args: argparse.Namespace) -> int:
    from etude.generation.generate import generate

    results = generate(
        _path(args.model),
        genre=args.genre,
        n=args.n,
        length=args.length,
        out=Path(args.out),
        sampling=_sampling(args),
        primer=args.primer,
        seed=args.seed,
        device=args.device,
        audio=not args.no_audio,
        soundfont=_path(args.soundfont),
        sample_rate=args.sample_rate,
        renderer=args.renderer,
        force=args.force,
        robot=_robot(args.robot),
    )
    for r in results:
        files = "  ".join(str(p) for p in (r.midi, r.wav, r.png) if p)
        print(f"{files}  ({r.seconds:.1f} s, {r.notes} notes)")
    return 0


def _add_generate(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="sample new pieces as MIDI, WAV and PNG",
        description=(
            "Sample N pieces of one genre from a run folder or checkpoint (default: the piano model "
            "shipped with étude, trained on six genres of piano music; `pretrained:builtin` is the "
            "one trained on the built-in corpus). The pieces are sampled as one "
            "batch; before each step, tokens the encoding's grammar forbids are masked, so every "
            "output is valid MIDI. Writes GENRE-NN.mid, .wav (rendered with a SoundFont) and .png."
        ),
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="RUN_DIR|CHECKPOINT",
        help="default: the shipped piano model (`pretrained`); `pretrained:builtin`: the built-in corpus's",
    )
    p.add_argument(
        "--genre", help="genre to generate, or `all` for N pieces of every genre (default: the model's first)"
    )
    p.add_argument("--n", type=_at_least(1), default=1, help="pieces to sample (default 1)")
    p.add_argument("--length", default="60s", help="musical length: seconds (60s) or new tokens (512t); default 60s")
    p.add_argument("--out", default="generated", metavar="DIR", help="output folder (default ./generated)")
    _add_sampling(p)
    p.add_argument("--primer", metavar="FILE.mid[:SECONDS]", help="continue this piece (its first SECONDS)")
    _add_robot_option(p)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"), help="default cpu")
    p.add_argument(
        "--soundfont",
        metavar="SF2",
        help="SoundFont for the audio (default: pretty_midi's General MIDI TimGM6mb.sf2, acoustic grand piano)",
    )
    p.add_argument("--sample-rate", type=_at_least(8000), default=44100, help="audio sample rate in Hz (default 44100)")
    p.add_argument(
        "--renderer",
        choices=("sampler", "symusic"),
        default="sampler",
        help=(
            "sampler (default): étude's SoundFont player, true pitch; symusic: faster, but mis-tunes the "
            "default SoundFont"
        ),
    )
    p.add_argument("--no-audio", action="store_true", help="skip the WAV files")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=cmd_generate)


# ----------------------------------------------------------------------------- benchmark
def cmd_benchmark_polyphonic(args: argparse.Namespace) -> int:
    from etude.study.benchmark import polyphonic, table

    models = list(MODELS) if args.model == "all" else [m.strip() for m in args.model.split(",") if m.strip()]
    out = Path(args.out) if args.out else Path("benchmarks-out") / Path(args.data).stem.lower()
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


def _add_benchmark(sub) -> None:
    p = sub.add_parser(
        "benchmark",
        help="the polyphonic-music benchmark (JSB, Nottingham, MuseData, Piano-midi.de)",
        description="Benchmarks against published results.",
    )
    ps = p.add_subparsers(dest="action", required=True)
    b = ps.add_parser(
        "polyphonic",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train piano-roll models on a benchmark set and report test NLL beside published figures",
        description=(
            "Train each model on the set's train part, keep the checkpoint with the best validation NLL,\n"
            "and report on test: frame-level NLL in nats (summed over the 88 keys, averaged over all\n"
            "test frames) and frame accuracy (Bay et al. 2009), beside the published figures.\n"
            "lstm and lstm-nade NLLs are exact; rbm and rnn-rbm ones are estimated by annealed\n"
            "importance sampling (--ais-temps inverse temperatures, --ais-runs runs per frame),\n"
            "repeated --ais-repeats times with different seeds: the table gives the mean and sd.\n"
            "Settings come from the cpu preset's piano-roll sections (chosen on validation data);\n"
            "--section.key=value overrides them. OUT/MODEL is an ordinary run folder: an interrupted\n"
            "benchmark resumes it. Writes OUT/results.json and OUT/results.md."
        ),
    )
    b.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="benchmark set, .mat or .pickle (e.g. shared/data/polyphonic/JSB_Chorales.mat)",
    )
    b.add_argument("--model", default="all", help=f"one of {', '.join(MODELS)}, a comma list, or all (default)")
    b.add_argument("--out", metavar="DIR", help="output folder (default ./benchmarks-out/SET)")
    b.add_argument(
        "--budget",
        type=_finite(0, inclusive=True),
        default=0.0,
        metavar="MINUTES",
        help="cap each model's training time (default: no cap; the preset's iterations)",
    )
    b.add_argument(
        "--ais-temps", type=_at_least(2), default=AIS.temps, help=f"AIS inverse temperatures (default {AIS.temps})"
    )
    b.add_argument("--ais-runs", type=_at_least(1), default=AIS.runs, help=f"AIS runs per frame (default {AIS.runs})")
    b.add_argument(
        "--ais-repeats", type=_at_least(1), default=3, help="independent AIS estimates, for the spread (default 3)"
    )
    b.add_argument("--seed", type=_at_least(0), default=0, help="training seed (default 0)")
    b.set_defaults(func=cmd_benchmark_polyphonic, overrides=[])


# ----------------------------------------------------------------------------- experiment
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
        _path(args.roll_data),
        args.keep_probs,
        args.hidden,
        args.layers,
        _path(args.soundfont),
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


def _add_experiment(sub) -> None:
    from etude.study.scales import SCALES

    p = sub.add_parser(
        "experiment", help="re-run the hyper-parameter study", description="Experiments behind the method."
    )
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
    s.add_argument("--seeds", type=_at_least(1), default=3, help="seeds per configuration (default 3)")
    s.add_argument(
        "--workers",
        type=_at_least(1),
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


# ----------------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from etude.evaluation.compare import evaluate
    from etude.models.pretrained import model_path

    report = evaluate(
        model_path(args.run),
        Path(args.out),
        baselines=[Path(b) for b in args.baseline],
        classifier=_path(args.classifier),
        n=args.n,
        length=args.length,
        seed=args.seed,
        soundfont=_path(args.soundfont),
        data=_path(args.data),
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


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compare generated music with the original: spectra, statistics, genre, memorisation",
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
    p.add_argument("--n", type=_at_least(1), default=20, help="pieces per set (default 20)")
    p.add_argument("--length", default="30s", help="length of generated pieces (default 30s)")
    p.add_argument(
        "--seed",
        type=_at_least(0),
        default=0,
        help="sampling seed of the generated sets (default 0; event models sample with generate's defaults)",
    )
    p.add_argument("--soundfont", metavar="SF2", help="SoundFont for rendering (default: the bundled General MIDI one)")
    p.add_argument("--out", required=True, metavar="REPORT_DIR")
    p.set_defaults(func=cmd_evaluate)


def _add_classifier(sub) -> None:
    c = sub.add_parser(
        "classifier", help="train a genre classifier", description="Train a genre classifier on event tokens."
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
    t.add_argument("--iterations", type=_at_least(1), default=300)
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
        type=_at_least(0),
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

    k = sub.add_parser(
        "classify",
        help="genre probabilities of MIDI files",
        description="Classify MIDI files with a trained classifier.",
    )
    k.add_argument("classifier", metavar="CLF")
    k.add_argument("files", nargs="+", metavar="FILE.mid")
    k.set_defaults(func=cmd_classify)


def cmd_classifier_train(args: argparse.Namespace) -> int:
    from etude.models.classifier import ClassifierConfig, invariance, train_classifier

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
    from etude.models.classifier import Classifier

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


# ----------------------------------------------------------------------------- perform
def cmd_perform(args: argparse.Namespace) -> int:
    from etude.perform.stream import list_ports, perform

    if args.list_ports:
        names = list_ports()
        print("\n".join(names) if names else "no MIDI output ports")
        return 0
    if args.respond:
        return _respond(args)
    stats = perform(
        _path(args.file),
        run=_path(args.run),
        jsonl=args.jsonl,
        port=args.port,
        virtual=args.virtual,
        tempo_scale=args.tempo_scale,
        transpose=args.transpose,
        loop=args.loop,
        count_in_beats=args.count_in,
        genre=args.genre,
        length=args.length or "30s",
        pieces=args.pieces,
        seed=args.seed,
        sampling=_sampling(args),
        robot=_robot(args.robot),
        osc=args.osc,
        serve=args.serve,
        clients=args.clients,
    )
    print(f"etude: played {stats.events} events ({stats.stopped}; {stats.underruns} buffer underruns)", file=sys.stderr)
    return 0 if stats.stopped == "end" else 130


def _respond(args: argparse.Namespace) -> int:
    from etude.perform.respond import call_and_response
    from etude.perform.stream import open_outputs

    if args.file:
        raise InputError("--respond answers a player: give --run (or nothing, for the shipped model), not a FILE")
    robot = _robot(args.robot)
    sink = open_outputs(args.jsonl, args.port, args.virtual, args.osc, args.serve, args.clients)
    exchanges = call_and_response(
        args.run or "pretrained",
        args.genre,
        sink,
        listen=args.listen,
        wait=args.wait,
        length=args.length or "8s",
        sampling=_sampling(args),
        seed=args.seed,
        robot=robot,
    )
    for k, e in enumerate(exchanges, 1):
        latency = f"{e.latency * 1000:.0f} ms after the pause" if e.latency is not None else "nothing to play"
        print(f"etude: phrase {k}: {e.phrase_notes} notes, answered with {e.answer_notes} ({latency})", file=sys.stderr)
    return 0


def _add_perform(sub) -> None:
    p = sub.add_parser(
        "perform",
        help="play in real time (MIDI port, JSON lines, OSC, TCP), or answer a player",
        description=(
            "Play FILE.mid, or pieces generated on the fly from --run RUN_DIR (`pretrained`: the "
            "shipped model), in real time. Events go out at absolute deadlines from a monotonic "
            "clock, so timing does not drift. Ctrl-C, SIGTERM or the end of the stream release "
            "every sounding note and send all-notes-off: no stuck notes. With --robot, music stays "
            "within a robot's limits and events carry hand and finger; with --respond, étude answers "
            "a player's phrases. MIDI ports and OSC need pip install 'etude[robot]'."
        ),
    )
    p.add_argument("file", nargs="?", metavar="FILE.mid")
    p.add_argument(
        "--run", metavar="RUN_DIR", help="generate pieces from this run (or `pretrained`), ahead of playback"
    )
    _add_outputs(p.add_argument_group("outputs (one or more)"))
    p.add_argument("--list-ports", action="store_true", help="list MIDI output ports and exit")
    _add_robot_option(p)
    p.add_argument(
        "--tempo-scale", type=float, default=1.0, metavar="X", help="play X times faster (2: double speed; default 1)"
    )
    p.add_argument("--transpose", type=int, default=0, metavar="K", help="semitones up (negative: down)")
    p.add_argument("--loop", action="store_true", help="repeat the file, or generate until stopped")
    p.add_argument(
        "--count-in",
        type=_at_least(0),
        default=0,
        metavar="BEATS",
        help="metronome clicks before the music (drum channel)",
    )
    resp = p.add_argument_group("call and response (--respond)")
    resp.add_argument(
        "--respond",
        action="store_true",
        help=(
            "listen to a player and, when they pause, answer with a continuation of their phrase "
            "(in --genre, within --robot), then listen again"
        ),
    )
    resp.add_argument(
        "--listen",
        default="-",
        metavar="-|PORT",
        help=(
            'the player: - for JSON lines on stdin ({"type": "note_on"|"note_off", "pitch", "velocity"}), '
            "or a MIDI input port"
        ),
    )
    resp.add_argument(
        "--wait", type=_finite(0), default=1.0, metavar="S", help="seconds of silence that end a phrase (default 1)"
    )
    gen = p.add_argument_group("generation (with --run or --respond)")
    gen.add_argument("--genre", help="genre to generate (default: the model's first)")
    gen.add_argument("--length", help="length of each generated piece (default 30s; each answer: 8s)")
    gen.add_argument(
        "--pieces", type=_at_least(1), default=1, help="pieces to generate and play (default 1; --loop: endless)"
    )
    _add_sampling(gen)
    p.set_defaults(func=cmd_perform)


def _add_outputs(out) -> None:
    """perform's outputs: MIDI port, virtual port, JSON lines, OSC, TCP."""
    out.add_argument("--port", metavar="NAME", help="a MIDI output port (see --list-ports)")
    out.add_argument(
        "--virtual", metavar="NAME", help="create a virtual MIDI port with this name (where the platform allows)"
    )
    out.add_argument(
        "--jsonl",
        metavar="PATH|-",
        help=(
            'one JSON object per event ({"t", "type", "pitch", "velocity", "channel"}), flushed when due; - for stdout'
        ),
    )
    out.add_argument(
        "--osc",
        metavar="HOST:PORT",
        help="OSC over UDP: /etude/note_on|note_off t pitch velocity channel hand finger (needs python-osc)",
    )
    out.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="a TCP server sending every event as a JSON line to each connected client (host default 127.0.0.1)",
    )
    out.add_argument(
        "--clients",
        type=_at_least(0),
        default=0,
        metavar="N",
        help="with --serve: wait (up to 60 s) for N clients before playing (default 0)",
    )


# ----------------------------------------------------------------------------- robot
def _robot(spec: str | None):
    from etude.robot.profile import load_profile

    return load_profile(spec) if spec else None


def _add_robot_option(p) -> None:
    p.add_argument(
        "--robot",
        metavar="PROFILE",
        help=(
            "a robot profile (player-piano, two-hand-robot, toy-25, or a JSON file; see `etude robot "
            "profiles`): generated music stays within its limits, a file is adapted to them, and "
            "JSON lines carry the hand (and finger) of each note"
        ),
    )


def cmd_robot_profiles(args: argparse.Namespace) -> int:
    from etude.robot.profile import SHIPPED, load_profile

    for name in SHIPPED:
        profile = load_profile(name)
        print(profile.summary())
        print(f"  {profile.description}")
    return 0


def cmd_robot_check(args: argparse.Namespace) -> int:
    from etude.data.midi import read_piece
    from etude.robot.check import violations
    from etude.robot.notes import score_notes

    profile = _robot(args.profile)
    failed = clean = 0
    for f in args.files:
        try:
            found = violations(profile, score_notes(read_piece(Path(f))))
        except InputError as exc:
            print(f"etude: {exc}", file=sys.stderr)
            failed += 1
            continue
        clean += not found
        print(f"{f}: {len(found)} violation(s) of {profile.name}")
        for v in found[: args.limit or None]:
            print(f"  {v}")
        if args.limit and len(found) > args.limit:
            print(f"  ... and {len(found) - args.limit} more (--limit 0 lists all)")
    return 2 if failed else 0 if clean == len(args.files) else 1


def cmd_robot_adapt(args: argparse.Namespace) -> int:
    from etude.data.midi import read_piece
    from etude.paths import ensure_dir
    from etude.robot.adapt import adapt_score

    profile = _robot(args.profile)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise InputError(f"{out} exists; pass --force to overwrite it")
    score, adapted, before = adapt_score(profile, read_piece(Path(args.file)))
    ensure_dir(out.parent)
    score.dump_midi(str(out))
    print(f"{out}: {adapted.report(before)}")
    return 0


def _add_robot(sub) -> None:
    p = sub.add_parser(
        "robot",
        help="check or adapt pieces for a robot profile",
        description=(
            "Robot profiles describe what a performer can play: keys, keys down at once, hands, "
            "their span and fingers, restrike time, velocities, notes per second (every field "
            "optional). Shipped: player-piano, two-hand-robot, toy-25; or a JSON file."
        ),
    )
    ps = p.add_subparsers(dest="action", required=True)
    ps.add_parser("profiles", help="list the shipped profiles").set_defaults(func=cmd_robot_profiles)
    c = ps.add_parser(
        "check",
        help="list every moment a piece asks more than the robot has",
        description=(
            "List each violation (time, keys, which limit). Exit status 1 if any file has one, 2 if a "
            "file cannot be read."
        ),
    )
    c.add_argument("profile", metavar="PROFILE")
    c.add_argument("files", nargs="+", metavar="FILE.mid")
    c.add_argument("--limit", type=_at_least(0), default=20, help="violations listed per file (default 20; 0: all)")
    c.set_defaults(func=cmd_robot_check)
    a = ps.add_parser(
        "adapt",
        help="make a piece playable by the robot",
        description=(
            "Fold notes into range by octaves, clamp velocities, end or delay early restrikes, and drop the "
            "least important notes (inner voices, quietest first) of chords the robot cannot hold; "
            "prints what it changed. The result passes `etude robot check`."
        ),
    )
    a.add_argument("profile", metavar="PROFILE")
    a.add_argument("file", metavar="IN.mid")
    a.add_argument("--out", required=True, metavar="OUT.mid")
    a.add_argument("--force", action="store_true", help="overwrite OUT.mid")
    a.set_defaults(func=cmd_robot_adapt)


# ----------------------------------------------------------------------------- studio
def cmd_studio(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from etude.studio.app import create_app
    except ImportError:
        raise InputError("the studio needs its extra: pip install 'etude[studio]' (fastapi, uvicorn)") from None
    from etude.studio.access import Access
    from etude.studio.config import OUTPUT_FLAGS, StudioConfig

    given = {key: getattr(args, f"output_{key}") for key in OUTPUT_FLAGS}
    outputs = {key: value for key, value in given.items() if value is not None}
    access = Access.for_address(args.host, args.port, args.allow_host, token=args.token)
    app = create_app(StudioConfig(args.model, _path(args.runs), _path(args.folder), outputs, access=access))
    print(f"etude studio: {access.url(args.host, args.port)} (API docs at /docs); Ctrl-C stops it", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _add_studio(sub) -> None:
    from etude.studio.config import OUTPUT_FLAGS

    p = sub.add_parser(
        "studio",
        help="generation in the browser: a local web service and its page",
        description=(
            "Serve the studio: an HTTP API (generate, takes, perform; documented at /docs) and a page "
            "to generate pieces by model, genre, length, temperature, top-p, seed and robot profile, "
            "listen, download and perform them. Only its own page may change anything; it answers "
            "only the host names it listens on; beyond this machine, every API call needs the token "
            "in the address it prints. Needs pip install 'etude[studio]'."
        ),
    )
    p.add_argument("--model", default="pretrained", help="the model offered first (default: the shipped piano model)")
    p.add_argument("--runs", metavar="DIR", help="also offer the run folders found in DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_at_least(0), default=8765, help="HTTP port (default 8765)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to this host name (repeatable; loopback names always are)",
    )
    p.add_argument(
        "--token",
        action="store_true",
        help="ask for a token on this machine too (always asked when --host is not a loopback address)",
    )
    p.add_argument("--folder", metavar="DIR", help="keep takes in DIR (default: a temporary folder, gone at exit)")
    out = p.add_argument_group("where Perform plays (as etude perform)")
    for key, (flag, text) in OUTPUT_FLAGS.items():
        out.add_argument(flag, dest=f"output_{key}", help=text)
    p.set_defaults(func=cmd_studio)


# ----------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="etude",
        description="LSTM piano music generation: corpora, training data, models, generation, evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"etude {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_corpus(sub)
    _add_data(sub)
    _add_train(sub)
    _add_generate(sub)
    _add_benchmark(sub)
    _add_experiment(sub)
    _add_perform(sub)
    _add_robot(sub)
    _add_studio(sub)
    _add_evaluate(sub)
    _add_classifier(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command not in ("train", "benchmark") or not all(e.startswith("--") and "=" in e for e in extra):
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
