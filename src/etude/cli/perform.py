"""`etude perform`: real-time playback to MIDI ports, JSON lines, OSC and TCP; call and response."""

from __future__ import annotations

import argparse
import sys

from etude.cli.common import (
    add_robot_option,
    add_sampling,
    add_seed_and_int8,
    ask_of,
    at_least,
    finite,
    optional_path,
)
from etude.errors import InputError


def cmd_perform(args: argparse.Namespace) -> int:
    from etude.perform.outputs import list_ports
    from etude.perform.stream import Playing, perform

    if args.list_ports:
        names = list_ports()
        print("\n".join(names) if names else "no MIDI output ports")
        return 0
    if args.respond:
        return _respond(args)
    playing = Playing(args.tempo_scale, args.transpose, args.loop, args.count_in)
    ask = ask_of(args, args.length or "30s", args.pieces)
    stats = perform(optional_path(args.file), optional_path(args.run), outputs_of(args), playing, ask)
    print(f"etude: played {stats.events} events ({stats.stopped}; {stats.underruns} buffer underruns)", file=sys.stderr)
    return 0 if stats.stopped == "end" else 130


def _respond(args: argparse.Namespace) -> int:
    from etude.perform.respond import call_and_response

    if args.file:
        raise InputError("--respond answers a player: give --run (or nothing, for the shipped model), not a FILE")
    ask = ask_of(args, args.length or "8s")
    sink = outputs_of(args).open()
    exchanges = call_and_response(args.run or "pretrained", sink, args.listen, args.wait, ask)
    for k, e in enumerate(exchanges, 1):
        latency = f"{e.latency * 1000:.0f} ms after the pause" if e.latency is not None else "nothing to play"
        print(f"etude: phrase {k}: {e.phrase_notes} notes, answered with {e.answer_notes} ({latency})", file=sys.stderr)
    return 0


def outputs_of(args: argparse.Namespace):
    """The outputs named by perform's flags (`add_outputs`)."""
    from etude.perform.outputs import Outputs

    return Outputs(args.jsonl, args.port, args.virtual, args.osc, args.serve, args.clients)


def add_perform(sub, help: str) -> None:
    p = sub.add_parser(
        "perform",
        help=help,
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
    add_robot_option(p)
    p.add_argument(
        "--tempo-scale", type=float, default=1.0, metavar="X", help="play X times faster (2: double speed; default 1)"
    )
    p.add_argument("--transpose", type=int, default=0, metavar="K", help="semitones up (negative: down)")
    p.add_argument("--loop", action="store_true", help="repeat the file, or generate until stopped")
    p.add_argument(
        "--count-in",
        type=at_least(0),
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
        "--wait", type=finite(0), default=1.0, metavar="S", help="seconds of silence that end a phrase (default 1)"
    )
    gen = p.add_argument_group("generation (with --run or --respond)")
    gen.add_argument("--genre", help="genre to generate (default: the model's first)")
    gen.add_argument("--length", help="length of each generated piece (default 30s; each answer: 8s)")
    gen.add_argument(
        "--pieces", type=at_least(1), default=1, help="pieces to generate and play (default 1; --loop: endless)"
    )
    add_sampling(gen)
    add_seed_and_int8(gen)
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
        type=at_least(0),
        default=0,
        metavar="N",
        help="with --serve: wait (up to 60 s) for N clients before playing (default 0)",
    )
