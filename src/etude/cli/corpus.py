"""`etude corpus`: the built-in corpus, and the public piano sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from etude.cli.common import (
    at_least,
)


def cmd_corpus_builtin(args: argparse.Namespace) -> int:
    from etude.data.builtin import STYLES, default_dir, export_builtin

    out = Path(args.out) if args.out else default_dir()
    counts = export_builtin(out, per_genre=args.per_genre, styles=args.styles, workers=args.workers)
    described = {s.name: s.description for s in STYLES}
    print(f"built-in corpus in {out}")
    for name, n in counts.items():
        print(f"  {name:<11} {n:>5} pieces  {described[name]}")
    return 0


def add_corpus(sub, help: str) -> None:
    from etude.data.builtin import STYLES

    p = sub.add_parser("corpus", help=help, description="Make corpora.")
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
        type=at_least(1),
        default=200,
        metavar="N",
        help="pieces per style (default 200, as in the study)",
    )
    b.add_argument("--out", metavar="DIR", help="output folder (default $ETUDE_HOME/corpus/builtin)")
    b.add_argument("--styles", nargs="+", metavar="STYLE", help="only these styles (default all)")
    b.add_argument("--workers", type=at_least(1), metavar="N", help="parallel processes (default: all cores)")
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
