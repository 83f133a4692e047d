"""`etude experiment study`: the hyper-parameter study behind the method, as one resumable command.

Around one base configuration, with everything else fixed:
1. keep probability (dropout): training and validation loss against iteration;
2. training length: checkpoints kept along the base run, each scored by spectral distance and NLL;
3. hidden units: test NLL, spectral distance and training time against units;
4. layers: test NLL and spectral distance against depth, spectrograms per depth;
5. the LSTM (base run) against a frame RBM and an RNN-RBM trained on the same corpus as piano rolls.

Every (configuration, seed) is a run folder OUT/runs/NAME-seedS holding its config.json; a run
whose last checkpoint reached its iterations and which has eval.json is skipped, so an interrupted
study resumes. Runs go through a process pool of `workers`. The spectral distance is the log
spectral distance (dB) between the mean spectrum of a run's generated pieces and that of the
original test pieces, all rendered with the same SoundFont (etude.evaluation.compare).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from etude.config import DataConfig, EncodingConfig
from etude.errors import InputError
from etude.evaluation import metrics as M
from etude.paths import ensure_dir
from etude.study.claims import aggregate, claims
from etude.study.plan import RunSpec, StudyPlan, is_trained, lstm_variant, plan, run_config
from etude.study.scales import SCALES, Scale

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data
def prepare_roll_twin(data: Path, out: Path) -> Path:
    """The corpus `data` was prepared from, prepared again as piano rolls (same split settings)."""
    from etude.data import prepare
    from etude.data.store import read_meta

    meta = read_meta(data)
    if meta["settings"]["encoding"]["name"] == "pianoroll":
        raise InputError(
            f"{data} holds piano rolls; the study's LSTM runs need event tokens (etude data prepare CORPUS)"
        )
    corpus = Path(meta.get("corpus", ""))
    if not corpus.exists():
        raise InputError(
            f"the corpus {data} was prepared from ({corpus}) is gone; the RBM runs need it as piano rolls: pass "
            "--roll-data DIR made with `etude data prepare CORPUS --encoding pianoroll`"
        )
    prepare(corpus, out, DataConfig(**meta["settings"]["data"]), EncodingConfig(name="pianoroll"), workers=1)
    return out


# ----------------------------------------------------------------------------- one run


def train_seconds(metrics_csv: Path) -> float:
    """Training time of a run over all its sessions: elapsed_s restarts at each resume."""
    import csv

    total, last = 0.0, 0.0
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            t = float(row["elapsed_s"])
            if t < last:
                total += last
            last = t
    return total + last


def loss_curves(metrics_csv: Path) -> dict[str, list[list[float]]]:
    """split -> [[iteration, loss], ...] from a run's metrics.csv."""
    import csv

    out: dict[str, list[list[float]]] = {"train": [], "valid": []}
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["split"], []).append([int(row["iteration"]), float(row["loss"])])
    return out


def score_checkpoint(
    folder: Path, scale: Scale, seed: int, reference: np.ndarray, soundfont: Path | None, sample: Path | None
) -> dict:
    """Spectral distance, statistics (and test NLL for event tokens) of one checkpoint's pieces."""
    from etude.data.encoding import EventEncoding
    from etude.evaluation.compare import analyse, generated_set, set_statistics, split_likelihood
    from etude.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(folder)
    pieces = generated_set(ckpt.config.model.name, ckpt, ckpt.encoding.genres, scale.pieces, scale.length, seed)
    analyse(pieces, soundfont)
    mean = np.mean(pieces.spectra, axis=0)
    out: dict[str, Any] = {
        "iteration": ckpt.state["iteration"],
        "spectral_distance_db": M.log_spectral_distance(mean, reference),
        "statistics": set_statistics(pieces),
        "mean_spectrum": mean.tolist(),
    }
    if isinstance(ckpt.encoding, EventEncoding):
        out["test_nll"] = split_likelihood(ckpt)["test_nll_nats_per_token"]
    if sample is not None and pieces.scores:
        pieces.scores[0].dump_midi(str(sample))
    return out


def execute(spec: RunSpec, scale: Scale, data: Path, roll_data: Path, out: Path, soundfont: Path | None) -> dict:
    """Train (or resume) one run and score it; skips whatever is already done. Returns its eval."""
    from etude.training.checkpoints import kept_by
    from etude.training.loop import train

    run_dir = out / "runs" / spec.name
    cfg = run_config(spec, scale, data, roll_data)
    eval_path = run_dir / "eval.json"
    trained = is_trained(run_dir, cfg.train.iterations)
    if trained and eval_path.exists():
        return {**json.loads(eval_path.read_text()), "skipped": True}
    if not trained:
        resume = (run_dir / "config.json").exists()
        over = [f"train.iterations={cfg.train.iterations}"] if resume else []
        train(None if resume else cfg, run_dir, resume=resume, overrides=over, force=not resume, progress=False)
    reference = np.array(json.loads((out / "original.json").read_text())["mean_spectrum"])
    ckpts = run_dir / "checkpoints"
    last = (ckpts / "last").resolve()
    along = {f.name for f in ckpts.glob("ckpt-*") if kept_by(f.name, scale.keep_every)} if spec.base else set()
    folders = [ckpts / name for name in sorted(along | {last.name})]
    result = {
        "name": spec.name,
        "variant": spec.variant,
        "model": spec.model,
        "seed": spec.seed,
        "checkpoints": [
            score_checkpoint(
                f, scale, spec.seed, reference, soundfont, run_dir / "sample.mid" if f.name == last.name else None
            )
            for f in folders
        ],
        "train_seconds": train_seconds(run_dir / "metrics.csv"),
        "curves": loss_curves(run_dir / "metrics.csv"),
    }
    eval_path.write_text(json.dumps(result))
    return result


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.getLogger("etude").setLevel(logging.WARNING)


# ----------------------------------------------------------------------------- aggregation and claims


# ----------------------------------------------------------------------------- the command


def study(
    data: Path,
    out: Path,
    scale: str = "cpu",
    seeds: int = 3,
    workers: int = 1,
    roll_data: Path | None = None,
    keep_probs: list[float] | None = None,
    hidden: list[int] | None = None,
    layers: list[int] | None = None,
    soundfont: Path | None = None,
    progress: bool = True,
    announce=print,
) -> dict:
    """Run (or resume) the study into `out`; writes study.json, study.html and PNG figures and
    returns study.json's dict. `announce` receives the sizes and the time estimate before any run."""
    from etude.data.store import read_meta
    from etude.study.report import write_study

    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if seeds < 1 or workers < 1:
        raise InputError("--seeds and --workers must be at least 1")
    sc = SCALES[scale]
    sc = replace(
        sc,
        keep_probs=tuple(keep_probs or sc.keep_probs),
        hidden=tuple(hidden or sc.hidden),
        layers=tuple(layers or sc.layers),
    )
    data, out = Path(data).resolve(), Path(out).resolve()
    read_meta(data)  # a clear error when DATA is not a prepared folder
    t0 = time.perf_counter()
    ensure_dir(out, "study folder")
    roll_data = Path(roll_data).resolve() if roll_data else prepare_roll_twin(data, out / "data-pianoroll")
    # 1. the plan and its time estimate, before any run
    p = plan(sc, seeds, workers, data, roll_data, out)
    _announce_plan(p, announce)
    # 2. the original test pieces' spectrum and statistics, once
    original = _original(data, out, sc, soundfont)
    # 3. every run, trained (or resumed) and scored
    evals, problems = _execute_all(p, data, roll_data, out, soundfont, progress)
    # 4. figures across seeds, the claims, the report
    results = aggregate(evals, sc)
    results["models"]["original"] = {"statistics": original["statistics"], "mean_spectrum": original["mean_spectrum"]}
    report = {
        "scale": asdict(sc),
        "seeds": seeds,
        "workers": workers,
        "data": str(data),
        "roll_data": str(roll_data),
        "runs": {
            e["name"]: {"trained_now": not e.get("skipped", False), "train_seconds": e["train_seconds"]} for e in evals
        },
        "results": results,
        "claims": claims(results, sc),
        "problems": problems,
        "estimated_train_seconds": round(p.estimate_s, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    for msg in problems:
        log.warning("%s", msg)
    write_study(report, out, soundfont)
    return report


def _announce_plan(p: StudyPlan, announce) -> None:
    sc, seeds = p.scale, p.seeds
    runs = ", ".join(dict.fromkeys(s.variant for s in p.specs))
    announce(
        f"study at scale {sc.name}: {len(p.specs)} runs ({len(p.specs) // seeds} configurations x {seeds} "
        f"seeds): {runs}"
    )
    announce(
        f"LSTM runs: {' '.join(sc.train)}; base {lstm_variant(sc.base_hidden, sc.base_layers, sc.base_keep)}, "
        f"checkpoints kept every {sc.keep_every}; {sc.pieces} pieces of {sc.length} per checkpoint"
    )
    announce(
        f"estimated training time: {p.estimate_s / 60:.1f} min with {p.workers} worker(s) (timed on this machine; "
        "generation and scoring come on top)"
    )


def _original(data: Path, out: Path, sc: Scale, soundfont: Path | None) -> dict:
    """OUT/original.json (made once): the original test pieces' mean spectrum and statistics."""
    from etude.data.store import open_encoding
    from etude.evaluation.compare import analyse, original_set, set_statistics

    path = out / "original.json"
    if not path.exists():
        orig = original_set(data, open_encoding(data), sc.pieces)
        analyse(orig, soundfont)
        if orig.scores:
            orig.scores[0].dump_midi(str(out / "original_sample.mid"))
        summary = {
            "mean_spectrum": np.mean(orig.spectra, axis=0).tolist(),
            "statistics": set_statistics(orig),
            "pieces": len(orig.scores),
        }
        path.write_text(json.dumps(summary))
    return json.loads(path.read_text())


def _execute_all(p: StudyPlan, data: Path, roll_data: Path, out: Path, soundfont: Path | None, progress: bool):
    """Every run of the plan, in this process or a pool of p.workers; returns the evals and the
    problems (a failed run is reported; the others still count)."""
    evals, problems = [], []
    bar = tqdm(total=len(p.specs), desc="study", unit="run", disable=None if progress else True)
    args = [(s, p.scale, data, roll_data, out, soundfont) for s in p.specs]
    if p.workers == 1:
        for a in args:
            try:
                evals.append(execute(*a))
            except Exception as exc:
                log.debug("run %s failed", a[0].name, exc_info=True)
                problems.append(f"run {a[0].name}: {type(exc).__name__}: {exc}")
            bar.update(1)
    else:
        threads = max(1, (os.cpu_count() or 1) // p.workers)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(p.workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
            futures = {pool.submit(execute, *a): a[0] for a in args}
            for fut in as_completed(futures):
                try:
                    evals.append(fut.result())
                except Exception as exc:
                    problems.append(f"run {futures[fut].name}: {type(exc).__name__}: {exc}")
                bar.update(1)
    bar.close()
    return evals, problems
