"""`etude polyphonic`: train piano-roll models on a benchmark set (JSB Chorales,
Nottingham, MuseData, Piano-midi.de; .mat or .pickle), select on its validation part, and report
frame-level test NLL and frame accuracy beside the published figures.

NLL is in nats per frame, summed over the 88 keys and averaged over all test frames. LSTM and
LSTM-NADE likelihoods are exact; RBM and RNN-RBM ones are AIS estimates, repeated with different
seeds to show their spread.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from etude.config import AIS, PIANOROLL_MODELS, load_preset
from etude.data.polyphonic import prepare_rolls
from etude.data.store import open_split
from etude.data.windows import piece_batches
from etude.errors import ConfigError
from etude.evaluation.likelihood import frame_likelihood, marginal_floor_nll
from etude.models.checkpoint import load_checkpoint
from etude.training.loop import train

log = logging.getLogger(__name__)

# Test NLL (nats per frame) from the literature, as collected in shared/data/polyphonic/README.md.
PUBLISHED = {
    "jsb": [
        ("RNN (tanh), Boulanger-Lewandowski 2012", 8.71),
        ("LSTM, Chung et al. 2014", 8.67),
        ("LSTM, Bai et al. 2018", 8.45),
        ("TCN, Bai et al. 2018", 8.10),
        ("RNN-RBM, Boulanger-Lewandowski 2012", 6.27),
        ("RNN-NADE, Boulanger-Lewandowski 2012", 5.56),
        ("RNN-NADE (HF), Boulanger-Lewandowski 2012", 5.19),
        ("SRNN (bound), Fraccaro et al. 2016", 4.74),
    ],
    "nottingham": [
        ("RNN (tanh), Boulanger-Lewandowski 2012", 4.46),
        ("LSTM, Chung et al. 2014", 3.20),
        ("LSTM, Bai et al. 2018", 3.29),
        ("TCN, Bai et al. 2018", 3.07),
        ("RNN-RBM, Boulanger-Lewandowski 2012", 2.39),
        ("RNN-NADE, Boulanger-Lewandowski 2012", 2.31),
        ("SRNN (bound), Fraccaro et al. 2016", 2.94),
    ],
}
# The project's targets on test NLL (issue 4; lstm-nade's from issue 18).
TARGETS = {"jsb": {"lstm": 8.5, "rnn-rbm": 6.6, "lstm-nade": 5.0}, "nottingham": {"lstm": 3.3, "lstm-nade": 2.05}}


def dataset_key(path: Path) -> str:
    name = Path(path).stem.lower()
    return next((k for k in PUBLISHED if k in name), name)


@dataclass
class ModelResult:
    model: str
    test_nll: float  # nats per frame; for AIS estimates the mean over repeats
    test_nll_spread: float  # standard deviation over AIS repeats (0 when exact)
    test_nll_repeats: list[float]
    test_accuracy: float
    valid_nll: float  # the selected checkpoint's validation NLL (RBM models: the small training-time AIS)
    iteration: int  # the selected checkpoint's iteration
    iterations_run: int
    train_minutes: float
    eval_minutes: float
    frames: int
    ais: dict | None  # temps, runs, repeats for AIS estimates
    run_dir: str


def benchmark_model(
    data_dir: Path,
    model: str,
    out: Path,
    budget_minutes: float = 0.0,
    ais: AIS = AIS(),
    ais_repeats: int = 3,
    seed: int = 0,
    overrides: list[str] | None = None,
    progress: bool = True,
) -> ModelResult:
    """Train (or resume) one model on a prepared benchmark folder, then score its best checkpoint on test."""
    run_dir = Path(out) / model
    t0 = time.perf_counter()
    extra = list(overrides or []) + ([f"train.max_minutes={budget_minutes}"] if budget_minutes else [])
    if (run_dir / "config.json").exists():
        log.info("%s exists: resuming it (finished runs are only scored)", run_dir)
        result = train(run_dir=run_dir, resume=True, overrides=extra, progress=progress)
    else:
        config = load_preset("cpu", model, pianoroll=True)
        config.data, config.seed = str(Path(data_dir).resolve()), seed
        result = train(config, run_dir, overrides=extra, progress=progress)
    if result.interrupted:
        raise KeyboardInterrupt
    train_minutes = (time.perf_counter() - t0) / 60

    t1 = time.perf_counter()
    ckpt = load_checkpoint(run_dir)
    rows, index = open_split(Path(data_dir), "test")
    rbm_family = ckpt.model.estimated_likelihood
    repeats = []
    for r in range(ais_repeats if rbm_family else 1):
        settings = AIS(ais.temps, ais.runs, seed=ais.seed + r, max_chains=ais.max_chains) if rbm_family else None
        m = frame_likelihood(ckpt.model, piece_batches(rows, index), ais=settings)
        repeats.append(m["loss"])
        log.info("%s test NLL %.3f%s", model, m["loss"], f" (AIS repeat {r + 1})" if rbm_family else "")
    return ModelResult(
        model=model,
        test_nll=statistics.fmean(repeats),
        test_nll_spread=statistics.stdev(repeats) if len(repeats) > 1 else 0.0,
        test_nll_repeats=repeats,
        test_accuracy=m["accuracy"],
        valid_nll=ckpt.state.get("best", {}).get("loss", math.nan),
        iteration=int(ckpt.state.get("iteration", -1)),
        iterations_run=result.iteration,
        train_minutes=round(train_minutes, 2),
        eval_minutes=round((time.perf_counter() - t1) / 60, 2),
        frames=m["frames_scored"],
        ais={"temps": ais.temps, "runs": ais.runs, "repeats": ais_repeats} if rbm_family else None,
        run_dir=str(run_dir),
    )


def polyphonic(
    data: Path,
    models: list[str],
    out: Path,
    budget_minutes: float = 0.0,
    ais: AIS = AIS(),
    ais_repeats: int = 3,
    seed: int = 0,
    overrides: list[str] | None = None,
    progress: bool = True,
) -> dict:
    """Benchmark each model on the set at `data`; writes OUT/results.json (results of earlier calls
    for other models are kept) and returns it."""
    unknown = [m for m in models if m not in PIANOROLL_MODELS]
    if unknown:
        raise ConfigError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(PIANOROLL_MODELS)}")
    out = Path(out)
    data_dir = out / "data"
    prepare_rolls(Path(data), data_dir)
    train_rows, _ = open_split(data_dir, "train")
    test_rows, _ = open_split(data_dir, "test")
    header = {
        "data": str(Path(data).resolve()),
        "dataset": dataset_key(Path(data)),
        "marginal_floor_test_nll": marginal_floor_nll(train_rows, test_rows),
    }
    report = _record(out / "results.json", header)
    for model in models:
        r = benchmark_model(data_dir, model, out, budget_minutes, ais, ais_repeats, seed, overrides, progress)
        report = _record(out / "results.json", header, model, asdict(r))
    return report


def _record(path: Path, header: dict, model: str | None = None, result: dict | None = None) -> dict:
    """Read results.json, set the header (and one model's result), write it back atomically; so
    benchmarks of other models may share the folder from other processes."""
    report = json.loads(path.read_text()) if path.exists() else {}
    report.update(header)
    report.setdefault("models", {})
    if model is not None:
        report["models"][model] = result
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
    return report


def table(report: dict) -> str:
    """The results beside the published figures and the targets, as Markdown."""
    key = report.get("dataset", "")
    targets = TARGETS.get(key, {})
    lines = [
        f"Test NLL on {key} (nats per frame; lower is better). Per-key marginal floor: "
        f"{report['marginal_floor_test_nll']:.2f}",
        "",
        "| model | test NLL | AIS spread (sd) | frame acc. | valid NLL | best it. / run | train min | eval min "
        "| target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report.get("models", {}).items():
        spread = (
            f"{r['test_nll_spread']:.3f} ({r['ais']['repeats']} x {r['ais']['runs']} runs, {r['ais']['temps']} temps)"
            if r["ais"]
            else "exact"
        )
        target = targets.get(name)
        verdict = "" if target is None else f"<= {target}: {'met' if r['test_nll'] <= target else 'missed'}"
        lines.append(
            f"| {name} | {r['test_nll']:.2f} | {spread} | {r['test_accuracy']:.3f} | {r['valid_nll']:.2f} | "
            f"{r['iteration']} / {r['iterations_run']} | {r['train_minutes']:.1f} | {r['eval_minutes']:.1f} | "
            f"{verdict} |"
        )
    if key in PUBLISHED:
        lines += ["", "Published (test NLL); a bound is an upper bound on that model's NLL:", ""]
        lines += [f"- {who}: {v:.2f}: {_beaten_by(report, v)}" for who, v in PUBLISHED[key]]
    return "\n".join(lines)


def _beaten_by(report: dict, published: float) -> str:
    """Which of this run's models have a lower test NLL than a published figure, as one phrase."""
    better = [
        f"{name} ({r['test_nll']:.2f}{', AIS estimate' if r['ais'] else ''})"
        for name, r in report.get("models", {}).items()
        if r["test_nll"] < published
    ]
    return "beaten by " + ", ".join(better) if better else "not beaten"
