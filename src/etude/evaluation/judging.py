"""Training a genre judge (classifier.py) and measuring how well it judges: on the test split
(whole pieces and openings), on pieces held out of its training (folders, composers), and how
often its verdict survives changes a listener would not call a change of genre (invariance)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from symusic import Score

from etude.data.beats import find_grid, retime
from etude.data.midi import first_seconds
from etude.errors import InputError
from etude.evaluation import hearing
from etude.evaluation.classifier import (
    KINDS,
    Classifier,
    JudgeConfig,
    ListeningClassifier,
    ListeningConfig,
    Piece,
    every_piece,
    heard_views,
    held_out,
    open_event_data,
    pieces_of,
    played_otherwise,
    tempo_scaled,
)

OPENING = 30.0  # seconds: the opening a listener hears first, judged beside the whole piece


def confusion_report(genres: list[str], truth: list[int], guess: list[int]) -> dict:
    """Accuracy, per-genre accuracy (recall) and confusion matrix (rows true, columns predicted)."""
    g = len(genres)
    confusion = np.zeros((g, g), dtype=int)
    for t, p in zip(truth, guess):
        confusion[t, p] += 1
    total, per = confusion.sum(), confusion.sum(1)
    return {
        "accuracy": float(np.trace(confusion) / total) if total else float("nan"),
        "per_genre": {name: float(confusion[k, k] / per[k]) if per[k] else None for k, name in enumerate(genres)},
        "confusion": confusion.tolist(),
        "pieces": int(total),
    }


def _verdict(clf: Classifier, score: Score) -> int:
    return int(np.argmax(clf.classify_score(score)))


def test_report(clf: Classifier, data_dir: Path, exclude: tuple[str, ...] = ()) -> dict:
    """The judge on the test split's pieces (those whose id starts with any of `exclude` left
    out), whole and in their first OPENING seconds: confusion_report of each."""
    pieces = pieces_of(data_dir, "test")
    skip = {p.id for p in held_out(pieces, exclude)}
    truth, whole, opening = [], [], []
    for p in pieces:
        if p.id in skip:
            continue
        score = clf.encoding.decode(p.ids)
        truth.append(p.genre)
        whole.append(_verdict(clf, score))
        opening.append(_verdict(clf, first_seconds(score, OPENING)))
    report = {"genres": clf.genres, "kind": clf.kind, **confusion_report(clf.genres, truth, whole)}
    report["opening"] = confusion_report(clf.genres, truth, opening)
    return report


def held_out_report(clf: Classifier, data_dir: Path, prefixes: tuple[str, ...]) -> dict:
    """The judge on every split's pieces whose id starts with any of `prefixes`, whole."""
    pieces = held_out(every_piece(data_dir), prefixes)
    truth = [p.genre for p in pieces]
    guess = [int(np.argmax(clf.probabilities(p.ids))) for p in pieces]
    return {"prefixes": list(prefixes), **confusion_report(clf.genres, truth, guess)}


def train_classifier(
    data_dir: Path,
    out: Path | None = None,
    cfg: JudgeConfig | None = None,
    progress: bool = True,
    hold_out: tuple[str, ...] = (),
) -> tuple[Classifier, dict]:
    """Train on the train split, leaving out pieces whose id starts with any of `hold_out`;
    returns the classifier and its report on the test split (test_report), with
    `held_out`: its accuracy on the held-out pieces of every split."""
    cfg = cfg or ListeningConfig()
    enc = open_event_data(data_dir)
    candidates = pieces_of(data_dir, "train")
    left_out = {p.id for p in held_out(candidates, hold_out)}
    train = [p for p in candidates if p.id not in left_out]
    if not train:
        raise InputError(f"{data_dir} has no training pieces" + (" left after --hold-out" if hold_out else ""))
    clf = KINDS[cfg.kind].fit(enc, cfg, train, progress)
    if out is not None:
        clf.save(out)
    report = test_report(clf, data_dir, exclude=hold_out)
    if hold_out:
        report["held_out"] = held_out_report(clf, data_dir, hold_out)
    return clf, report


def composer_of(piece_id: str) -> str:
    """A piece's composer by the piano corpus's naming: its folder and the file name up to the
    first underscore (classical/chopin_op10_1.mid -> classical/chopin)."""
    folder, _, name = piece_id.rpartition("/")
    return f"{folder}/{name.split('_')[0]}"


def leave_one_out(
    data_dir: Path,
    genre: str,
    cfg: ListeningConfig | None = None,
    group_of: Callable[[str], str] = composer_of,
    progress: bool = False,
) -> dict:
    """Leave-one-group-out accuracy for `genre` (listening judge): for each group of that genre's
    pieces (by `group_of`, default the composer), a judge trained on the training split without
    the group classifies the group's pieces of every split, whole. The features are heard once."""
    cfg = cfg or ListeningConfig()
    enc = open_event_data(data_dir)
    if genre not in enc.genres:
        raise InputError(f"unknown genre {genre!r}; {data_dir} has {', '.join(enc.genres)}")
    train = pieces_of(data_dir, "train")
    x, y, which = heard_views(train, enc, cfg, progress)
    mine = [p for p in every_piece(data_dir) if p.genre == enc.genres.index(genre)]
    groups = sorted({group_of(p.id) for p in mine})
    per_group, right = {}, 0
    for group in groups:
        keep = np.array([group_of(train[k].id) != group for k in which])
        clf = ListeningClassifier.fit_features(x[keep], y[keep], enc, cfg)
        members = [p for p in mine if group_of(p.id) == group]
        hits = sum(int(np.argmax(clf.probabilities(p.ids))) == p.genre for p in members)
        per_group[group] = {"pieces": len(members), "accuracy": hits / len(members)}
        right += hits
    return {"genre": genre, "accuracy": right / max(len(mine), 1), "pieces": len(mine), "groups": per_group}


# ----------------------------------------------------------------------------- invariance
def _one_velocity(score: Score, velocity: int = 64) -> Score:
    out = score.copy()
    for track in out.tracks:
        for n in track.notes:
            n.velocity = velocity
    return out


def _beat_tracked(score: Score) -> Score:
    """Re-timed onto the beat grid the beat tracker finds (etude.data.beats), as prepare does for
    performed files."""
    grid = find_grid(score)
    return retime(score, grid) if len(grid.beats) >= 4 else score


def _durations(score: Score, legato: bool) -> Score:
    """Each note held to the next later onset (legato), or for half its length (staccato)."""
    out = score.copy()
    for track in out.tracks:
        notes = sorted(track.notes, key=lambda n: n.time)
        onsets = np.array([n.time for n in notes])
        for n in notes:
            if legato:
                later = onsets[onsets > n.time]
                n.duration = int(later[0] - n.time) if len(later) else n.duration
            else:
                n.duration = max(1, n.duration // 2)
    return out


TRANSFORMS: dict[str, Callable[[Score], Score]] = {
    "tempo x0.8": lambda s: tempo_scaled(s, 0.8),
    "tempo x1.25": lambda s: tempo_scaled(s, 1.25),
    "one velocity": _one_velocity,
    "transpose -3": lambda s: s.shift_pitch(-3),
    "transpose +3": lambda s: s.shift_pitch(3),
    "16th grid": lambda s: hearing.on_grid(s, 4),
    "jitter 30 ms": lambda s: played_otherwise(s, np.random.default_rng(0), tempo=1.0, jitter=0.03),
    "beat tracked": _beat_tracked,
    "legato": lambda s: _durations(s, legato=True),
    "staccato": lambda s: _durations(s, legato=False),
}


def invariance(clf: Classifier, data_dir: Path, max_pieces: int | None = None) -> dict[str, float]:
    """Share of test pieces whose predicted genre stays the same under each of TRANSFORMS (tempo
    x0.8 and x1.25, every velocity 64, transposed -3 and +3, onsets on a 16th grid, onsets
    jittered +-30 ms, re-timed by the beat tracker, legato and staccato durations): a judge of
    the music, not of how a file was made, scores 1 on each."""
    pieces: list[Piece] = pieces_of(data_dir, "test")[:max_pieces]
    kept: dict[str, list[bool]] = {name: [] for name in TRANSFORMS}
    for p in pieces:
        score = clf.encoding.decode(p.ids)
        before = _verdict(clf, score)
        for name, change in TRANSFORMS.items():
            kept[name].append(_verdict(clf, change(score)) == before)
    return {name: float(np.mean(v)) if v else float("nan") for name, v in kept.items()}
