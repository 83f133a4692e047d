"""`etude robot`: robot profiles; check and adapt pieces for one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from etude.cli.common import (
    at_least,
    robot_profile,
)
from etude.errors import InputError


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

    profile = robot_profile(args.profile)
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

    profile = robot_profile(args.profile)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise InputError(f"{out} exists; pass --force to overwrite it")
    score, adapted, before = adapt_score(profile, read_piece(Path(args.file)))
    ensure_dir(out.parent)
    score.dump_midi(str(out))
    print(f"{out}: {adapted.report(before)}")
    return 0


def add_robot(sub, help: str) -> None:
    p = sub.add_parser(
        "robot",
        help=help,
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
    c.add_argument("--limit", type=at_least(0), default=20, help="violations listed per file (default 20; 0: all)")
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
