"""`python -m etude` works like the `etude` command."""

from etude.cli import main

raise SystemExit(main())
