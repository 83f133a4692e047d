"""`etude evaluate`: generated music against the original, by spectrum, statistics, likelihood,
genre and memorisation; writes report.json, report.html and PNG figures.

Sets: "original" (the run's test pieces, each cut to the generated length), "lstm" (pieces the
run generates), and one set per baseline run. Every set is rendered with the same SoundFont and
sample rate. Problems (a baseline that does not load, an empty set) are listed in the report and
logged; the rest is still written.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from symusic import Score

from etude.audio.render import render
from etude.data.corpus import HELD_OUT
from etude.data.encoding import EventEncoding
from etude.data.midi import first_seconds
from etude.data.store import open_encoding, open_split
from etude.errors import ConfigError, EtudeError, InputError
from etude.evaluation import form as F
from etude.evaluation import metrics as M
from etude.evaluation.classifier import Classifier, JudgeConfig
from etude.evaluation.judging import test_report, train_classifier
from etude.evaluation.likelihood import split_likelihood
from etude.evaluation.memorisation import COPY_FLAG_BARS, TrainingIndex, note_codes, run_bars
from etude.evaluation.position import split_positions
from etude.generation.generate import Ask, Length, Sampling, sample_scores
from etude.models.checkpoint import Checkpoint, load_checkpoint
from etude.paths import ensure_dir

log = logging.getLogger(__name__)
SAMPLE_RATE = 44100
AUDIO_PER_SET = 2  # pieces of each set whose audio is kept and embedded in the report


@dataclass
class PieceSet:
    name: str
    scores: list[Score]
    labels: list[str]  # genre each piece is of (original) or was asked for (generated)
    audio: list[np.ndarray] = field(default_factory=list)
    spectra: list[np.ndarray] = field(default_factory=list)
    # every metric of etude.evaluation.metrics per piece, computed once: name -> (pieces, values)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    # measures of form (etude.evaluation.form) per piece: name -> (pieces,); "lag_profile" (pieces, 8)
    form: dict[str, np.ndarray] = field(default_factory=dict)


def original_set(
    data: Path, encoding: EventEncoding, n: int, length: Length | None = None, split: str = HELD_OUT[0]
) -> PieceSet:
    """Up to n pieces of a prepared event-token folder's `split`, shared out over the genres; with
    `length`, each cut to its first `length` (seconds through its tempo map, or tokens), so that
    length-bound statistics (pitch range, pitches used) compare like with like. With a length in
    seconds, each genre's pieces that last that long come first: 2 minutes of generated folk are
    compared with folk tunes of 2 minutes where the split has them, not with 40-second ones."""
    rows, index = open_split(data, split)
    seconds = length is not None and length.unit == "s"
    keep = int(length.value) + 1 if length is not None and length.unit == "t" else None  # genre token + tokens
    scores = [encoding.decode(np.asarray(rows[a : a + b, 0])[:keep]) for a, b, _ in index] if seconds else []
    by_genre: dict[int, list[int]] = {}
    for k, (_, _, g) in enumerate(index):
        by_genre.setdefault(int(g), []).append(k)
    if seconds:
        short = [sc.to("second").end() < length.value - 1e-6 for sc in scores]
        for ks in by_genre.values():
            ks.sort(key=lambda k: short[k])  # stable: the split's order within each group
    longest = max((len(v) for v in by_genre.values()), default=0)
    order = [ks[i] for i in range(longest) for ks in by_genre.values() if i < len(ks)]  # round robin
    chosen = order[:n]
    if seconds:
        picked = [first_seconds(scores[k], length.value) for k in chosen]
    else:
        picked = [encoding.decode(np.asarray(rows[index[k, 0] : index[k, 0] + index[k, 1], 0])[:keep]) for k in chosen]
    return PieceSet("original", picked, [encoding.genres[int(index[k, 2])] for k in chosen])


def generated_set(
    name: str, ckpt: Checkpoint, genres: list[str], n: int, length: str, seed: int, sampling: Sampling | None = None
) -> PieceSet:
    """n pieces, shared out over `genres` (each genre sampled as one batch); an event model
    samples with `sampling` (default: the house settings; one without a memory of the piece with
    the memory's settings at the house values), a piano-roll model without top-p."""
    want = [genres[k % len(genres)] for k in range(n)]
    sampling = sampling or Sampling()
    if not isinstance(ckpt.encoding, EventEncoding):
        sampling = Sampling(top_p=1.0)
    elif not ckpt.model.remembers_piece:  # a baseline beside a model with a memory: sampled as it can be
        sampling = sampling.without_memory()
    scores, labels = [], []
    for g in dict.fromkeys(want):
        count = want.count(g)
        scores += sample_scores(ckpt, Ask(g, count, length, sampling, seed))
        labels += [g] * count
    return PieceSet(name, scores, labels)


def analyse(s: PieceSet, soundfont: Path | None) -> None:
    """Each piece rendered and reduced to its mean spectrum; the audio of only the first
    AUDIO_PER_SET pieces is kept (for the report), so memory does not grow with the set."""
    notes = [M.Notes.of(score) for score in s.scores]
    for k, score in enumerate(s.scores):
        audio = render(score, soundfont, SAMPLE_RATE)
        if k < AUDIO_PER_SET:
            s.audio.append(audio)
        s.spectra.append(M.mean_spectrum(audio))
    s.features = {name: np.array([np.ravel(f(n)) for n in notes]) for name, f in {**M.SCALARS, **M.HISTOGRAMS}.items()}
    s.form = form_of(s.scores)


def form_of(scores: list[Score]) -> dict[str, np.ndarray]:
    """Each measure of form per piece, the bar lag profile, and the long-form comparison."""
    bars = [F.Bars.of(score) for score in scores]
    out = {name: np.array([f(b) for b in bars]) for name, f in F.FORM.items()}
    out["lag_profile"] = np.array([F.lag_profile(b) for b in bars]).reshape(len(bars), F.MAX_LAG)
    longs = [F.long_form(b.notes) for b in bars]
    for key in F.LONG_FORM:
        out[f"last_30s_{key}"] = np.array([lf[key] for lf in longs])
    return out


def _form_by_genre(s: PieceSet) -> dict:
    """Per genre, the mean of each measure of form over the set's pieces (None where every piece
    was too short to say), and the mean lag profile."""
    out = {}
    labels = np.array(s.labels)
    for genre in dict.fromkeys(s.labels):
        mine = labels == genre
        out[genre] = {name: _mean_or_none(values[mine]) for name, values in s.form.items()}
    return out


def _mean_or_none(values: np.ndarray):
    """Mean over the first axis ignoring nan: a float (or a list for rows), None where all are nan."""
    known = ~np.isnan(values)
    count = known.sum(axis=0)
    mean = np.where(count > 0, np.where(known, values, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)
    if np.ndim(mean):
        return [None if np.isnan(v) else float(v) for v in mean]
    return None if np.isnan(mean) else float(mean)


SPECTRAL = {
    "log_spectral_distance_db": M.log_spectral_distance,
    "js_distance": M.js_distance,
    "correlation": M.spectral_correlation,
}


def _spectral(s: PieceSet, reference: np.ndarray) -> dict:
    """Each distance between the set's mean spectrum and the original set's, and per piece."""
    set_mean = np.mean(s.spectra, axis=0)
    out = {name: f(set_mean, reference) for name, f in SPECTRAL.items()}
    out["per_piece"] = {name: [f(p, reference) for p in s.spectra] for name, f in SPECTRAL.items()}
    return out


def _histogram_distances(s: PieceSet, original: PieceSet) -> dict:
    """Jensen-Shannon distance between the set's mean histograms and the original set's."""
    out = {}
    for name in M.HISTOGRAMS:
        mine, theirs = np.nanmean(s.features[name], axis=0), np.nanmean(original.features[name], axis=0)
        out[name] = (
            M.js_distance(np.nan_to_num(mine), np.nan_to_num(theirs)) if np.nansum(mine) and np.nansum(theirs) else None
        )
    return out


def set_statistics(s: PieceSet) -> dict:
    """Mean and standard deviation of each scalar metric over the set (None when all nan)."""
    out = {}
    for name in M.SCALARS:
        col = s.features[name][:, 0]
        empty = np.isnan(col).all()
        out[name] = {"mean": None if empty else float(np.nanmean(col)), "std": None if empty else float(np.nanstd(col))}
    return out


def _comparison_by_genre(s: PieceSet, original: PieceSet) -> dict:
    """Per genre, each feature's overlapped area (Yang & Lerch) between the set's pieces of that
    genre and the original's, and their mean over the features ("mean_overlap"; None when no
    feature could be compared, e.g. fewer than two original pieces of the genre)."""
    out = {}
    for genre in dict.fromkeys(s.labels):
        mine = np.array([lab == genre for lab in s.labels])
        theirs = np.array([lab == genre for lab in original.labels])
        areas = {
            name: M.set_comparison(original.features[name][theirs], s.features[name][mine])["overlap"]
            for name in [*M.SCALARS, *M.HISTOGRAMS]
        }
        known = [v for v in areas.values() if not np.isnan(v)]
        out[genre] = {
            "mean_overlap": float(np.mean(known)) if known else None,
            "overlap": {k: None if np.isnan(v) else v for k, v in areas.items()},
        }
    return out


def _adherence(predicted: list[str], labels: list[str]) -> dict:
    """Share of pieces the classifier puts in the genre they are of (or were asked for), overall and per genre."""
    hits = [p == lab for p, lab in zip(predicted, labels)]
    by_genre = {g: float(np.mean([h for h, lab in zip(hits, labels) if lab == g])) for g in dict.fromkeys(labels)}
    return {"share_as_labelled": float(np.mean(hits)), "by_genre": by_genre, "predicted": predicted, "labels": labels}


def _memorisation(ckpt: Checkpoint, sets: list[PieceSet]) -> dict:
    """Per generated set, each piece's longest run of notes found verbatim in a training piece,
    in notes and in bars; pieces with a run of COPY_FLAG_BARS bars or more are flagged."""
    train_rows, train_index = open_split(Path(ckpt.config.data), "train")
    index = TrainingIndex(
        [note_codes(ckpt.encoding.decode(np.asarray(train_rows[a : a + b, 0]))) for a, b, _ in train_index]
    )
    out = {}
    for s in sets:
        runs = index.copied_runs([note_codes(sc) for sc in s.scores])
        notes = [length for _, length in runs]
        bars = [round(run_bars(sc, start, length), 2) for sc, (start, length) in zip(s.scores, runs)]
        out[s.name] = {
            "longest_runs": notes,
            "max": max(notes),
            "median": float(np.median(notes)),
            "longest_bars": bars,
            "max_bars": max(bars),
            "flagged_copies": int(sum(b >= COPY_FLAG_BARS for b in bars)),
            "flag_at_bars": COPY_FLAG_BARS,
        }
    return out


def evaluate(
    run: Path,
    out: Path,
    baselines: list[Path] | None = None,
    classifier: Path | None = None,
    n: int = 20,
    length: str = "30s",
    seed: int = 0,
    soundfont: Path | None = None,
    data: Path | None = None,
    classifier_config: JudgeConfig | None = None,
    progress: bool = True,
    sampling: Sampling | None = None,
    split: str = HELD_OUT[0],
) -> dict:
    """Evaluate a run (and baselines) and write the report into `out`; returns report.json's dict.

    `data` replaces the prepared data folder the run was trained on (for a model whose folder is
    elsewhere, like the shipped one); its vocabulary must be the model's. Without `classifier`,
    one is trained on that data with `classifier_config` (default: the listening judge's). Event
    models sample with `sampling` (default: the house settings, `Sampling()`). The real pieces and
    the likelihood are those of `split`: "test" for the figures you report, "valid" for choosing
    settings (the judge's own accuracy is always its test split's)."""
    from etude.evaluation.report import write_report

    t0 = time.perf_counter()
    sampling = sampling or Sampling()
    sampling.check()
    if split not in HELD_OUT:
        raise ConfigError(f"--split must be one of {', '.join(HELD_OUT)}, not {split!r}")
    problems: list[str] = []
    ckpt = _load_run(run, data)
    sampling.check(ckpt.model)
    out = Path(out)
    ensure_dir(out, "report folder")
    # 1. the sets: the split's real pieces, the run's pieces, each baseline's pieces; rendered and measured
    sets, loaded_baselines = _sets(ckpt, baselines or [], n, length, seed, sampling, problems, split)
    for s in list(sets):
        if not s.scores:
            problems.append(f"set {s.name} is empty")
            sets.remove(s)
            continue
        analyse(s, soundfont)
    # 2. every set against the original: spectra, statistics, overlapped areas, histograms
    report: dict = {
        "run": str(run),
        "pieces_per_set": {s.name: len(s.scores) for s in sets},
        "sample_rate": SAMPLE_RATE,
        "length": length,
        "sampling": asdict(sampling),
        "split": split,
        **_against_original(sets),
    }
    # 3. likelihood of the split under each model
    report["likelihood"] = {"lstm": split_likelihood(ckpt, split)}
    report["likelihood_by_position"] = split_positions(ckpt, split)
    for path, other in loaded_baselines:
        report["likelihood"][Path(path).name] = (
            split_likelihood(other, split)
            if other.config.data and (Path(other.config.data) / "meta.json").exists()
            else {"problem": "its data folder is gone"}
        )
    # 4. genre adherence by a classifier, and memorisation of the training set
    report["genre"] = _genre(ckpt, sets, classifier, out, classifier_config, progress)
    report["memorisation"] = _memorisation(ckpt, sets[1:])
    report["problems"] = problems
    report["seconds"] = round(time.perf_counter() - t0, 1)
    for p in problems:
        log.warning("%s", p)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    write_report(report, sets, out)
    return report


def _load_run(run: Path, data: Path | None) -> Checkpoint:
    """The event-token checkpoint to evaluate, pointed at `data` when given, its test split present."""
    ckpt = load_checkpoint(run)
    if not isinstance(ckpt.encoding, EventEncoding):
        raise InputError(f"{run} is a piano-roll model; evaluate an event-token run and pass this one as --baseline")
    if data is not None:
        if open_encoding(Path(data)).vocab != ckpt.encoding.vocab:
            raise InputError(f"{data} has another vocabulary than {run}; prepare it with the model's settings")
        ckpt.config.data = str(Path(data).resolve())
    if not ckpt.config.data or not (Path(ckpt.config.data) / "meta.json").exists():
        raise InputError(
            f"{run}: its data folder {ckpt.config.data!r} is gone; pass --data with the prepared test split"
        )
    return ckpt


def _sets(
    ckpt: Checkpoint,
    baselines: list[Path],
    n: int,
    length: str,
    seed: int,
    sampling: Sampling,
    problems: list[str],
    split: str,
):
    """The original set (from `split`), the run's generated set and one per baseline that loads
    (with the baselines' checkpoints); a baseline that fails is added to `problems`."""
    genres = ckpt.encoding.genres
    sets = [
        original_set(Path(ckpt.config.data), ckpt.encoding, n, Length.parse(length), split),
        generated_set("lstm", ckpt, genres, n, length, seed, sampling),
    ]
    loaded = []
    for path in baselines:
        try:
            other = load_checkpoint(path)
            shared = [g for g in genres if g in other.encoding.genres] or other.encoding.genres
            sets.append(generated_set(Path(path).name, other, shared, n, length, seed, sampling))
            loaded.append((path, other))
        except EtudeError as exc:
            problems.append(f"baseline {path}: {exc}")
    return sets, loaded


def _against_original(sets: list[PieceSet]) -> dict:
    """Spectral distances, statistics, overlapped areas (overall and per genre) and histogram
    distances of every set against the first (the original)."""
    original = sets[0]
    reference = np.mean(original.spectra, axis=0)
    features = [*M.SCALARS, *M.HISTOGRAMS]
    return {
        "spectral": {s.name: _spectral(s, reference) for s in sets},
        "statistics": {s.name: set_statistics(s) for s in sets},
        "set_comparison": {
            s.name: {name: M.set_comparison(original.features[name], s.features[name]) for name in features}
            for s in sets
        },
        "set_comparison_by_genre": {s.name: _comparison_by_genre(s, original) for s in sets[1:]},
        "histogram_js_distance": {s.name: _histogram_distances(s, original) for s in sets},
        "form": {s.name: _form_by_genre(s) for s in sets},
    }


def _genre(
    ckpt: Checkpoint,
    sets: list[PieceSet],
    classifier: Path | None,
    out: Path,
    config: JudgeConfig | None,
    progress: bool,
) -> dict:
    """Each set's adherence to its genres by the classifier at `classifier` (or one trained on
    the run's data into OUT/classifier), with the classifier's own test figures."""

    data = Path(ckpt.config.data)
    if classifier is not None:
        clf = Classifier.load(classifier)
        clf_info = test_report(clf, data)
    else:
        clf, clf_info = train_classifier(data, out / "classifier", config, progress=progress)
    adherence = {
        s.name: _adherence([clf.genres[int(np.argmax(clf.classify_score(sc)))] for sc in s.scores], s.labels)
        for s in sets
    }
    return {"classifier": str(classifier or out / "classifier"), "test": clf_info, "adherence": adherence}
