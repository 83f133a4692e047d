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
import random
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
from etude.config import RunConfig, apply_overrides, from_dict, to_dict
from etude.data.cache import open_encoding, open_split, read_meta
from etude.data.encoding import PianoRollEncoding
from etude.errors import CheckpointError, ConfigError, InputError
from etude.distributed import Distributed
from etude.models.lstm import LSTMGenerator
from etude.models.registry import build_model
from etude.config import AIS
from etude.roll_eval import evaluate_rolls, marginal_log_probs, piece_batches

log = logging.getLogger(__name__)
METRICS = ["iteration", "split", "loss", "perplexity", "accuracy", "lr", "tokens_per_s", "elapsed_s"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


class Windows:
    """Windows of seq_len + 1 rows taken inside pieces (never across two), padded when short.

    Event tokens give batches (x, y, genre): inputs and next-token targets (B, T) and (B,).
    Piano rolls (`roll=True`) give (frames (B, T + 1, 88) float, mask (B, T + 1) of real frames,
    genre (B,)); with `lead`, a window may start at the silent frame before its piece (row -1),
    so each piece's first frame is a target too.
    """

    def __init__(
        self, rows: np.ndarray, index: np.ndarray, seq_len: int, pad_id: int = 0, roll: bool = False, lead: bool = True, transpose: int = 0
    ):
        self.rows, self.index, self.seq_len, self.pad_id = rows, index, seq_len, pad_id
        self.roll, self.first = roll, -1 if roll and lead else 0
        self.transpose = transpose if roll else 0  # random batches: each window shifted by -transpose..transpose keys
        lengths = index[:, 1].astype(np.float64)
        self.weights = np.maximum(lengths - 1, 1) / np.maximum(lengths - 1, 1).sum()

    def _window(self, piece: int, offset: int) -> np.ndarray:
        """Rows offset .. offset + seq_len of a piece (row -1: silent), pad_id/zeros past its end."""
        start, length, _ = (int(v) for v in self.index[piece])
        w = np.full((self.seq_len + 1, self.rows.shape[1]), 0 if self.roll else self.pad_id, dtype=np.float32 if self.roll else np.int64)
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
        spots = [(p, o) for p in range(len(self.index)) for o in range(self.first, max(1, int(self.index[p, 1]) - 1), self.seq_len)]
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
def evaluate(model: LSTMGenerator, batches, device: torch.device, unigram: torch.Tensor | None = None) -> dict[str, float]:
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
    return f"valid NLL {m['loss']:.3f} nats/frame (per-key marginals {m['marginal_loss']:.3f}), frame accuracy {m['accuracy']:.3f}"


def data_plan(model, config: RunConfig, encoding, train_split, valid_split, device):
    """The training windows and a function returning validation metrics, for the data's encoding."""
    tc = config.train
    (train_rows, train_index), (valid_rows, valid_index) = train_split, valid_split
    if not isinstance(encoding, PianoRollEncoding):
        windows = Windows(train_rows, train_index, tc.seq_len, encoding.pad_id)
        batches = list(Windows(valid_rows, valid_index, tc.seq_len, encoding.pad_id).fixed_batches(tc.batch_size, tc.eval_batches * tc.batch_size))
        unigram = unigram_log_probs(train_rows, encoding.vocab_size, encoding.pad_id)
        return windows, lambda: evaluate(model, batches, device, unigram)
    if config.model.name == "rbm":  # windows of model.window frames, no silent lead-in
        windows = Windows(train_rows, train_index, config.model.window - 1, roll=True, lead=False, transpose=tc.roll_transpose)
    else:
        windows = Windows(train_rows, train_index, tc.seq_len, roll=True, transpose=tc.roll_transpose)
    batches = list(piece_batches(valid_rows, valid_index))
    ais = AIS(tc.ais_temps, tc.ais_runs) if "rbm" in config.model.name else None
    marginal = marginal_log_probs(train_rows)
    return windows, lambda: evaluate_rolls(model, batches, device, ais, marginal)


@dataclass
class TrainResult:
    run_dir: Path
    iteration: int
    interrupted: bool
    metrics: dict[str, Any]  # last validation metrics, with the unigram baseline
    best: dict[str, Any]  # best validation loss and its iteration


def _autocast(precision: str, device: torch.device):
    """A factory of the mixed-precision context for training steps (a no-op context for fp32)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"unknown train.precision {precision!r}; choose auto, fp32 or bf16")
    if precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        precision = "bf16" if cuda_bf16 else "fp32"
    enabled = precision == "bf16"
    if enabled:
        log.info("bf16 autocast on %s", device)
    return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16, enabled=enabled)


def _build_optimizer(model: LSTMGenerator, cfg) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ConfigError(f"unknown optimizer {cfg.optimizer!r}; choose adam or sgd")


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

    On resume, rows past the starting iteration (written after that checkpoint) are dropped.
    """

    def __init__(self, run_dir: Path, start: int):
        path = run_dir / "metrics.csv"
        rows = []
        if start and path.exists():
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["iteration"]) <= start]
        self.fh = open(path, "w", newline="")
        self.writer = csv.DictWriter(self.fh, METRICS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start or None)
        except ImportError:
            log.info("tensorboard not installed: logging to metrics.csv only")
            self.tb = None

    def record(self, it: int, split: str, m: dict, lr: float, tokens_per_s: float, elapsed: float) -> None:
        self.writer.writerow({
            "iteration": it, "split": split, "loss": f"{m['loss']:.5f}",
            "perplexity": f"{m.get('perplexity', math.nan):.4f}",
            "accuracy": f"{m.get('accuracy', math.nan):.4f}", "lr": f"{lr:.3e}",
            "tokens_per_s": f"{tokens_per_s:.0f}", "elapsed_s": f"{elapsed:.1f}",
        })
        self.fh.flush()
        if self.tb is not None:
            for k in ("loss", "perplexity", "accuracy"):
                if k in m:
                    self.tb.add_scalar(f"{split}/{k}", m[k], it)

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()


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
    ckpt_dir: Path, it: int, model, optimizer, scheduler, config: RunConfig, encoding, state: dict, is_best: bool, rng: list,
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


def train(
    config: RunConfig | None = None,
    run_dir: Path = Path("run"),
    resume: bool = False,
    overrides: list[str] | None = None,
    force: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume) an LSTM generator into `run_dir`; returns the last and best metrics.

    A new run refuses a non-empty `run_dir` unless `force`. `resume` continues from
    `run_dir/checkpoints/last` with the run's saved config, `overrides` applied on top (for example
    `train.iterations=6000` to extend a run).
    """
    run_dir = Path(run_dir)
    ckpt = None
    if resume:
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise CheckpointError(f"cannot resume: {run_dir} is not a run folder (no config.json)")
        config = from_dict(RunConfig, json.loads(config_path.read_text()))
        ckpt = load_checkpoint(run_dir / "checkpoints" / "last") if (run_dir / "checkpoints" / "last").exists() else None
    elif run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise CheckpointError(f"{run_dir} exists and is not empty; use --resume to continue it or --force to overwrite it")
    config = apply_overrides(config or RunConfig(), overrides or [])
    tc, device = config.train, pick_device(config.device)
    ddp = Distributed.from_env(device.type == "cuda")
    device = ddp.device(device)
    if tc.batch_size % ddp.world:
        raise ConfigError(f"train.batch_size {tc.batch_size} (the global batch) must divide among {ddp.world} processes")
    meta, encoding, (train_rows, train_index), (valid_rows, valid_index) = open_data(config)
    if ckpt is not None and ckpt.encoding.vocab != encoding.vocab:
        raise CheckpointError(f"the checkpoint's vocabulary does not match {config.data}'s; prepare the data with the run's settings")

    seed_everything(config.seed)
    model = build_model(config.model, encoding).to(device)
    torch.manual_seed(config.seed + ddp.rank)  # dropout masks differ between processes
    optimizer = _build_optimizer(model, tc)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, tc))
    start, best = 0, {"loss": math.inf, "iteration": -1}
    if ckpt is not None:
        extra = torch.load(ckpt.path / "optimizer.pt", weights_only=False)
        model.load_state_dict(extra.get("training_weights", ckpt.model.state_dict()))
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        rng = extra["torch_rng"]  # one state per process of the run that wrote it
        torch.set_rng_state(rng[min(ddp.rank, len(rng) - 1)])
        start, best = ckpt.state["iteration"], ckpt.state["best"]
        log.info("resuming %s at iteration %d", run_dir, start)
    else:
        if resume:
            log.info("%s has no checkpoint yet: starting from iteration 0", run_dir)
        if isinstance(encoding, PianoRollEncoding):
            logp = marginal_log_probs(train_rows)
            model.start_biases((logp[1] - logp[0]).to(device))
    # the moving average of the weights (train.average): validated, and saved as the checkpoint's model
    averaged = copy.deepcopy(model).requires_grad_(False) if tc.average > 0 else None
    if averaged is not None and ckpt is not None:
        averaged.load_state_dict(ckpt.model.state_dict())

    ckpt_dir = run_dir / "checkpoints"
    metrics_log = None
    if ddp.main:
        if force and not resume:
            for stale in ("checkpoints", "tb"):
                shutil.rmtree(run_dir / stale, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(to_dict(config), indent=2))
        ckpt_dir.mkdir(exist_ok=True)
        metrics_log = MetricsLog(run_dir, start)

    train_windows, validate = data_plan(averaged or model, config, encoding, (train_rows, train_index), (valid_rows, valid_index), device)
    if ddp.main:
        log.info(
            "model %s, %.2fM parameters; %d training rows; device %s",
            config.model.describe(), sum(p.numel() for p in model.parameters()) / 1e6, len(train_rows), device,
        )
        log.info(
            "%d process(es): global batch %d windows x %d tokens (%d per process), peak learning rate %g",
            ddp.world, tc.batch_size, tc.seq_len, tc.batch_size // ddp.world, tc.lr,
        )

    def save(it: int, metrics: dict, is_best: bool) -> None:
        rng = ddp.gather(torch.get_rng_state())  # every process takes part; the main one writes
        if ddp.main:
            state = {"iteration": it, "best": best, "metrics": metrics, "data": config.data}
            save_run_checkpoint(ckpt_dir, it, model, optimizer, scheduler, config, encoding, state, is_best, rng, averaged)

    stop = _Stop()
    metrics: dict[str, Any] = ckpt.state.get("metrics", {}) if ckpt else {}
    t0, tokens_seen, it = time.perf_counter(), 0, start
    objective = _Objective(model)
    net = ddp.wrap(torch.compile(objective) if tc.compile else objective)
    net.train()
    autocast = _autocast(tc.precision, device)
    share = tc.batch_size // ddp.world
    part = slice(ddp.rank * share, (ddp.rank + 1) * share)
    bar = tqdm(total=tc.iterations, initial=start, desc="train", unit="it", disable=None if progress and ddp.main else True)
    finished = False  # every process reached the end (or the stop) together
    end = tc.iterations
    if out_of_patience(start, best, tc):
        log.info("%s stopped early at iteration %d (best at %d): nothing to train; train.patience=0 continues it", run_dir, start, best["iteration"])
        end = start
    try:
        with stop.installed():
            for it in range(start, end):
                batch = train_windows.random_batch(np.random.default_rng([config.seed, it]), tc.batch_size, part)
                with autocast():
                    loss_sum, count = net(*(t.to(device) for t in batch))
                loss_sum = loss_sum.float()
                # the mean over the global batch's targets: DDP averages gradients over processes
                count = ddp.sum(count.float()).clamp(min=1)
                optimizer.zero_grad(set_to_none=True)
                (loss_sum * ddp.world / count).backward()
                if tc.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                optimizer.step()
                scheduler.step()
                if averaged is not None:
                    average_into(averaged, model, tc.average)
                loss = (ddp.sum(loss_sum.detach()) / count).item()
                tokens_seen += int(count.item())
                elapsed = time.perf_counter() - t0
                tps = tokens_seen / max(elapsed, 1e-9)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tps:.0f}")
                done = it = it + 1
                if metrics_log and done % tc.log_every == 0:
                    ppl = math.exp(min(loss, 50)) if isinstance(model, LSTMGenerator) else math.nan
                    metrics_log.record(done, "train", {"loss": loss, "perplexity": ppl}, scheduler.get_last_lr()[0], tps, elapsed)
                out_of_time = ddp.any(tc.max_minutes > 0 and elapsed > tc.max_minutes * 60)
                kept = tc.keep_every > 0 and done % tc.keep_every == 0
                if done % tc.eval_every == 0 or done == tc.iterations or out_of_time or kept:
                    is_best = False
                    if ddp.main:
                        metrics = validate()
                        metrics_log.record(done, "valid", metrics, scheduler.get_last_lr()[0], tps, elapsed)
                        is_best = metrics["loss"] < best["loss"]
                        if is_best:
                            best = {"loss": metrics["loss"], "perplexity": metrics.get("perplexity", math.nan), "iteration": done}
                        (bar.write if progress else log.info)(f"iteration {done}: {describe_metrics(metrics)}")
                    save(done, metrics, is_best)
                    if ddp.any(ddp.main and out_of_patience(done, best, tc)):
                        if ddp.main:
                            log.info("no better validation in %d iterations: stopping at %d (best at %d)", done - best["iteration"], done, best["iteration"])
                        break
                if out_of_time:
                    if ddp.main:
                        log.warning("train.max_minutes (%g) reached at iteration %d of %d", tc.max_minutes, done, tc.iterations)
                    break
                if ddp.any(stop.signal is not None):
                    save(done, metrics, False)
                    if ddp.main:
                        log.warning("stopped at iteration %d; continue with: etude train --resume %s", done, run_dir)
                    finished = True
                    return TrainResult(run_dir, done, True, metrics, best)
        finished = True
    finally:
        bar.close()
        if metrics_log:
            metrics_log.close()
        del net  # DDP's reducer holds the process group: release it before leaving the group
        ddp.close(together=finished)
    return TrainResult(run_dir, it, False, metrics, best)
