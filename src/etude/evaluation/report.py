"""The evaluation report: PNG figures and one self-contained report.html (images and audio
embedded), written beside report.json."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.io import wavfile  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

from etude.evaluation import metrics as M  # noqa: E402
from etude.evaluation.form import FORM  # noqa: E402
from etude.evaluation.form import LONG_FORM as FORM_LONG  # noqa: E402
from etude.evaluation.memorisation import COPY_FLAG_BARS  # noqa: E402

AUDIO_SECONDS = 15  # excerpt length embedded in the page
AUDIO_RATE = 22050


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def spectra_png(sets, rate: int, path: Path) -> Path:
    """Mean magnitude spectra (dB, log-frequency axis) of every set, overlaid."""
    fig, ax = plt.subplots(figsize=(9, 4))
    freqs = np.fft.rfftfreq(4096, 1 / rate)
    keep = (freqs >= 20) & (freqs <= 10000)
    for s in sets:
        spec = np.mean(s.spectra, axis=0)
        ax.plot(freqs[keep], 20 * np.log10(spec[keep] / spec.max() + 1e-9), label=s.name, lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("mean magnitude (dB re. peak)")
    ax.set_title("Frequency distribution of the rendered audio")
    ax.legend()
    return save_figure(fig, path)


def spectrogram_png(audio: np.ndarray, rate: int, title: str, path: Path) -> Path:
    """STFT magnitude (dB) of the first 30 s, log-frequency axis."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    draw_spectrogram(ax, audio, rate, title)
    return save_figure(fig, path)


def draw_spectrogram(ax, audio: np.ndarray, rate: int, title: str) -> None:
    """STFT magnitude (dB) of the first 30 s of `audio` (channels, samples) on `ax`, log-frequency axis."""
    x = audio.mean(axis=0)[: 30 * rate]
    n_fft, hop = 2048, 512
    x = np.pad(x, (0, max(0, n_fft - len(x))))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    mag = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T + 1e-6)
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    times = np.arange(mag.shape[1]) * hop / rate
    band = (freqs >= 30) & (freqs <= 8000)
    ax.pcolormesh(times, freqs[band], mag[band], shading="auto", vmin=mag.max() - 80, vmax=mag.max(), cmap="magma")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title)


def statistics_png(sets, path: Path) -> Path:
    names = list(M.SCALARS)
    fig, axes = plt.subplots(2, 5, figsize=(14, 5.5))
    for ax, name in zip(axes.ravel(), names):
        data = [[v for v in s.features[name][:, 0] if not np.isnan(v)] or [np.nan] for s in sets]
        ax.boxplot(data, tick_labels=[s.name for s in sets])
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.tick_params(labelsize=7)
    return save_figure(fig, path)


def confusion_png(info: dict, path: Path) -> Path:
    cm = np.array(info["confusion"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(info["genres"])), info["genres"], rotation=45, ha="right")
    ax.set_yticks(range(len(info["genres"])), info["genres"])
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Genre classifier on test pieces (accuracy {info['accuracy']:.2f})", fontsize=9)
    return save_figure(fig, path)


def lag_profile_png(form: dict, path: Path) -> Path:
    """Per genre, each set's mean bar lag profile (etude.evaluation.form.lag_profile)."""
    genres = list(next(iter(form.values()), {}))
    fig, axes = plt.subplots(
        1, max(len(genres), 1), figsize=(2.6 * max(len(genres), 1), 2.8), sharey=True, squeeze=False
    )
    for ax, genre in zip(axes[0], genres):
        for name, by_genre in form.items():
            profile = (by_genre.get(genre) or {}).get("lag_profile")
            if profile:
                lags = np.arange(1, len(profile) + 1)
                ax.plot(lags, [np.nan if v is None else v for v in profile], marker="o", ms=3, label=name)
        ax.set_title(genre, fontsize=9)
        ax.set_xlabel("lag (bars)", fontsize=8)
        ax.set_xticks([1, 2, 4, 8])
    axes[0][0].set_ylabel("correlation of bar pitch classes", fontsize=8)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)


def img_tag(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _audio(audio: np.ndarray, rate: int) -> str:
    mono = audio.mean(axis=0)[: AUDIO_SECONDS * rate]
    mono = resample_poly(mono, AUDIO_RATE, rate) if rate != AUDIO_RATE else mono
    buf = io.BytesIO()
    wavfile.write(buf, AUDIO_RATE, np.clip(mono * 32767, -32768, 32767).astype(np.int16))
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<audio controls preload="metadata" src="data:audio/wav;base64,{data}"></audio>'


def html_table(rows: list[list], header: list[str]) -> str:
    def cell(v):
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


MEDIA_CHECK = """<p id="media-check">media check: pending</p>
<script>
// Once the page has loaded, say how many images and audio players actually decoded.
window.addEventListener("load", () => {
  const images = [...document.images];
  const goodImages = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  const players = [...document.querySelectorAll("audio")];
  const ready = players.map((a) => new Promise((done) => {
    if (a.readyState >= 1) return done(a.duration > 0);
    a.addEventListener("loadedmetadata", () => done(a.duration > 0));
    a.addEventListener("error", () => done(false));
  }));
  Promise.all(ready).then((ok) => {
    document.getElementById("media-check").textContent =
      `media check: ${goodImages}/${images.length} images and ` +
      `${ok.filter(Boolean).length}/${players.length} audio players loaded`;
  });
});
</script>"""  # says on the page how many images and players decoded


def _tables(report: dict) -> dict[str, list]:
    """Every table of the report page as HTML, by name."""
    spectral = [
        [name, v["log_spectral_distance_db"], v["js_distance"], v["correlation"]]
        for name, v in report["spectral"].items()
    ]
    comparison = [
        [name, metric, v["kl"], v["overlap"]]
        for name, metrics in report["set_comparison"].items()
        if name != "original"
        for metric, v in metrics.items()
    ]
    genres = (
        list(report["genre"]["adherence"]["original"]["by_genre"]) if "original" in report["genre"]["adherence"] else []
    )
    adherence = [
        [name, v["share_as_labelled"], *[v["by_genre"].get(g, float("nan")) for g in genres]]
        for name, v in report["genre"]["adherence"].items()
    ]
    test = report["genre"].get("test") or {}
    if test.get("pieces"):  # the classifier on whole test pieces and their openings, beside the cut ones above
        rows = [("whole pieces", test), ("first 30 s", test.get("opening"))]
        for k, (what, r) in enumerate(row for row in rows if row[1]):
            per = {g: v or 0.0 for g, v in r["per_genre"].items()}  # a genre without test pieces: 0
            row = [f"test split, {what} ({r['pieces']})", r["accuracy"]]
            adherence.insert(k, row + [per.get(g, float("nan")) for g in genres])
    by_genre = [
        [name, *[d.get(g, {}).get("mean_overlap") for g in genres]]
        for name, d in report["set_comparison_by_genre"].items()
    ]
    memo = [
        [name, v["max"], v["median"], v["max_bars"], v["flagged_copies"]] for name, v in report["memorisation"].items()
    ]
    likelihood = [
        [
            name,
            *(
                ("nats/token", v["test_nll_nats_per_token"], v["test_perplexity"])
                if "test_nll_nats_per_token" in v
                else ("nats/frame", v["test_nll_nats_per_frame"], float("nan"))
                if "test_nll_nats_per_frame" in v
                else ("", float("nan"), float("nan"))
            ),
        ]
        for name, v in report["likelihood"].items()
    ]
    histograms = [
        [name, *[v if v is not None else float("nan") for v in d.values()]]
        for name, d in report["histogram_js_distance"].items()
    ]
    form_names = [*FORM, *(k for k in LONG_FORM if _any_value(report["form"], k))]
    form = [
        [name, genre, *[values.get(k) for k in form_names]]
        for name, by_genre in report["form"].items()
        for genre, values in by_genre.items()
    ]
    return {
        "form": html_table(form, ["set", "genre", *[k.replace("_", " ") for k in form_names]]),
        "spectral": html_table(
            spectral, ["set", "log-spectral distance (dB)", "Jensen-Shannon distance", "correlation of log spectra"]
        ),
        "comparison": html_table(comparison, ["set", "feature", "KL(intra-original | inter)", "overlapped area"]),
        "by_genre": html_table(by_genre, ["set", *genres]),
        "adherence": html_table(adherence, ["set", "share classified as its genre", *genres]),
        "memo": html_table(
            memo,
            [
                "set",
                "longest copied run (notes)",
                "median (notes)",
                "longest copied run (bars)",
                f"pieces copying {COPY_FLAG_BARS:g}+ bars",
            ],
        ),
        "histograms": html_table(histograms, ["set", *M.HISTOGRAMS]),
        "likelihood": html_table(likelihood, ["model", "unit", "test NLL", "perplexity"]),
        "by_position": _position_table(report.get("likelihood_by_position", {})),
    }


def _position_table(positions: dict) -> str:
    """The run's NLL by position bucket beside its copy-model mixture, over all positions, and
    over only the pieces long enough to reach every bucket before `same_pieces`' limit."""
    same = positions.get("same_pieces", {"pieces": 0, "from": 0, "buckets": []})
    alike = {b["from"]: b["nll"] for b in same["buckets"]}
    rows = [
        [f"{b['from']}-{b['to'] - 1}", b["tokens"], b["nll"], b["copy_mix"], alike.get(b["from"])]
        for b in positions.get("buckets", [])
    ]
    if rows:
        rows.append(["all", sum(r[1] for r in rows), positions["mean"], positions["mean_copy_mix"], None])
    header = ["positions (tokens)", "tokens scored", "NLL (nats/token)", "mixed half and half with a copy model"]
    return html_table(rows, [*header, f"NLL over only the {same['pieces']} pieces of {same['from']} tokens or more"])


def write_report(report: dict, sets, out: Path) -> Path:
    """PNG figures into `out` and report.html that embeds them, with audio excerpts."""
    rate = report["sample_rate"]
    figs = [spectra_png(sets, rate, out / "spectra.png")]
    figs += [
        spectrogram_png(
            s.audio[0], rate, f"{s.name}: spectrogram of piece 1 ({s.labels[0]})", out / f"spectrogram_{s.name}.png"
        )
        for s in sets
    ]
    figs.append(statistics_png(sets, out / "statistics.png"))
    figs.append(confusion_png(report["genre"]["test"], out / "confusion.png"))
    lags = lag_profile_png(report["form"], out / "lag_profile.png")

    tables = _tables(report)
    audio = "".join(
        f"<h3>{html.escape(s.name)}</h3>"
        + "".join(f"<p>{html.escape(s.labels[k])} {k + 1}: {_audio(s.audio[k], rate)}</p>" for k in range(len(s.audio)))
        for s in sets
    )
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in report["problems"]) or "<li>none</li>"
    split = html.escape(report.get("split", "test"))  # reports written before the split was a choice: test
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>étude evaluation: {html.escape(report["run"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
img{{max-width:100%}}</style></head><body>
<h1>Evaluation of {html.escape(report["run"])}</h1>
<p>Pieces per set: {html.escape(_inline(report["pieces_per_set"]))}; generated length {html.escape(report["length"])}
(original pieces, from the {split} split, cut to their first {html.escape(report["length"])});
audio rendered at {rate} Hz with one SoundFont for every set. Took {report["seconds"]} s.</p>
<h2>Spectrum: generated against original</h2>
{tables["spectral"]}
{img_tag(figs[0])}
{"".join(img_tag(f) for f in figs[1 : 1 + len(sets)])}
<h2>Musical statistics</h2>
{img_tag(figs[1 + len(sets)])}
<h3>Against the original (Yang &amp; Lerch): KL divergence and overlapped area</h3>
{tables["comparison"]}
<h3>Per genre: mean overlapped area over the features</h3>
{tables["by_genre"]}
<h2>Form: repetition, key, phrases, pulse</h2>
<p>Per genre, the mean over pieces (etude.evaluation.form): bars repeating an earlier bar exactly or
transposed; the same in seconds, grid-free; 4-bar windows in the piece's key, and keys visited;
bars alike at lags 4 and 8 more than at others; steadiness of the bass's pulse; with pieces of
60 s or more, the last 30 s against the first.</p>
{tables["form"]}
{img_tag(lags)}
<h2>Genre</h2>
{img_tag(figs[-1])}
{tables["adherence"]}
<h2>Memorisation</h2>
{tables["memo"]}
<h3>Histograms against the original: Jensen-Shannon distance of the set means</h3>
{tables["histograms"]}
<h2>Likelihood ({split} split, each model on its own encoding)</h2>
{tables["likelihood"]}
<h3>By position in the piece</h3>
<p>The run's model reads {report.get("likelihood_by_position", {}).get("pieces", 0)} whole {split} pieces
(of 1,200 tokens or more), its state carried; mean NLL of the tokens at each position. A model
that remembers the piece gets better as the piece goes on. Beside it, the model mixed half and half
with a copy model of the piece (what followed earlier occurrences of the last 8-16 tokens), wherever
that predicts. A later bucket holds only the pieces that reach it, and longer pieces are harder
throughout; the last column compares like with like.</p>
{tables["by_position"]}
<h2>Listen</h2>
{audio}
<h2>Problems</h2><ul>{problems}</ul>
{MEDIA_CHECK}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path


LONG_FORM = tuple(f"last_30s_{key}" for key in FORM_LONG)


def _any_value(form: dict, key: str) -> bool:
    """Whether any set and genre has a value for a measure (long form needs pieces of 60 s+)."""
    return any(values.get(key) is not None for by_genre in form.values() for values in by_genre.values())


def _inline(d: dict) -> str:
    """{"a": 1, "b": 2} -> "a 1, b 2"."""
    return ", ".join(f"{k} {v}" for k, v in d.items())
