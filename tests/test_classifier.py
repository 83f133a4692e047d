"""The genre classifier judges the music alone: what it hears, and invariance it has by construction."""

from __future__ import annotations

import pytest

from etude.data.store import open_encoding
from etude.evaluation.classifier import ClassifierConfig, heard_tokens, invariance, train_classifier


def test_notes_only_hears_no_tempo_time_signature_velocity_or_genre(real_data):
    enc = open_encoding(real_data)
    heard = heard_tokens(enc, "notes")
    kinds = {t.split("_")[0] for t, h in zip(enc.vocab, heard) if h}
    assert kinds == {"Bar", "Position", "Pitch", "Duration"}
    everything = heard_tokens(enc, "all")
    assert not any(everything[enc.genre_id(g)] for g in enc.genres) and everything.sum() == len(enc.vocab) - len(
        enc.genres
    )


@pytest.fixture(scope="module")
def notes_classifier(real_data, tmp_path_factory):
    return train_classifier(
        real_data, tmp_path_factory.mktemp("clf"), ClassifierConfig(iterations=60, transpose=5), progress=False
    )


def test_tempo_and_dynamics_cannot_move_a_notes_only_classifier(notes_classifier, real_data):
    clf, info = notes_classifier
    shares = invariance(clf, real_data)
    assert shares["tempo x0.8"] == shares["tempo x1.25"] == shares["one velocity"] == 1.0
    assert 0.0 <= shares["transpose -3"] <= 1.0 and 0.0 <= shares["transpose +3"] <= 1.0
    assert info["accuracy"] > 0.5  # two genres (bach, fiddle): better than chance after 60 steps


def test_a_classifier_that_hears_everything_is_loaded_as_such(notes_classifier, tmp_path):
    import json

    from etude.evaluation.classifier import Classifier

    clf, _ = notes_classifier
    folder = clf.save(tmp_path / "old")
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["classifier"]["hears"]  # a classifier saved before `hears` existed
    (folder / "config.json").write_text(json.dumps(cfg))
    assert Classifier.load(folder).model.cfg.hears == "all"
