"""Opening one training run: its settings (saved ones on resume), device, data, model, optimiser
and schedule (restored on resume), run folder and metrics log, and what validation measures."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from etude.config import AIS, RunConfig, apply_overrides, from_dict, to_dict, validate
from etude.data.store import open_encoding, open_split, read_meta, tokens_per_second
from etude.data.windows import Windows, piece_batches, thin_pieces
from etude.errors import CheckpointError, ConfigError, InputError
from etude.evaluation.likelihood import frame_likelihood, marginal_log_probs, token_likelihood, unigram_log_probs
from etude.models.base import Model
from etude.models.checkpoint import Checkpoint, load_checkpoint
from etude.models.registry import build_model
from etude.paths import ensure_dir
from etude.runtime import pick_device, seed_everything
from etude.training.checkpoints import read_resume_state, save_run_checkpoint
from etude.training.distributed import Distributed
from etude.training.metrics_log import MetricsLog

log = logging.getLogger(__name__)


def lr_factor(it: int, cfg) -> float:
    """Linear warm-up to 1, then cosine decay to min_lr_frac at the last planned iteration
    (train.schedule_iterations, or train.iterations), held there after it."""
    if it < cfg.warmup:
        return (it + 1) / cfg.warmup
    span = max(1, (cfg.schedule_iterations or cfg.iterations) - cfg.warmup)
    progress = min(1.0, (it - cfg.warmup) / span)
    return cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))


def _build_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def open_data(cfg: RunConfig):
    if not cfg.data:
        raise ConfigError("no data folder: pass DATA_DIR (made by `etude data prepare`)")
    meta = read_meta(Path(cfg.data))
    encoding = open_encoding(Path(cfg.data))
    train_rows, train_index = open_split(Path(cfg.data), "train")
    valid_rows, valid_index = open_split(Path(cfg.data), "valid")
    if len(train_index) == 0:
        raise InputError(f"{cfg.data} has no training pieces")
    if len(valid_index) == 0:
        log.warning("no validation pieces: validating on training pieces")
        valid_rows, valid_index = train_rows, train_index
    return meta, encoding, (train_rows, train_index), (valid_rows, valid_index)


def data_plan(model: Model, config: RunConfig, encoding, train_split, valid_split, device):
    """The model's training windows and a function returning validation metrics in its unit."""
    tc = config.train
    (train_rows, train_index), (valid_rows, valid_index) = train_split, valid_split
    windows = model.training_windows(train_rows, train_index, tc)
    if model.unit == "token":
        batches = list(
            Windows(valid_rows, valid_index, tc.eval_len or tc.seq_len, encoding.pad_id).fixed_batches(
                tc.batch_size, tc.eval_batches * tc.batch_size
            )
        )
        unigram = unigram_log_probs(train_rows, encoding.vocab_size, encoding.pad_id)
        return windows, lambda: token_likelihood(model, batches, device, unigram)
    batches = list(piece_batches(valid_rows, thin_pieces(valid_index, tc.eval_frames)))
    ais = AIS(tc.ais_temps, tc.ais_runs) if model.estimated_likelihood else None
    marginal = marginal_log_probs(train_rows)
    return windows, lambda: frame_likelihood(model, batches, device, ais, marginal)


@dataclass
class Run:
    """One training invocation, set up by `open_run` and advanced by `_loop`."""

    config: RunConfig
    run_dir: Path
    ddp: Distributed
    device: torch.device
    encoding: Any
    model: torch.nn.Module  # the trained weights
    averaged: torch.nn.Module | None  # their moving average (train.average), validated and saved
    optimizer: torch.optim.Optimizer
    scheduler: Any
    start: int  # iteration this invocation starts at
    best: dict[str, Any]  # best validation loss and its iteration
    metrics: dict[str, Any]  # last validation metrics
    windows: Windows
    validate: Any  # () -> validation metrics
    log: MetricsLog | None  # the main process's metrics.csv
    tokens_per_second: float | None  # the training music's density (99th percentile), for generation's token cap

    def save(self, it: int, is_best: bool) -> None:
        """Checkpoint `ckpt-{it}`: every process takes part (RNG states), the main one writes."""
        rng = self.ddp.gather(torch.get_rng_state())
        carried = self.ddp.gather(_on_cpu(self.model.carried)) if self.config.train.carry_state else None
        if self.ddp.main:
            state = {
                "iteration": it,
                "best": self.best,
                "metrics": self.metrics,
                "data": self.config.data,
                "tokens_per_second": self.tokens_per_second,
            }
            save_run_checkpoint(
                self.run_dir / "checkpoints",
                it,
                self.model,
                self.optimizer,
                self.scheduler,
                self.config,
                self.encoding,
                state,
                is_best,
                rng,
                self.averaged,
                carried,
            )


def _on_cpu(state: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, ...] | None:
    return None if state is None else tuple(t.cpu() for t in state)


def _run_config(config: RunConfig | None, run_dir: Path, resume: bool, overrides: list[str], force: bool):
    """The run's settings (saved ones on resume, overrides on top), validated; its last checkpoint;
    and, for a run with no checkpoint yet that starts from a trained model (`init`), that model,
    whose model settings a new run takes before the overrides."""
    ckpt = source = None
    if resume:
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise CheckpointError(f"cannot resume: {run_dir} is not a run folder (no config.json)")
        try:
            config = from_dict(RunConfig, json.loads(config_path.read_text()))
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"cannot resume: {config_path} is not a run's settings ({exc})") from None
        last = run_dir / "checkpoints" / "last"
        ckpt = load_checkpoint(last) if last.exists() else None
    elif run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())) and not force:
        raise CheckpointError(
            f"{run_dir} exists and is not an empty folder; use --resume to continue it or --force to overwrite it"
        )
    config = config or RunConfig()
    if ckpt is None and config.init:
        source = load_checkpoint(Path(config.init))
        if not resume:
            config.model = copy.deepcopy(source.config.model)
    config = apply_overrides(config, overrides)
    validate(config)
    return config, ckpt, source


def open_run(config: RunConfig | None, run_dir: Path, resume: bool, overrides: list[str], force: bool) -> Run:
    """Settings, device, data, model, optimiser (restored on resume), run folder and metrics log."""
    config, ckpt, source = _run_config(config, run_dir, resume, overrides, force)
    tc, device = config.train, pick_device(config.device)
    ddp = Distributed.from_env(device.type == "cuda")
    device = ddp.device(device)
    if tc.batch_size % ddp.world:
        raise ConfigError(
            f"train.batch_size {tc.batch_size} (the global batch) must divide among {ddp.world} processes"
        )
    _, encoding, train_split, valid_split = open_data(config)
    if ckpt is not None and ckpt.encoding.vocab != encoding.vocab:
        raise CheckpointError(
            f"the checkpoint's vocabulary does not match {config.data}'s; prepare the data with the run's settings"
        )

    seed_everything(config.seed)
    model = build_model(config.model, encoding).to(device)
    if tc.carry_state and not model.carries_state:
        raise ConfigError(
            f"train.carry_state: model {config.model.name} cannot carry its state from window to window; "
            "leave it off (the plain lstm can)",
            option="train.carry_state",
        )
    torch.manual_seed(config.seed + ddp.rank)  # dropout masks differ between processes
    optimizer = _build_optimizer(model, tc)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, tc))
    start, best, metrics = _start_from(model, optimizer, scheduler, ckpt, source, config, encoding, train_split, ddp)
    if ckpt is not None:
        log.info("resuming %s at iteration %d", run_dir, start)
    elif resume:
        log.info("%s has no checkpoint yet: starting from iteration 0", run_dir)
    averaged = copy.deepcopy(model).requires_grad_(False) if config.train.average > 0 else None
    if averaged is not None and ckpt is not None:
        averaged.load_state_dict(ckpt.model.state_dict())

    metrics_log = None
    if ddp.main:
        metrics_log = _open_run_dir(run_dir, config, start, fresh=force and not resume)
        log.info(
            "model %s, %.2fM parameters; %d training rows; device %s",
            config.model.describe(),
            sum(p.numel() for p in model.parameters()) / 1e6,
            len(train_split[0]),
            device,
        )
        log.info(
            "%d process(es): global batch %d windows x %d tokens (%d per process), peak learning rate %g",
            ddp.world,
            tc.batch_size,
            tc.seq_len,
            tc.batch_size // ddp.world,
            tc.lr,
        )
    windows, validate_fn = data_plan(averaged or model, config, encoding, train_split, valid_split, device)
    density = tokens_per_second(Path(config.data))
    return Run(
        config,
        run_dir,
        ddp,
        device,
        encoding,
        model,
        averaged,
        optimizer,
        scheduler,
        start,
        best,
        metrics,
        windows,
        validate_fn,
        metrics_log,
        density,
    )


def _start_from(model, optimizer, scheduler, ckpt, source, config, encoding, train_split, ddp) -> tuple:
    """Where training starts: a checkpoint's weights, optimiser, schedule and RNG (resume), a
    trained model's weights (--init), or fresh (frame models' output biases at the training
    frames' marginals). Returns (iteration, best, metrics)."""
    if ckpt is not None:
        extra = read_resume_state(ckpt)
        model.load_state_dict(extra.get("training_weights", ckpt.model.state_dict()))
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        rng = extra["torch_rng"]  # one state per process of the run that wrote it
        torch.set_rng_state(rng[min(ddp.rank, len(rng) - 1)])
        _restore_carried(model, extra.get("carried_state"), config.train.batch_size // ddp.world, ddp.rank)
        return ckpt.state["iteration"], ckpt.state["best"], ckpt.state.get("metrics", {})
    if source is not None:
        _load_init(model, source, encoding, config.model)
    elif model.unit == "frame":
        logp = marginal_log_probs(train_split[0])
        model.start_biases((logp[1] - logp[0]).to(next(model.parameters()).device))
    return 0, {"loss": math.inf, "iteration": -1}, {}


def _restore_carried(model, saved: list | None, lanes: int, rank: int) -> None:
    """train.carry_state: this process's lanes' state as the checkpoint saved it; none (the lanes
    start from zeros) when it was saved by a run with another share of lanes per process."""
    if not saved or all(state is None for state in saved):  # none saved, or saved before the first step
        return
    mine = saved[rank] if rank < len(saved) else None
    if mine is not None and mine[0].shape[1] == lanes:
        model.carried = tuple(t.to(next(model.parameters()).device) for t in mine)
    else:
        log.warning(
            "train.carry_state: the saved state has another number of lanes per process; lanes start from zeros"
        )


def _load_init(model: torch.nn.Module, source: Checkpoint, encoding, model_config) -> None:
    """The weights of the trained model `source` into `model` (same vocabulary, genres, shapes).
    Parts that `model` has and `source` lacks entirely (an lstm-memory's memory grown on an lstm)
    keep their fresh weights."""
    path = source.path
    if source.encoding.vocab != encoding.vocab or source.encoding.genres != encoding.genres:
        raise CheckpointError(
            f"cannot start from {path}: its vocabulary or genres ({', '.join(source.encoding.genres)}) differ from "
            "the data's; prepare the data with the model's encoding settings and genre folders"
        )
    weights = source.model.state_dict()
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError:  # a weight of another shape
        missing, unexpected = None, None
    new = {key.split(".")[0] for key in missing or ()}  # top-level parts with weights not in source
    if missing is None or unexpected or new & {key.split(".")[0] for key in weights}:
        raise CheckpointError(
            f"cannot start from {path}: its model is {source.config.model.describe()}, not "
            f"{model_config.describe()}; leave the model settings as saved"
        )
    log.info("starting from the weights of %s%s", path, f" ({', '.join(sorted(new))} new)" if new else "")


def _open_run_dir(run_dir: Path, config: RunConfig, start: int, fresh: bool) -> MetricsLog:
    """The run folder with config.json and checkpoints/ (emptied of a previous run's when `fresh`)."""
    if fresh:
        for stale in ("checkpoints", "tb"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        (run_dir / "metrics.csv").unlink(missing_ok=True)
    ensure_dir(run_dir, "run folder")
    save_config(run_dir, config)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    return MetricsLog(run_dir, start)


def save_config(run_dir: Path, config: RunConfig) -> None:
    """The run's settings into RUN/config.json, atomically (what --resume reads)."""
    tmp = run_dir / ".tmp-config.json"
    tmp.write_text(json.dumps(to_dict(config), indent=2))
    os.replace(tmp, run_dir / "config.json")
