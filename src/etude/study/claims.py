"""The study's figures across seeds (mean and spread per sweep) and its verdicts on the
published claims: a claim holds when the expected setting is best beyond the seeds' spread."""

from __future__ import annotations

import numpy as np

from etude.evaluation import metrics as M
from etude.study.plan import ROLL_MODELS, lstm_variant
from etude.study.scales import Scale


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
