"""Helpers for tests of training runs."""

import shutil
from pathlib import Path

from etude.models.checkpoint import point


def rewound_copy(run: Path, dest: Path, iteration: int) -> Path:
    """A copy of run folder `run` at `dest` whose `last` checkpoint is the one of `iteration`,
    every later checkpoint removed: resuming it repeats what `run` did after that iteration."""
    shutil.copytree(run, dest, symlinks=True)
    checkpoints = dest / "checkpoints"
    point(checkpoints / "last", checkpoints / f"ckpt-{iteration:06d}")
    for later in checkpoints.glob("ckpt-*"):
        if int(later.name.split("-")[1]) > iteration:
            shutil.rmtree(later)
    return dest
