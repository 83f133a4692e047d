"""Helpers for tests of training runs."""

import shutil
from pathlib import Path

from etude.config import load_preset
from etude.models.checkpoint import point
from etude.training.loop import train


def trained_and_resumed(data: Path, tmp_path: Path, setting: str) -> tuple[Path, Path]:
    """A tiny-preset run on `data` of 20 iterations with `setting` (checkpoints kept at 10 and
    20), and a copy of it rewound to its iteration-10 checkpoint and resumed from there: the two
    end alike when a resume repeats the uninterrupted run."""
    cfg = load_preset("tiny")
    cfg.data = str(data)
    whole = tmp_path / "whole"
    overrides = ["train.iterations=20", "train.eval_every=10", "train.keep_every=10", setting]
    train(cfg, whole, overrides=overrides, progress=False)
    cut = tmp_path / "cut"
    shutil.copytree(whole, cut, symlinks=True)
    point(cut / "checkpoints" / "last", cut / "checkpoints" / "ckpt-000010")
    shutil.rmtree(cut / "checkpoints" / "ckpt-000020")
    train(run_dir=cut, resume=True, progress=False)
    return whole, cut
