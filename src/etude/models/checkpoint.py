"""Self-contained checkpoint folders, written atomically.

A checkpoint folder holds:
  model.safetensors   the weights
  config.json         the run's settings plus what rebuilding the model needs (vocab, genres)
  tokenizer.json      the encoder (etude.data.encoding)
  optimizer.pt        optimiser, scheduler and RNG states (for resume only)
  state.json          iteration, best validation loss, last metrics

In a run folder, checkpoints live in `checkpoints/ckpt-NNNNNN/`; `checkpoints/last` and
`checkpoints/best` are symbolic links swapped atomically after the folder is complete, so a
kill at any moment leaves both pointing at a loadable checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from etude import __version__
from etude.config import RunConfig, from_dict, to_dict
from etude.data.encoding import Encoding, encoding_from_state
from etude.errors import CheckpointError, EtudeError
from etude.models.registry import build_model


@dataclass
class Checkpoint:
    path: Path
    model: torch.nn.Module  # LSTMGenerator, RollModel or WindowRBM (config.model.name)
    config: RunConfig
    encoding: Encoding
    state: dict[str, Any]  # state.json


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    config: RunConfig,
    encoding: Encoding,
    state: dict[str, Any],
    resume: dict[str, Any] | None = None,
) -> Path:
    """Write a complete checkpoint folder (through a temporary name, then rename)."""
    folder = Path(folder)
    tmp = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    meta = {
        "etude_version": __version__,
        "model": config.model.name,
        "vocab_size": encoding.vocab_size,
        "n_genres": len(encoding.genres),
        "run": to_dict(config),
    }
    (tmp / "config.json").write_text(json.dumps(meta, indent=2))
    (tmp / "tokenizer.json").write_text(json.dumps(encoding.state(), indent=2))
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    if resume is not None:
        torch.save(resume, tmp / "optimizer.pt")
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    _fsync_dir(folder.parent)
    return folder


def point(link: Path, target: Path) -> None:
    """Make `link` a symbolic link to `target` (a sibling folder), atomically."""
    tmp = link.with_name(f".tmp-{link.name}")
    tmp.unlink(missing_ok=True)
    os.symlink(target.name, tmp)
    os.replace(tmp, link)


def resolve(path: Path) -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (its best, else its last)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"not found: {path}")
    if (path / "model.safetensors").exists():
        return path
    for name in ("best", "last"):
        candidate = path / "checkpoints" / name
        if (candidate / "model.safetensors").exists():
            return candidate.resolve()
    raise CheckpointError(f"{path} holds no checkpoint (expected model.safetensors or checkpoints/best)")


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint (or a run folder's best) with nothing else needed."""
    folder = resolve(path)
    try:
        meta = json.loads((folder / "config.json").read_text())
        config = from_dict(RunConfig, meta["run"])
        encoding = encoding_from_state(json.loads((folder / "tokenizer.json").read_text()))
        model = build_model(config.model, encoding)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        state_path = folder / "state.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
    except EtudeError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        raise CheckpointError(f"corrupt or incomplete checkpoint {folder}: {str(exc).splitlines()[0][:200]}") from None
    if encoding.vocab_size != meta["vocab_size"]:
        raise CheckpointError(f"{folder}: tokenizer has {encoding.vocab_size} tokens, model {meta['vocab_size']}")
    return Checkpoint(folder, model.to(device).eval(), config, encoding, state)


def export_checkpoint(source: Path, target: Path) -> Path:
    """Copy a checkpoint's inference files (no optimiser state) into `target`, e.g. to ship it."""
    folder = resolve(source)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "state.json"):
        shutil.copyfile(folder / name, target / name)
        os.chmod(target / name, 0o644)
    return target
