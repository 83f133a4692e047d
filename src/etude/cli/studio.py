"""`etude studio`: the browser studio (an HTTP API and its page)."""

from __future__ import annotations

import argparse
import sys

from etude.cli.common import (
    at_least,
    optional_path,
)
from etude.errors import InputError


def cmd_studio(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from etude.studio.app import create_app
    except ImportError:
        raise InputError("the studio needs its extra: pip install 'etude[studio]' (fastapi, uvicorn)") from None
    from etude.perform.outputs import Outputs
    from etude.studio.access import Access
    from etude.studio.config import OUTPUT_FLAGS, StudioConfig

    outputs = Outputs(**{key: getattr(args, f"output_{key}") for key in OUTPUT_FLAGS})
    access = Access.for_address(args.host, args.port, args.allow_host, token=args.token)
    app = create_app(
        StudioConfig(args.model, optional_path(args.runs), optional_path(args.folder), outputs, access=access)
    )
    print(f"etude studio: {access.url(args.host, args.port)} (API docs at /docs); Ctrl-C stops it", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def add_studio(sub, help: str) -> None:
    from etude.studio.config import OUTPUT_FLAGS

    p = sub.add_parser(
        "studio",
        help=help,
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
    p.add_argument("--port", type=at_least(0), default=8765, help="HTTP port (default 8765)")
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
