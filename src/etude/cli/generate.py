"""`etude generate`: new pieces as MIDI, WAV and piano-roll PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from etude.cli.common import (
    add_robot_option,
    add_sampling,
    add_seed_and_int8,
    ask_of,
    at_least,
    optional_path,
)


def cmd_generate(args: argparse.Namespace) -> int:
    from etude.generation.generate import PieceFiles, generate

    files = PieceFiles(
        audio=not args.no_audio,
        soundfont=optional_path(args.soundfont),
        sample_rate=args.sample_rate,
        renderer=args.renderer,
        force=args.force,
    )
    ask = ask_of(args, args.length, args.n, args.primer)
    results = generate(optional_path(args.model), ask, Path(args.out), files, args.device)
    for r in results:
        files = "  ".join(str(p) for p in (r.midi, r.wav, r.png) if p)
        print(f"{files}  ({r.seconds:.1f} s, {r.notes} notes)")
    return 0


def add_generate(sub, help: str) -> None:
    p = sub.add_parser(
        "generate",
        help=help,
        description=(
            "Sample N pieces of one genre from a run folder or checkpoint (default: the piano model "
            "shipped with étude, trained on six genres of piano music; `pretrained:piano-memory` is "
            "the same with a memory of the piece, so passages come back; `pretrained:builtin` is the "
            "one trained on the built-in corpus). The pieces are sampled as one "
            "batch; before each step, tokens the encoding's grammar forbids are masked, so every "
            "output is valid MIDI. Writes GENRE-NN.mid, .wav (rendered with a SoundFont) and .png."
        ),
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="RUN_DIR|CHECKPOINT",
        help="default: the shipped piano model (`pretrained`); `pretrained:piano-memory`: the same with a memory "
        "of the piece; `pretrained:builtin`: the built-in corpus's",
    )
    p.add_argument(
        "--genre", help="genre to generate, or `all` for N pieces of every genre (default: the model's first)"
    )
    p.add_argument("--n", type=at_least(1), default=1, help="pieces to sample (default 1)")
    p.add_argument("--length", default="60s", help="musical length: seconds (60s) or new tokens (512t); default 60s")
    p.add_argument("--out", default="generated", metavar="DIR", help="output folder (default ./generated)")
    add_sampling(p)
    add_seed_and_int8(p)
    p.add_argument("--primer", metavar="FILE.mid[:SECONDS]", help="continue this piece (its first SECONDS)")
    add_robot_option(p)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"), help="default cpu")
    p.add_argument(
        "--soundfont",
        metavar="SF2",
        help="SoundFont for the audio (default: pretty_midi's General MIDI TimGM6mb.sf2, acoustic grand piano)",
    )
    p.add_argument("--sample-rate", type=at_least(8000), default=44100, help="audio sample rate in Hz (default 44100)")
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
