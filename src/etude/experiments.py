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
original test pieces, all rendered with the same SoundFont (etude.evaluate).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from etude import metrics as M
from etude.config import DataConfig, EncodingConfig, RunConfig, apply_overrides, load_preset
from etude.errors import InputError
from etude.paths import ensure_dir
from etude.scales import SCALES, Scale

log = logging.getLogger(__name__)

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


# ----------------------------------------------------------------------------- data
def prepare_roll_twin(data: Path, out: Path) -> Path:
    """The corpus `data` was prepared from, prepared again as piano rolls (same split settings)."""
    from etude.data import prepare
    from etude.data.cache import read_meta

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
def is_trained(run_dir: Path, iterations: int) -> bool:
    last = run_dir / "checkpoints" / "last"
    if not (run_dir / "config.json").exists() or not last.exists():
        return False
    return json.loads((last.resolve() / "state.json").read_text())["iteration"] >= iterations


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
    from etude.checkpoint import load_checkpoint
    from etude.data.encoding import EventEncoding
    from etude.evaluate import analyse, generated_set, set_statistics, split_likelihood

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
    from etude.train import kept_by, train

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
def mean_sd(values: list[float]) -> dict:
    """Mean and sample standard deviation (0 for one value) of the finite values."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], float)
    if not len(v):
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def _final(ev: dict) -> dict:
    return ev["checkpoints"][-1]


def aggregate(evals: list[dict], scale: Scale) -> dict:
    """Mean and spread over seeds for every sweep of the study."""
    by_variant: dict[str, list[dict]] = {}
    for ev in evals:
        by_variant.setdefault(ev["variant"], []).append(ev)

    def summary(variant: str) -> dict:
        evs = by_variant.get(variant, [])
        return {
            "test_nll": mean_sd([_final(e).get("test_nll") for e in evs]),
            "spectral_distance_db": mean_sd([_final(e)["spectral_distance_db"] for e in evs]),
            "train_seconds": mean_sd([e["train_seconds"] for e in evs]),
            "final_valid_nll": mean_sd([e["curves"]["valid"][-1][1] if e["curves"]["valid"] else None for e in evs]),
            "seeds": len(evs),
        }

    def curves(variant: str, split: str) -> list[list[float]]:
        points: dict[int, list[float]] = {}
        for e in by_variant.get(variant, []):
            for it, loss in e["curves"][split]:
                points.setdefault(int(it), []).append(loss)
        return [[it, ms["mean"], ms["sd"]] for it, v in sorted(points.items()) for ms in [mean_sd(v)]]

    h, n, k = scale.base_hidden, scale.base_layers, scale.base_keep
    base = lstm_variant(h, n, k)
    iterations: dict[int, dict] = {}
    for e in by_variant.get(base, []):
        for c in e["checkpoints"]:
            iterations.setdefault(c["iteration"], {"spectral": [], "nll": []})
            iterations[c["iteration"]]["spectral"].append(c["spectral_distance_db"])
            iterations[c["iteration"]]["nll"].append(c.get("test_nll"))
    models = {}
    for name, variant in (("lstm", base), *((m, m) for m in ROLL_MODELS)):
        evs = by_variant.get(variant, [])
        stats = {key: mean_sd([_final(e)["statistics"][key]["mean"] for e in evs]) for key in M.SCALARS}
        spectra = [_final(e)["mean_spectrum"] for e in evs]
        models[name] = {
            "variant": variant,
            "spectral_distance_db": mean_sd([_final(e)["spectral_distance_db"] for e in evs]),
            "statistics": stats,
            "mean_spectrum": np.mean(spectra, axis=0).tolist() if spectra else None,
        }
    return {
        "base": base,
        "dropout": {
            str(kp): {
                **summary(lstm_variant(h, n, kp)),
                "train_curve": curves(lstm_variant(h, n, kp), "train"),
                "valid_curve": curves(lstm_variant(h, n, kp), "valid"),
            }
            for kp in scale.keep_probs
        },
        "iterations": {
            str(it): {"spectral_distance_db": mean_sd(v["spectral"]), "test_nll": mean_sd(v["nll"])}
            for it, v in sorted(iterations.items())
        },
        "hidden": {str(u): summary(lstm_variant(u, n, k)) for u in scale.hidden},
        "layers": {str(d): summary(lstm_variant(h, d, k)) for d in scale.layers},
        "models": models,
    }


def format_mean_sd(ms: dict | None) -> str:
    """ "1.234 ± 0.05" (the mean alone for one value; "n/a" for none)."""
    if not ms or ms.get("mean") is None:
        return "n/a"
    return f"{ms['mean']:.4g} ± {ms['sd']:.2g}" if ms["n"] > 1 else f"{ms['mean']:.4g}"


def _within_spread(a: dict, b: dict) -> bool:
    """True when two means differ by less than the sum of their standard deviations."""
    return abs(a["mean"] - b["mean"]) < (a["sd"] or 0) + (b["sd"] or 0)


def judge(kind: str, values: dict[str, dict], expected: str | None = None) -> dict:
    """Whether a claim held, from mean ± sd per setting (lower is better).

    kind "lowest": `expected` has the lowest mean; "falls_with_setting": means fall strictly as
    the (numeric) setting grows.
    `within_spread` flags a decisive gap smaller than the seeds' spread."""
    known = {k: v for k, v in values.items() if v.get("mean") is not None}
    numbers = "; ".join(f"{k}: {format_mean_sd(v)}" for k, v in values.items())
    if len(known) < 2 or (expected is not None and expected not in known):
        return {"held": None, "numbers": numbers, "within_spread": None, "note": "not measured"}
    if kind == "falls_with_setting":
        order = sorted(known, key=float)
        pairs = list(zip(order, order[1:]))
        held = all(known[b]["mean"] < known[a]["mean"] for a, b in pairs)
        tight = any(_within_spread(known[a], known[b]) for a, b in pairs)
        best = min(known, key=lambda k: known[k]["mean"])
        note = "error falls at every step" if held else f"lowest at {best}"
    else:
        others = [k for k in known if k != expected]
        runner = min(others, key=lambda k: known[k]["mean"])
        held = known[expected]["mean"] < known[runner]["mean"]
        tight = _within_spread(known[expected], known[runner])
        best = min(known, key=lambda k: known[k]["mean"])
        note = f"{expected} lowest" if held else f"lowest at {best}"
    return {"held": bool(held), "numbers": numbers, "within_spread": bool(tight), "note": note}


def claims(results: dict, scale: Scale) -> list[dict]:
    """The study's claims, each with the measure used and whether it held here."""
    its = sorted(results["iterations"], key=int)
    final, half = (its[-1], next((i for i in its if int(i) * 2 == int(its[-1])), its[0])) if its else (None, None)
    keep = str(0.7) if 0.7 in scale.keep_probs else None
    out = [
        (
            "keep probability 0.7 works best",
            "final validation NLL (nats/token)",
            judge("lowest", {k: v["final_valid_nll"] for k, v in results["dropout"].items()}, keep),
        ),
        (
            f"training longer helps ({final} beat {half} iterations; the paper: 6000 beat 3000)",
            "spectral distance to the original (dB)",
            judge("lowest", {i: results["iterations"][i]["spectral_distance_db"] for i in (half, final) if i}, final),
        ),
        (
            f"more hidden units are better, up to {max(scale.hidden)}",
            "test NLL (nats/token)",
            judge("falls_with_setting", {k: v["test_nll"] for k, v in results["hidden"].items()}),
        ),
        (
            f"{max(scale.layers)} layers work best",
            "test NLL (nats/token)",
            judge("lowest", {k: v["test_nll"] for k, v in results["layers"].items()}, str(max(scale.layers))),
        ),
        (
            "the LSTM is closer to the original spectrum than the RBM",
            "spectral distance to the original (dB)",
            judge("lowest", {k: results["models"][k]["spectral_distance_db"] for k in ("lstm", "rbm")}, "lstm"),
        ),
    ]
    models = results["models"]
    if "original" in models:
        out.append(
            (
                "the LSTM's musical statistics are closer to the original's than the RBM's",
                "statistics whose mean is nearer the original's",
                statistics_verdict(
                    models["original"]["statistics"], models["lstm"]["statistics"], models["rbm"]["statistics"]
                ),
            )
        )
    return [{"claim": c, "measure": m, **v} for c, m, v in out]


def closer_statistics(original: dict, a: dict, b: dict) -> tuple[list[str], int]:
    """The statistics whose mean in set `a` is nearer the original's than in set `b`, and how many
    could be compared (each argument: name -> {"mean": ...}; a None mean leaves a statistic out)."""
    names = [k for k in original if all(d.get(k, {}).get("mean") is not None for d in (original, a, b))]
    nearer = [k for k in names if abs(a[k]["mean"] - original[k]["mean"]) < abs(b[k]["mean"] - original[k]["mean"])]
    return nearer, len(names)


def statistics_verdict(original: dict, lstm: dict, rbm: dict) -> dict:
    nearer, n = closer_statistics(original, lstm, rbm)
    if not n:
        return {"held": None, "numbers": "", "within_spread": None, "note": "not measured"}
    return {
        "held": 2 * len(nearer) > n,
        "numbers": f"LSTM nearer on {len(nearer)} of {n}: {', '.join(nearer) or 'none'}",
        "within_spread": None,
        "note": "",
    }


# ----------------------------------------------------------------------------- the command
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
    from etude.train import data_plan, open_data

    _, encoding, train_part, valid_part = open_data(cfg)
    device = pick_device(cfg.device)
    model = build_model(cfg.model, encoding).to(device)
    windows, _ = data_plan(model, cfg, encoding, train_part, valid_part, device)
    opt = torch.optim.Adam(model.parameters())
    rng = np.random.default_rng(0)
    b = min(batch, cfg.train.batch_size)
    for step in range(steps + 1):
        if step == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss, count = model.objective(*(t.to(device) for t in windows.random_batch(rng, b)))
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
    from etude.data.cache import open_encoding, read_meta
    from etude.evaluate import analyse, original_set, set_statistics
    from etude.study_report import write_study

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

    p = plan(sc, seeds, workers, data, roll_data, out)
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
        f"estimated training time: {p.estimate_s / 60:.1f} min with {workers} worker(s) (timed on this machine; "
        "generation and scoring come on top)"
    )

    original_path = out / "original.json"
    if not original_path.exists():
        orig = original_set(data, open_encoding(data), sc.pieces)
        analyse(orig, soundfont)
        if orig.scores:
            orig.scores[0].dump_midi(str(out / "original_sample.mid"))
        original_path.write_text(
            json.dumps(
                {
                    "mean_spectrum": np.mean(orig.spectra, axis=0).tolist(),
                    "statistics": set_statistics(orig),
                    "pieces": len(orig.scores),
                }
            )
        )

    evals, problems = [], []
    bar = tqdm(total=len(p.specs), desc="study", unit="run", disable=None if progress else True)
    args = [(s, sc, data, roll_data, out, soundfont) for s in p.specs]
    if workers == 1:
        for a in args:
            try:
                evals.append(execute(*a))
            except Exception as exc:  # a failed run is reported; the others still count
                log.debug("run %s failed", a[0].name, exc_info=True)
                problems.append(f"run {a[0].name}: {type(exc).__name__}: {exc}")
            bar.update(1)
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
            futures = {pool.submit(execute, *a): a[0] for a in args}
            for fut in as_completed(futures):
                try:
                    evals.append(fut.result())
                except Exception as exc:  # a failed run is reported; the others still count
                    problems.append(f"run {futures[fut].name}: {type(exc).__name__}: {exc}")
                bar.update(1)
    bar.close()

    results = aggregate(evals, sc)
    original = json.loads(original_path.read_text())
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
