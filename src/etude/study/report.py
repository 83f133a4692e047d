"""The study's outputs: PNG figures (mean ± one standard deviation over seeds), study.json and a
self-contained study.html with the claims table first."""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from etude.evaluation import metrics as M  # noqa: E402
from etude.evaluation.report import draw_spectrogram, html_table, img_tag, save_figure  # noqa: E402
from etude.study.claims import format_mean_sd  # noqa: E402
from etude.study.plan import lstm_variant  # noqa: E402

RATE = 44100  # etude.evaluation.compare renders every set at this rate
VERDICT = {True: "held", False: "did not hold", None: "not measured"}


def _band(ax, rows: list[list[float]], label: str) -> None:
    """rows of [x, mean, sd] as a line with a shaded ±sd band."""
    if not rows:
        return
    x, m, sd = (np.array(c, float) for c in zip(*rows))
    ax.plot(x, m, label=label, lw=1.3)
    ax.fill_between(x, m - sd, m + sd, alpha=0.2)


def _errorbars(ax, sweep: dict, key: str, xlabel: str, ylabel: str) -> None:
    xs = [float(k) for k in sweep]
    means = [sweep[k][key]["mean"] for k in sweep]
    sds = [sweep[k][key]["sd"] for k in sweep]
    keep = [i for i, m in enumerate(means) if m is not None]
    ax.errorbar([xs[i] for i in keep], [means[i] for i in keep], yerr=[sds[i] for i in keep], marker="o", capsize=4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def dropout_png(results: dict, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for keep, r in results["dropout"].items():
        _band(axes[0], r["train_curve"], f"keep {keep}")
        _band(axes[1], r["valid_curve"], f"keep {keep}")
    for ax, split in zip(axes, ("training", "validation")):
        ax.set_title(f"{split} loss")
        ax.set_xlabel("iteration")
        ax.legend()
    axes[0].set_ylabel("NLL (nats/token)")
    return save_figure(fig, path)


def iterations_png(results: dict, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    _errorbars(
        axes[0], results["iterations"], "spectral_distance_db", "iteration", "spectral distance to the original (dB)"
    )
    _errorbars(axes[1], results["iterations"], "test_nll", "iteration", "test NLL (nats/token)")
    fig.suptitle(f"Training length: checkpoints of the base run {results['base']}")
    return save_figure(fig, path)


def sweep_png(results: dict, sweep: str, xlabel: str, path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    _errorbars(axes[0], results[sweep], "test_nll", xlabel, "test NLL (nats/token)")
    _errorbars(axes[1], results[sweep], "spectral_distance_db", xlabel, "spectral distance (dB)")
    _errorbars(axes[2], results[sweep], "train_seconds", xlabel, "training time (s)")
    if sweep == "hidden":
        units = [int(k) for k in results[sweep]]
        for ax in axes:
            ax.set_xscale("log", base=2)
            ax.set_xticks(units, [str(u) for u in units])
            ax.minorticks_off()
    return save_figure(fig, path)


def spectrograms_png(samples: list[tuple[str, Path]], soundfont: Path | None, path: Path) -> Path:
    """One spectrogram per (title, MIDI file), stacked: the original and a piece per depth."""
    from symusic import Score

    from etude.audio.render import render

    fig, axes = plt.subplots(len(samples), 1, figsize=(10, 2.6 * len(samples)), squeeze=False)
    for ax, (title, midi) in zip(axes[:, 0], samples):
        draw_spectrogram(ax, render(Score(str(midi)), soundfont, RATE), RATE, title)
    return save_figure(fig, path)


def spectra_png(models: dict, path: Path) -> Path:
    """Mean spectra (dB re. each set's peak) of the original and every model, overlaid."""
    fig, ax = plt.subplots(figsize=(10, 4))
    freqs = np.fft.rfftfreq(4096, 1 / RATE)
    band = (freqs >= 20) & (freqs <= 10000)
    for name, m in models.items():
        if m.get("mean_spectrum") is None:
            continue
        spec = np.array(m["mean_spectrum"])
        ax.plot(freqs[band], 20 * np.log10(spec[band] / spec.max() + 1e-9), label=name, lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("mean magnitude (dB re. peak)")
    ax.set_title("LSTM, RBM and RNN-RBM against the original")
    ax.legend()
    return save_figure(fig, path)


def _figures(report: dict, out: Path, soundfont: Path | None) -> dict[str, Path]:
    """The study's PNG figures in `out`, by name."""
    r, sc = report["results"], report["scale"]
    figs = {
        "dropout": dropout_png(r, out / "study_dropout.png"),
        "iterations": iterations_png(r, out / "study_iterations.png"),
        "hidden": sweep_png(r, "hidden", "hidden units per layer", out / "study_hidden.png"),
        "layers": sweep_png(r, "layers", "layers", out / "study_layers.png"),
        "models": spectra_png(r["models"], out / "study_spectra.png"),
    }
    samples = [("original (test piece)", out / "original_sample.mid")]
    samples += [
        (f"{d} layer{'s' if d > 1 else ''} (seed 0)", out / "runs" / f"{variant}-seed0" / "sample.mid")
        for d, variant in _depth_variants(sc)
    ]
    samples = [(t, p) for t, p in samples if p.exists()]
    if samples:
        figs["depth_spectrograms"] = spectrograms_png(samples, soundfont, out / "study_depth_spectrograms.png")

    return figs


def _tables(report: dict) -> dict[str, str]:
    """Every table of study.html as HTML, by name."""
    r = report["results"]
    claims = [
        [
            c["claim"],
            c["measure"],
            c["numbers"],
            VERDICT[c["held"]] + (" (gap within the seeds' spread)" if c["within_spread"] else ""),
            c["note"],
        ]
        for c in report["claims"]
    ]
    names = ["original", "lstm", "rbm", "rnn-rbm"]
    models = r["models"]
    distance = [
        [n, format_mean_sd(models[n].get("spectral_distance_db")) if n != "original" else "0"]
        for n in names
        if n in models
    ]
    stats = [[k, *[_stat(models.get(n, {}), k) for n in names]] for k in M.SCALARS]

    def sweeps(sweep: str) -> list[list]:
        measures = ("test_nll", "spectral_distance_db", "train_seconds")
        return [[k, *(format_mean_sd(v[m]) for m in measures)] for k, v in r[sweep].items()]

    its = [
        [k, format_mean_sd(v["spectral_distance_db"]), format_mean_sd(v["test_nll"])]
        for k, v in r["iterations"].items()
    ]
    drop = [
        [
            k,
            format_mean_sd(v["final_valid_nll"]),
            format_mean_sd(v["test_nll"]),
            format_mean_sd(v["spectral_distance_db"]),
        ]
        for k, v in r["dropout"].items()
    ]
    return {
        "claims": html_table(claims, ["claim", "measure (lower is better)", "mean ± sd per setting", "here", "note"]),
        "drop": html_table(drop, ["keep probability", "final validation NLL", "test NLL", "spectral distance (dB)"]),
        "its": html_table(its, ["iteration", "spectral distance (dB)", "test NLL"]),
        "hidden": html_table(sweeps("hidden"), ["units", "test NLL", "spectral distance (dB)", "training time (s)"]),
        "layers": html_table(sweeps("layers"), ["layers", "test NLL", "spectral distance (dB)", "training time (s)"]),
        "distance": html_table(distance, ["set", "spectral distance to the original (dB)"]),
        "stats": html_table(stats, ["statistic", *names]),
    }


def write_study(report: dict, out: Path, soundfont: Path | None = None) -> Path:
    """study.json, the figures and study.html into `out`."""
    (out / "study.json").write_text(json.dumps(report, indent=1))
    r, sc = report["results"], report["scale"]
    figs = _figures(report, out, soundfont)
    tables = _tables(report)
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in report["problems"]) or "<li>none</li>"
    trained = sum(v["trained_now"] for v in report["runs"].values())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>étude study ({html.escape(sc["name"])})</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .6em}}
img{{max-width:100%}}</style></head><body>
<h1>The hyper-parameter study, scale {html.escape(sc["name"])}</h1>
<p>Data {html.escape(report["data"])}; {report["seeds"]} seed(s), figures show mean ± one standard deviation over seeds.
{len(report["runs"])} runs ({trained} trained in this invocation), {report["workers"]} worker(s),
{report["wall_seconds"]:.0f} s wall time.
LSTM settings: preset {html.escape(sc["preset"])} with {html.escape(" ".join(sc["train"]))};
base run {html.escape(r["base"])} (checkpoints kept every {sc["keep_every"]} iterations);
sweeps: keep probability {sc["keep_probs"]}, hidden units {sc["hidden"]}, layers {sc["layers"]}.
RBM and RNN-RBM: the preset's piano-roll settings with {html.escape(" ".join(sc["roll"]))}.
Each checkpoint is scored on {sc["pieces"]} generated pieces of {html.escape(sc["length"])}.</p>
<h2>Claims</h2>
{tables["claims"]}
<h2>1. Dropout: loss convergence</h2>
{img_tag(figs["dropout"])}
{tables["drop"]}
<h2>2. Training length</h2>
{img_tag(figs["iterations"])}
{tables["its"]}
<h2>3. Hidden units</h2>
{img_tag(figs["hidden"])}
{tables["hidden"]}
<h2>4. Layers</h2>
{img_tag(figs["layers"])}
{tables["layers"]}
{img_tag(figs["depth_spectrograms"]) if "depth_spectrograms" in figs else ""}
<h2>5. LSTM, RBM and RNN-RBM against the original</h2>
{img_tag(figs["models"])}
{tables["distance"]}
<h3>Musical statistics (mean over pieces, then mean ± sd over seeds)</h3>
{tables["stats"]}
<h2>Problems</h2><ul>{problems}</ul>
</body></html>
"""
    path = out / "study.html"
    path.write_text(page)
    return path


def _depth_variants(sc: dict) -> list[tuple[int, str]]:
    return [(d, lstm_variant(sc["base_hidden"], d, sc["base_keep"])) for d in sc["layers"]]


def _stat(model: dict, key: str) -> str:
    value = model.get("statistics", {}).get(key)
    if value is None:
        return "n/a"
    if "std" in value:  # the original set: one set, mean and sd over its pieces
        return "n/a" if value["mean"] is None else f"{value['mean']:.4g}"
    return format_mean_sd(value)
