"""`etude train`: the iteration-based training loop, its stop conditions, progress and resume.

Batches are a pure function of (seed, iteration), and the torch RNG state (dropout) is stored
in every checkpoint, so a run resumed from a checkpoint repeats the uninterrupted run: bit for bit
on the machines measured, to within float32 rounding wherever a CPU kernel rounds differently in
another process.
Opening a run (settings, data, model, optimiser) is etude.training.run; checkpoints are
etude.training.checkpoints.
"""

from __future__ import annotations

import functools
import logging
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from etude.config import RunConfig
from etude.runtime import bf16_supported, compile_cache_for_this_cpu
from etude.training.metrics_log import describe_metrics
from etude.training.run import Run, open_run, save_config

log = logging.getLogger(__name__)


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


def out_of_patience(it: int, best: dict, tc) -> bool:
    """Whether train.patience eval_every intervals have passed since the best validation."""
    return tc.patience > 0 and best["iteration"] >= 0 and it - best["iteration"] >= tc.patience * tc.eval_every


@torch.no_grad()
def average_into(averaged: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """averaged <- decay * averaged + (1 - decay) * model, parameter by parameter (Polyak averaging)."""
    torch._foreach_lerp_(list(averaged.parameters()), list(model.parameters()), 1.0 - decay)


class _Bar:
    """The progress bar: iterations, loss, tokens/s, and with train.max_minutes the time left
    (the sooner of the budget's end and the iterations' end). Without a terminal (a log file, CI)
    tqdm draws nothing, so the same figures are logged as a line every LOG_EVERY_S seconds."""

    LOG_EVERY_S = 30.0

    def __init__(self, run: Run, show: bool):
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
        self.lines = show and run.ddp.main and self.bar.disable  # wanted, but no terminal to draw on
        self.logged = time.monotonic()

    def update(self, done: int, loss: float, tps: float, elapsed: float) -> None:
        self.bar.update(1)
        post = {"loss": f"{loss:.3f}", "tok_s": f"{tps:.0f}"}
        if self.budget_s:
            by_iterations = elapsed / max(done - self.start, 1) * (self.total - done)
            left = max(0.0, min(self.budget_s - elapsed, by_iterations))
            post["left"] = f"{int(left // 60)}:{int(left % 60):02d}"
        self.bar.set_postfix(post)
        if self.lines and time.monotonic() - self.logged >= self.LOG_EVERY_S:
            self.logged = time.monotonic()
            log.info("train: iteration %d of %d, %s", done, self.total, ", ".join(f"{k} {v}" for k, v in post.items()))


def _step(run: Run, net, it: int, autocast, part: slice) -> tuple[float, int]:
    """One optimiser step on the global batch of iteration `it`; returns its mean loss and target count."""
    tc, ddp = run.config.train, run.ddp
    batch = run.windows.batch(run.config.seed, it, tc.batch_size, part)
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


FIT_AFTER = 20  # iterations timed before the schedule is fitted to a time budget


def fit_schedule_to_budget(run: Run, done: int, elapsed: float) -> None:
    """With a time budget, once FIT_AFTER iterations are timed, plan the learning-rate schedule
    for the iterations the budget reaches at that speed (train.schedule_iterations), and save the
    plan into the run's config.json so that a resume keeps it. The first iterations are the
    slowest, so the plan errs short. Every process computes the same plan from their mean time."""
    tc = run.config.train
    if not tc.max_minutes or tc.schedule_iterations or done - run.start != FIT_AFTER:
        return
    timed = done - run.start
    elapsed = float(run.ddp.sum(torch.tensor([elapsed])).item()) / run.ddp.world
    reachable = done + int((tc.max_minutes * 60 - elapsed) * timed / max(elapsed, 1e-9))
    tc.schedule_iterations = max(done + 1, min(tc.iterations, reachable))
    run.scheduler.last_epoch -= 1  # the next iteration's rate again, now under the plan
    run.scheduler.step()
    if run.ddp.main:
        save_config(run.run_dir, run.config)
        log.info(
            "time budget: the learning rate is planned to reach its floor at iteration %d of %d (%.1f iterations/s)",
            tc.schedule_iterations,
            tc.iterations,
            timed / max(elapsed, 1e-9),
        )


def _validate_and_save(run: Run, done: int, lr: float, tps: float, elapsed: float, say) -> None:
    """Validation metrics (main process), the best so far, and checkpoint `ckpt-{done}`; `lr`:
    the learning rate iteration `done` trained at, for the log."""
    is_best = False
    if run.ddp.main:
        run.metrics = run.validate()
        run.log.record(done, "valid", run.metrics, lr, tps, elapsed)
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
        run = open_run(config, Path(run_dir), resume, list(overrides or []), force)
        return _loop(run, stop, progress)


def _loop(run: Run, stop: _Stop, progress: bool) -> TrainResult:
    """The iterations: a step, a log row, validation and a checkpoint when due, one stop check."""
    tc, ddp = run.config.train, run.ddp
    objective = _Objective(run.model)
    if tc.compile:
        compile_cache_for_this_cpu()
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
            # 1. one optimiser step (the scheduler then moves on to the next iteration's rate)
            lr = run.scheduler.get_last_lr()[0]
            loss, count = _step(run, net, done, autocast, part)
            done += 1
            tokens_seen += count
            elapsed = time.perf_counter() - t0
            tps = tokens_seen / max(elapsed, 1e-9)
            bar.update(done, loss, tps, elapsed)
            fit_schedule_to_budget(run, done, elapsed)
            # 2. the training-loss log
            if run.log and done % tc.log_every == 0:
                ppl = math.exp(min(loss, 50)) if run.model.unit == "token" else math.nan
                run.log.record(done, "train", {"loss": loss, "perplexity": ppl}, lr, tps, elapsed)
            # 3. validation and a checkpoint, when due
            out_of_time = ddp.any(tc.max_minutes > 0 and elapsed > tc.max_minutes * 60)
            kept = tc.keep_every > 0 and done % tc.keep_every == 0
            if done % tc.eval_every == 0 or done == tc.iterations or out_of_time or kept:
                _validate_and_save(run, done, lr, tps, elapsed, say)
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


def _say_why_stopped(run: Run, reason: str, done: int) -> None:
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
