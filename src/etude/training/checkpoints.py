"""Checkpoints of a training run: `ckpt-NNNNNN` folders (etude.models.checkpoint) with the
optimiser state for resume, the `last` and `best` links, and which old ones are kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from etude.config import RunConfig
from etude.errors import CheckpointError
from etude.models.checkpoint import point, write_checkpoint


def kept_by(name: str, keep_every: int) -> bool:
    """Whether checkpoint folder `ckpt-NNNNNN` is one that train.keep_every keeps."""
    return keep_every > 0 and int(name.split("-")[1]) % keep_every == 0


def save_run_checkpoint(
    ckpt_dir: Path,
    it: int,
    model,
    optimizer,
    scheduler,
    config: RunConfig,
    encoding,
    state: dict,
    is_best: bool,
    rng: list,
    averaged: torch.nn.Module | None = None,
    carried: list | None = None,
) -> None:
    """Write checkpoint `ckpt-{it}`, point `last` (and `best`) at it, delete the ones neither
    referenced nor kept by `train.keep_every`.

    `rng` holds the torch RNG state of every training process, in rank order. With `averaged`
    (train.average), the checkpoint's model is the average; the raw weights go with the optimiser.
    `carried` (train.carry_state): every process's lanes' LSTM state, in rank order."""
    resume_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "torch_rng": rng}
    if averaged is not None:
        resume_state["training_weights"] = model.state_dict()
    if carried is not None:
        resume_state["carried_state"] = carried
    folder = write_checkpoint(ckpt_dir / f"ckpt-{it:06d}", averaged or model, config, encoding, state, resume_state)
    point(ckpt_dir / "last", folder)
    if is_best:
        point(ckpt_dir / "best", folder)
    keep = {(ckpt_dir / n).resolve().name for n in ("last", "best") if (ckpt_dir / n).exists()}
    for old in ckpt_dir.glob("ckpt-*"):
        if old.name not in keep and not kept_by(old.name, config.train.keep_every):
            shutil.rmtree(old, ignore_errors=True)


def read_resume_state(ckpt) -> dict[str, Any]:
    """optimizer.pt of a checkpoint: tensors and plain data only (weights_only), never code."""
    path = ckpt.path / "optimizer.pt"
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"cannot resume: {path} is missing") from None
    except Exception as exc:  # pickle.UnpicklingError for anything but tensors and plain data
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"refusing {path}: not a plain optimiser state ({first})") from None
