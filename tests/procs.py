"""Processes seen through Linux's /proc: for tests that check no worker outlives its parent."""

from __future__ import annotations

import os


def _stat_fields(pid: int | str) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and (f := _stat_fields(p)) and int(f[1]) == pid]


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie or a vanished process does not)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")
