"""The study's runs: one per (configuration, seed), their settings, which are already trained,
and an estimate of the training time still to spend on this machine."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from etude.config import RunConfig, apply_overrides, load_preset
from etude.study.scales import Scale

ROLL_MODELS = ("rbm", "rnn-rbm")


@dataclass(frozen=True)
class RunSpec:
    """One training run of the study."""

    variant: str  # configuration name shared by its seeds, e.g. lstm-h128-l2-k0.7
    model: str  # lstm | rbm | rnn-rbm
    seed: int
    overrides: tuple[str, ...]
    base: bool = False  # the base run keeps checkpoints along the way

    @property
    def name(self) -> str:
        return f"{self.variant}-seed{self.seed}"


def lstm_variant(hidden: int, layers: int, keep: float) -> str:
    return f"lstm-h{hidden}-l{layers}-k{keep:g}"


def run_specs(scale: Scale, seeds: int) -> list[RunSpec]:
    """The distinct runs of the study (the base configuration is shared by every sweep), base first."""
    combos = [(scale.base_hidden, scale.base_layers, scale.base_keep)]
    combos += [(scale.base_hidden, scale.base_layers, k) for k in scale.keep_probs]
    combos += [(h, scale.base_layers, scale.base_keep) for h in scale.hidden]
    combos += [(scale.base_hidden, n, scale.base_keep) for n in scale.layers]
    specs = []
    for seed in range(seeds):
        for h, n, k in dict.fromkeys(combos):
            base = (h, n, k) == combos[0]
            extra = (f"train.keep_every={scale.keep_every}",) if base else ()
            over = (*scale.train, f"model.hidden={h}", f"model.layers={n}", f"model.keep_prob={k}", *extra)
            specs.append(RunSpec(lstm_variant(h, n, k), "lstm", seed, over, base))
        specs += [RunSpec(m, m, seed, scale.roll) for m in ROLL_MODELS]
    return specs


def run_config(spec: RunSpec, scale: Scale, data: Path, roll_data: Path) -> RunConfig:
    pianoroll = spec.model in ROLL_MODELS
    cfg = load_preset(scale.preset, spec.model, pianoroll)
    cfg.data, cfg.seed = str(roll_data if pianoroll else data), spec.seed
    return apply_overrides(cfg, list(spec.overrides))


@dataclass
class StudyPlan:
    scale: Scale
    seeds: int
    workers: int
    specs: list[RunSpec] = field(default_factory=list)
    estimate_s: float = 0.0  # training time on this machine, all runs still to do, with `workers`


def seconds_per_iteration(cfg: RunConfig, steps: int = 2, batch: int = 4) -> float:
    """Seconds per training iteration of `cfg`, from timing `steps` steps of a `batch`-window batch
    (after one warm-up step), scaled to the configured batch."""
    import torch

    from etude.models.registry import build_model
    from etude.runtime import pick_device
    from etude.training.run import open_data

    _, encoding, (train_rows, train_index), _ = open_data(cfg)
    device = pick_device(cfg.device)
    model = build_model(cfg.model, encoding).to(device)
    windows = model.training_windows(train_rows, train_index, cfg.train)
    opt = torch.optim.Adam(model.parameters())
    b = min(batch, cfg.train.batch_size)
    for step in range(steps + 1):
        if step == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss, count = model.objective(*(t.to(device) for t in windows.batch(0, step, b)))
        opt.zero_grad()
        (loss / count.clamp(min=1)).backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps * cfg.train.batch_size / b


def plan(scale: Scale, seeds: int, workers: int, data: Path, roll_data: Path, out: Path) -> StudyPlan:
    """The runs and an estimate of the training time still to spend."""
    p = StudyPlan(scale, seeds, workers, run_specs(scale, seeds))
    timed: dict[str, float] = {}
    total = 0.0
    for spec in p.specs:
        cfg = run_config(spec, scale, data, roll_data)
        if is_trained(out / "runs" / spec.name, cfg.train.iterations):
            continue
        if spec.variant not in timed:
            timed[spec.variant] = seconds_per_iteration(cfg)
        total += timed[spec.variant] * cfg.train.iterations
    p.estimate_s = total / max(1, min(workers, os.cpu_count() or 1))
    return p


def is_trained(run_dir: Path, iterations: int) -> bool:
    last = run_dir / "checkpoints" / "last"
    if not (run_dir / "config.json").exists() or not last.exists():
        return False
    return json.loads((last.resolve() / "state.json").read_text())["iteration"] >= iterations
