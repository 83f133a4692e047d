"""`etude train`: the iteration-based training loop, its validation, checkpoints and resume.

Batches are a pure function of (seed, iteration), and the torch RNG state (dropout) is stored
in every checkpoint, so a run resumed from a checkpoint repeats the uninterrupted run exactly.
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from etude.checkpoint import load_checkpoint, point, write_checkpoint
from etude.config import AIS, RunConfig, apply_overrides, from_dict, to_dict, validate
from etude.data.cache import open_encoding, open_split, read_meta, tokens_per_second
from etude.data.encoding import PianoRollEncoding
from etude.distributed import Distributed
from etude.errors import CheckpointError, ConfigError, InputError
from etude.models.lstm import LSTMGenerator
from etude.models.registry import build_model
from etude.paths import ensure_dir
from etude.roll_eval import evaluate_rolls, marginal_log_probs, piece_batches, thin_pieces
from etude.runtime import bf16_supported, pick_device, seed_everything

log = logging.getLogger(__name__)
METRICS = ["iteration", "split", "loss", "perplexity", "accuracy", "lr", "tokens_per_s", "elapsed_s"]


class Windows:
    """Windows of seq_len + 1 rows taken inside pieces (never across two), padded when short.

    Event tokens give batches (x, y, genre): inputs and next-token targets (B, T) and (B,).
    Piano rolls (`roll=True`) give (frames (B, T + 1, 88) float, mask (B, T + 1) of real frames,
    genre (B,)); with `lead`, a window may start at the silent frame before its piece (row -1),
    so each piece's first frame is a target too.
    """

    def __init__(
        self,
        rows: np.ndarray,
        index: np.ndarray,
        seq_len: int,
        pad_id: int = 0,
        roll: bool = False,
        lead: bool = True,
        transpose: int = 0,
    ):
        self.rows, self.index, self.seq_len, self.pad_id = rows, index, seq_len, pad_id
        self.roll, self.first = roll, -1 if roll and lead else 0
        self.transpose = transpose if roll else 0  # random batches: each window shifted by -transpose..transpose keys
        lengths = index[:, 1].astype(np.float64)
        self.weights = np.maximum(lengths - 1, 1) / np.maximum(lengths - 1, 1).sum()

    def _window(self, piece: int, offset: int) -> np.ndarray:
        """Rows offset .. offset + seq_len of a piece (row -1: silent), pad_id/zeros past its end."""
        start, length, _ = (int(v) for v in self.index[piece])
        w = np.full(
            (self.seq_len + 1, self.rows.shape[1]),
            0 if self.roll else self.pad_id,
            dtype=np.float32 if self.roll else np.int64,
        )
        skip = max(0, -offset)  # the silent row before the piece
        take = min(self.seq_len + 1 - skip, length - offset - skip)
        w[skip : skip + take] = self.rows[start + offset + skip : start + offset + skip + take]
        return w

    def _tensors(self, spots: list[tuple[int, int]]):
        windows = np.stack([self._window(p, o) for p, o in spots])
        genres = torch.tensor([int(self.index[p, 2]) for p, _ in spots], dtype=torch.long)
        if self.roll:
            pos = np.arange(self.seq_len + 1)[None, :] + np.array([o for _, o in spots])[:, None]  # (B, T + 1)
            lengths = self.index[[p for p, _ in spots], 1][:, None]
            return torch.from_numpy(windows), torch.from_numpy((pos >= 0) & (pos < lengths)), genres
        w = torch.from_numpy(windows[..., 0])
        return w[:, :-1], w[:, 1:], genres

    def random_batch(self, rng: np.random.Generator, batch_size: int, part: slice = slice(None)):
        """A batch of windows at random places, pieces drawn by length.

        The whole batch's positions are drawn; only the windows in `part` are read, so data-parallel
        processes each read their own share of the same global batch.
        """
        pieces = rng.choice(len(self.index), size=batch_size, p=self.weights)
        rooms = np.maximum(0, self.index[pieces, 1] - self.seq_len - 1 - self.first)
        offsets = (rng.random(batch_size) * (rooms + 1)).astype(np.int64) + self.first
        batch = self._tensors([(int(p), int(o)) for p, o in zip(pieces, offsets)][part])
        if self.transpose:
            shifts = rng.integers(-self.transpose, self.transpose + 1, batch_size)[part]
            batch = (shift_keys(batch[0], shifts), *batch[1:])
        return batch

    def fixed_batches(self, batch_size: int, max_windows: int):
        """Consecutive windows covering every piece (evenly thinned to at most max_windows)."""
        spots = [
            (p, o)
            for p in range(len(self.index))
            for o in range(self.first, max(1, int(self.index[p, 1]) - 1), self.seq_len)
        ]
        if len(spots) > max_windows:
            spots = [spots[i] for i in np.linspace(0, len(spots) - 1, max_windows).astype(int)]
        for i in range(0, len(spots), batch_size):
            yield self._tensors(spots[i : i + batch_size])


def shift_keys(frames: torch.Tensor, shifts: np.ndarray) -> torch.Tensor:
    """Piano-roll windows (B, T, keys) each moved up by shifts[b] keys (down if negative);
    notes pushed past either end of the keyboard are dropped."""
    out = torch.zeros_like(frames)
    keys = frames.shape[-1]
    for b, s in enumerate(int(v) for v in shifts):
        if abs(s) < keys:
            out[b, :, max(s, 0) : keys + min(s, 0)] = frames[b, :, max(-s, 0) : keys - max(s, 0)]
    return out


def unigram_log_probs(rows: np.ndarray, vocab_size: int, pad_id: int) -> torch.Tensor:
    """Add-one smoothed log-frequencies of the training tokens: the baseline to beat."""
    counts = np.bincount(np.asarray(rows[:, 0], dtype=np.int64), minlength=vocab_size).astype(np.float64) + 1
    counts[pad_id] = 0
    logp = np.full(vocab_size, -np.inf)
    logp[counts > 0] = np.log(counts[counts > 0] / counts.sum())
    return torch.from_numpy(logp).float()


@torch.no_grad()
def evaluate(
    model: LSTMGenerator, batches, device: torch.device, unigram: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean loss (nats/token), perplexity and next-token accuracy over non-pad targets."""
    model.eval()
    total = correct = 0
    nll = uni = 0.0
    for x, y, g in batches:
        x, y, g = x.to(device), y.to(device), g.to(device)
        logits, _, _ = model(x, g)
        mask = y != model.pad_id
        logp = torch.log_softmax(logits.float(), -1)
        nll -= logp.gather(-1, y[..., None])[..., 0][mask].sum().item()
        correct += (logits.argmax(-1) == y)[mask].sum().item()
        total += mask.sum().item()
        if unigram is not None:
            uni -= unigram.to(device)[y[mask]].sum().item()
    model.train()
    if total == 0:
        return {"loss": math.nan, "perplexity": math.nan, "accuracy": math.nan}
    out = {"loss": nll / total, "perplexity": math.exp(nll / total), "accuracy": correct / total, "tokens": total}
    if unigram is not None:
        out["unigram_loss"] = uni / total
        out["unigram_perplexity"] = math.exp(uni / total)
    return out


def lr_factor(it: int, cfg) -> float:
    """Linear warm-up to 1, then cosine decay to min_lr_frac at the last iteration."""
    if it < cfg.warmup:
        return (it + 1) / cfg.warmup
    span = max(1, cfg.iterations - cfg.warmup)
    progress = min(1.0, (it - cfg.warmup) / span)
    return cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))


class _Stop:
    """Set by SIGINT/SIGTERM: the loop writes a checkpoint and returns."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in old:
            signal.signal(s, lambda sig, _frame: setattr(self, "signal", sig))
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


class _Objective(torch.nn.Module):
    """Calls the model's training objective -> (loss summed over targets, their count) through
    forward, the method DDP and torch.compile wrap."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *batch):
        return self.model.objective(*batch)


def describe_metrics(m: dict[str, Any]) -> str:
    """One line of validation metrics (event tokens or piano rolls)."""
    if "unigram_perplexity" in m:
        return (
            f"valid loss {m['loss']:.3f}, perplexity {m['perplexity']:.2f} (unigram {m['unigram_perplexity']:.2f}), "
            f"accuracy {m['accuracy']:.3f}"
        )
    floor = f"per-key marginals {m['marginal_loss']:.3f}"
    return f"valid NLL {m['loss']:.3f} nats/frame ({floor}), frame accuracy {m['accuracy']:.3f}"


def data_plan(model, config: RunConfig, encoding, train_split, valid_split, device):
    """The training windows and a function returning validation metrics, for the data's encoding."""
    tc = config.train
    (train_rows, train_index), (valid_rows, valid_index) = train_split, valid_split
    if not isinstance(encoding, PianoRollEncoding):
        windows = Windows(train_rows, train_index, tc.seq_len, encoding.pad_id)
        batches = list(
            Windows(valid_rows, valid_index, tc.seq_len, encoding.pad_id).fixed_batches(
                tc.batch_size, tc.eval_batches * tc.batch_size
            )
        )
        unigram = unigram_log_probs(train_rows, encoding.vocab_size, encoding.pad_id)
        return windows, lambda: evaluate(model, batches, device, unigram)
    if config.model.name == "rbm":  # windows of model.window frames, no silent lead-in
        windows = Windows(
            train_rows, train_index, config.model.window - 1, roll=True, lead=False, transpose=tc.roll_transpose
        )
    else:
        windows = Windows(train_rows, train_index, tc.seq_len, roll=True, transpose=tc.roll_transpose)
    batches = list(piece_batches(valid_rows, thin_pieces(valid_index, tc.eval_frames)))
    ais = AIS(tc.ais_temps, tc.ais_runs) if "rbm" in config.model.name else None
    marginal = marginal_log_probs(train_rows)
    return windows, lambda: evaluate_rolls(model, batches, device, ais, marginal)


@dataclass
class TrainResult:
    run_dir: Path
    iteration: int
    metrics: dict[str, Any]  # last validation metrics, with the unigram baseline
    best: dict[str, Any]  # best validation loss and its iteration
    planned: int  # train.iterations
    stopped_by: str  # done | patience | budget (train.max_minutes) | signal

    @property
    def interrupted(self) -> bool:
        """Stopped by SIGINT or SIGTERM (with a checkpoint to resume from)."""
        return self.stopped_by == "signal"


def _autocast(precision: str, device: torch.device):
    """A factory of the mixed-precision context for training steps (a no-op context for fp32).

    auto picks bf16 only on CUDA devices that support it; an explicit bf16 the device cannot run
    falls back to fp32 with a warning."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and bf16_supported("cuda") else "fp32"
    if precision == "bf16" and not bf16_supported(device.type):
        log.warning(
            "train.precision=bf16: this %s cannot run an LSTM in bf16 (no oneDNN support); training in fp32",
            device.type,
        )
        precision = "fp32"
    enabled = precision == "bf16"
    if enabled:
        log.info("bf16 autocast on %s", device)
    return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16, enabled=enabled)


def _build_optimizer(model: LSTMGenerator, cfg) -> torch.optim.Optimizer:
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


class MetricsLog:
    """metrics.csv (one row per log or validation) and TensorBoard scalars under RUN/tb.

    On resume, rows past the starting iteration (written after that checkpoint) are dropped: the
    kept rows go to a temporary file that atomically replaces the log, which is then only ever
    appended to, so a kill at any moment leaves the whole history up to the checkpoint.
    """

    def __init__(self, run_dir: Path, start: int):
        path = run_dir / "metrics.csv"
        if not (start and path.exists()):
            _write_metrics(path, [])
        else:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            kept = [r for r in rows if (r.get("iteration") or "").isdigit() and int(r["iteration"]) <= start]
            if len(kept) != len(rows):
                _write_metrics(path, kept)
        self.fh = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.fh, METRICS)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start or None)
        except ImportError:
            log.info("tensorboard not installed: logging to metrics.csv only")
            self.tb = None

    def record(self, it: int, split: str, m: dict, lr: float, tokens_per_s: float, elapsed: float) -> None:
        self.writer.writerow(
            {
                "iteration": it,
                "split": split,
                "loss": f"{m['loss']:.5f}",
                "perplexity": f"{m.get('perplexity', math.nan):.4f}",
                "accuracy": f"{m.get('accuracy', math.nan):.4f}",
                "lr": f"{lr:.3e}",
                "tokens_per_s": f"{tokens_per_s:.0f}",
                "elapsed_s": f"{elapsed:.1f}",
            }
        )
        self.fh.flush()
        if self.tb is not None:
            for k in ("loss", "perplexity", "accuracy"):
                if k in m:
                    self.tb.add_scalar(f"{split}/{k}", m[k], it)

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()


def _write_metrics(path: Path, rows: list[dict]) -> None:
    """metrics.csv with its header and `rows`, through a temporary file and an atomic rename."""
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, METRICS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def kept_by(name: str, keep_every: int) -> bool:
    """Whether checkpoint folder `ckpt-NNNNNN` is one that train.keep_every keeps."""
    return keep_every > 0 and int(name.split("-")[1]) % keep_every == 0


def out_of_patience(it: int, best: dict, tc) -> bool:
    """Whether train.patience eval_every intervals have passed since the best validation."""
    return tc.patience > 0 and best["iteration"] >= 0 and it - best["iteration"] >= tc.patience * tc.eval_every


@torch.no_grad()
def average_into(averaged: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """averaged <- decay * averaged + (1 - decay) * model, parameter by parameter (Polyak averaging)."""
    torch._foreach_lerp_(list(averaged.parameters()), list(model.parameters()), 1.0 - decay)


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
) -> None:
    """Write checkpoint `ckpt-{it}`, point `last` (and `best`) at it, delete the ones neither
    referenced nor kept by `train.keep_every`.

    `rng` holds the torch RNG state of every training process, in rank order. With `averaged`
    (train.average), the checkpoint's model is the average; the raw weights go with the optimiser."""
    resume_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "torch_rng": rng}
    if averaged is not None:
        resume_state["training_weights"] = model.state_dict()
    folder = write_checkpoint(ckpt_dir / f"ckpt-{it:06d}", averaged or model, config, encoding, state, resume_state)
    point(ckpt_dir / "last", folder)
    if is_best:
        point(ckpt_dir / "best", folder)
    keep = {(ckpt_dir / n).resolve().name for n in ("last", "best") if (ckpt_dir / n).exists()}
    for old in ckpt_dir.glob("ckpt-*"):
        if old.name not in keep and not kept_by(old.name, config.train.keep_every):
            shutil.rmtree(old, ignore_errors=True)


@dataclass
class _Run:
    """One training invocation, set up by `_open_run` and advanced by `_loop`."""

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
            )


def _read_resume_state(ckpt) -> dict[str, Any]:
    """optimizer.pt of a checkpoint: tensors and plain data only (weights_only), never code."""
    path = ckpt.path / "optimizer.pt"
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"cannot resume: {path} is missing") from None
    except Exception as exc:  # pickle.UnpicklingError for anything but tensors and plain data
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"refusing {path}: not a plain optimiser state ({first})") from None


def _run_config(config: RunConfig | None, run_dir: Path, resume: bool, overrides: list[str], force: bool):
    """The run's settings (saved ones on resume, overrides on top), validated, and its last checkpoint."""
    ckpt = None
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
    config = apply_overrides(config or RunConfig(), overrides)
    validate(config)
    return config, ckpt


def _open_run(config: RunConfig | None, run_dir: Path, resume: bool, overrides: list[str], force: bool) -> _Run:
    """Settings, device, data, model, optimiser (restored on resume), run folder and metrics log."""
    config, ckpt = _run_config(config, run_dir, resume, overrides, force)
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
    torch.manual_seed(config.seed + ddp.rank)  # dropout masks differ between processes
    optimizer = _build_optimizer(model, tc)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, tc))
    start, best, metrics = 0, {"loss": math.inf, "iteration": -1}, {}
    if ckpt is not None:
        extra = _read_resume_state(ckpt)
        model.load_state_dict(extra.get("training_weights", ckpt.model.state_dict()))
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        rng = extra["torch_rng"]  # one state per process of the run that wrote it
        torch.set_rng_state(rng[min(ddp.rank, len(rng) - 1)])
        start, best, metrics = ckpt.state["iteration"], ckpt.state["best"], ckpt.state.get("metrics", {})
        log.info("resuming %s at iteration %d", run_dir, start)
    else:
        if resume:
            log.info("%s has no checkpoint yet: starting from iteration 0", run_dir)
        if isinstance(encoding, PianoRollEncoding):
            logp = marginal_log_probs(train_split[0])
            model.start_biases((logp[1] - logp[0]).to(device))
    averaged = copy.deepcopy(model).requires_grad_(False) if tc.average > 0 else None
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
    return _Run(
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


def _open_run_dir(run_dir: Path, config: RunConfig, start: int, fresh: bool) -> MetricsLog:
    """The run folder with config.json and checkpoints/ (emptied of a previous run's when `fresh`)."""
    if fresh:
        for stale in ("checkpoints", "tb"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        (run_dir / "metrics.csv").unlink(missing_ok=True)
    ensure_dir(run_dir, "run folder")
    tmp = run_dir / ".tmp-config.json"
    tmp.write_text(json.dumps(to_dict(config), indent=2))
    os.replace(tmp, run_dir / "config.json")
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    return MetricsLog(run_dir, start)


class _Bar:
    """The progress bar: iterations, loss, tokens/s, and with train.max_minutes the time left
    (the sooner of the budget's end and the iterations' end)."""

    def __init__(self, run: _Run, show: bool):
        tc = run.config.train
        self.budget_s = tc.max_minutes * 60
        fmt = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]" if self.budget_s else None
        self.bar = tqdm(
            total=tc.iterations,
            initial=run.start,
            desc="train",
            unit="it",
            bar_format=fmt,
            disable=None if show and run.ddp.main else True,
        )
        self.start, self.total = run.start, tc.iterations

    def update(self, done: int, loss: float, tps: float, elapsed: float) -> None:
        self.bar.update(1)
        post = {"loss": f"{loss:.3f}", "tok_s": f"{tps:.0f}"}
        if self.budget_s:
            by_iterations = elapsed / max(done - self.start, 1) * (self.total - done)
            left = max(0.0, min(self.budget_s - elapsed, by_iterations))
            post["left"] = f"{int(left // 60)}:{int(left % 60):02d}"
        self.bar.set_postfix(post)


def _step(run: _Run, net, it: int, autocast, part: slice) -> tuple[float, int]:
    """One optimiser step on the global batch of iteration `it`; returns its mean loss and target count."""
    tc, ddp = run.config.train, run.ddp
    batch = run.windows.random_batch(np.random.default_rng([run.config.seed, it]), tc.batch_size, part)
    with autocast():
        loss_sum, count = net(*(t.to(run.device) for t in batch))
    loss_sum = loss_sum.float()
    # the mean over the global batch's targets: DDP averages gradients over processes
    count = ddp.sum(count.float()).clamp(min=1)
    run.optimizer.zero_grad(set_to_none=True)
    (loss_sum * ddp.world / count).backward()
    if tc.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), tc.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    if run.averaged is not None:
        average_into(run.averaged, run.model, tc.average)
    return (ddp.sum(loss_sum.detach()) / count).item(), int(count.item())


def _validate_and_save(run: _Run, done: int, tps: float, elapsed: float, say) -> None:
    """Validation metrics (main process), the best so far, and checkpoint `ckpt-{done}`."""
    is_best = False
    if run.ddp.main:
        run.metrics = run.validate()
        run.log.record(done, "valid", run.metrics, run.scheduler.get_last_lr()[0], tps, elapsed)
        is_best = run.metrics["loss"] < run.best["loss"]
        if is_best:
            run.best = {
                "loss": run.metrics["loss"],
                "perplexity": run.metrics.get("perplexity", math.nan),
                "iteration": done,
            }
        say(f"iteration {done}: {describe_metrics(run.metrics)}")
    run.save(done, is_best)


def train(
    config: RunConfig | None = None,
    run_dir: Path = Path("run"),
    resume: bool = False,
    overrides: list[str] | None = None,
    force: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume) a generator into `run_dir`; returns the last and best metrics.

    A new run refuses a non-empty `run_dir` unless `force`. `resume` continues from
    `run_dir/checkpoints/last` with the run's saved config, `overrides` applied on top (for example
    `train.iterations=6000` to extend a run). Every setting is validated before any work starts.
    SIGINT and SIGTERM are caught from the first moment: a run stopped by one saves a checkpoint
    and returns with `interrupted` set.
    """
    stop = _Stop()
    with stop.installed():  # before any file a caller could wait on exists
        run = _open_run(config, Path(run_dir), resume, list(overrides or []), force)
        return _loop(run, stop, progress)


def _loop(run: _Run, stop: _Stop, progress: bool) -> TrainResult:
    """The iterations: a step, a log row, validation and a checkpoint when due, one stop check."""
    tc, ddp = run.config.train, run.ddp
    objective = _Objective(run.model)
    net = ddp.wrap(torch.compile(objective) if tc.compile else objective)
    net.train()
    autocast = _autocast(tc.precision, run.device)
    share = tc.batch_size // ddp.world
    part = slice(ddp.rank * share, (ddp.rank + 1) * share)
    bar = _Bar(run, progress)
    say = bar.bar.write if progress else log.info
    t0, tokens_seen, done, saved = time.perf_counter(), 0, run.start, -1
    reason = "running" if done < tc.iterations else "done"
    if out_of_patience(done, run.best, tc):
        log.info(
            "%s stopped early at iteration %d (best at %d): nothing to train; train.patience=0 continues it",
            run.run_dir,
            done,
            run.best["iteration"],
        )
        reason = "patience"
    finished = False  # every process reached the end (or the stop) together
    try:
        while reason == "running":
            # 1. one optimiser step
            loss, count = _step(run, net, done, autocast, part)
            done += 1
            tokens_seen += count
            elapsed = time.perf_counter() - t0
            tps = tokens_seen / max(elapsed, 1e-9)
            bar.update(done, loss, tps, elapsed)
            # 2. the training-loss log
            if run.log and done % tc.log_every == 0:
                ppl = math.exp(min(loss, 50)) if isinstance(run.model, LSTMGenerator) else math.nan
                run.log.record(
                    done, "train", {"loss": loss, "perplexity": ppl}, run.scheduler.get_last_lr()[0], tps, elapsed
                )
            # 3. validation and a checkpoint, when due
            out_of_time = ddp.any(tc.max_minutes > 0 and elapsed > tc.max_minutes * 60)
            kept = tc.keep_every > 0 and done % tc.keep_every == 0
            if done % tc.eval_every == 0 or done == tc.iterations or out_of_time or kept:
                _validate_and_save(run, done, tps, elapsed, say)
                saved = done
            # 4. the one stop check: the end, patience, the time budget, or a signal
            patience = saved == done and ddp.any(ddp.main and out_of_patience(done, run.best, tc))
            signalled = ddp.any(stop.signal is not None)
            if done >= tc.iterations:
                reason = "done"
            elif patience or out_of_time or signalled:
                reason = "patience" if patience else "budget" if out_of_time else "signal"
        if reason == "signal" and saved != done:
            run.save(done, False)
        finished = True
    finally:
        bar.bar.close()
        if run.log:
            run.log.close()
        del net  # DDP's reducer holds the process group: release it before leaving the group
        ddp.close(together=finished)
    if ddp.main:
        _say_why_stopped(run, reason, done)
    return TrainResult(run.run_dir, done, run.metrics, run.best, tc.iterations, reason)


def _say_why_stopped(run: _Run, reason: str, done: int) -> None:
    tc = run.config.train
    if reason == "patience" and done > run.start:
        log.info(
            "no better validation in %d iterations: stopping at %d (best at %d)",
            done - run.best["iteration"],
            done,
            run.best["iteration"],
        )
    elif reason == "budget":
        log.warning(
            "time budget of %g minutes reached at iteration %d of %d; continue with: etude train --resume %s",
            tc.max_minutes,
            done,
            tc.iterations,
            run.run_dir,
        )
    elif reason == "signal":
        log.warning("stopped at iteration %d; continue with: etude train --resume %s", done, run.run_dir)
