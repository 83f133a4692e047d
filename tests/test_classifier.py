"""The genre judges judge the music alone: what each hears, the invariance each has by
construction, saving and loading, and the held-out and leave-one-out measures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from etude.data.store import open_encoding
from etude.evaluation import classifier as C
from etude.evaluation.classifier import Classifier, ListeningConfig, TokenConfig, heard_tokens
from etude.evaluation.judging import TRANSFORMS, composer_of, invariance, leave_one_out, train_classifier


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
        real_data, tmp_path_factory.mktemp("clf"), TokenConfig(iterations=60, transpose=5), progress=False
    )


@pytest.fixture(scope="module")
def listening(real_data, tmp_path_factory):
    return train_classifier(
        real_data, tmp_path_factory.mktemp("listen"), ListeningConfig(iterations=100), progress=False
    )


def test_tempo_and_dynamics_cannot_move_a_notes_only_classifier(notes_classifier, real_data):
    clf, info = notes_classifier
    shares = invariance(clf, real_data)
    assert shares["tempo x0.8"] == shares["tempo x1.25"] == shares["one velocity"] == 1.0
    assert 0.0 <= shares["transpose -3"] <= 1.0 and 0.0 <= shares["transpose +3"] <= 1.0
    assert info["accuracy"] > 0.5 and info["kind"] == "tokens"  # two genres (bach, fiddle): better than chance


def test_a_classifier_that_hears_everything_is_loaded_as_such(notes_classifier, tmp_path):
    clf, _ = notes_classifier
    folder = clf.save(tmp_path / "old")
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["classifier"]["hears"]  # a classifier saved before `hears` existed
    del cfg["kind"]  # and before there were kinds: a token classifier
    (folder / "config.json").write_text(json.dumps(cfg))
    loaded = Classifier.load(folder)
    assert loaded.kind == "tokens" and loaded.cfg.hears == "all"


def test_the_listening_judge_tells_chorales_from_fiddle_tunes(listening):
    clf, info = listening
    assert info["kind"] == "listening" and info["pieces"] >= 2
    assert info["accuracy"] >= 0.75 and info["opening"]["accuracy"] >= 0.75
    assert set(info["opening"]["per_genre"]) == set(clf.genres) == {"bach", "fiddle"}


def test_note_lengths_and_velocities_cannot_move_the_listening_judge(listening, real_data):
    clf, _ = listening
    shares = invariance(clf, real_data)
    assert set(shares) == set(TRANSFORMS)
    assert shares["legato"] == shares["staccato"] == shares["one velocity"] == 1.0
    assert all(0.0 <= v <= 1.0 for v in shares.values())


def test_a_saved_listening_judge_loads_as_one_and_judges_alike(listening, real_data, tmp_path):
    clf, _ = listening
    loaded = Classifier.load(clf.save(tmp_path / "judge"))
    assert isinstance(loaded, C.ListeningClassifier) and loaded.genres == clf.genres
    piece = C.pieces_of(real_data, "test")[0]
    score = clf.encoding.decode(piece.ids)
    assert np.allclose(loaded.classify_score(score), clf.classify_score(score), atol=1e-6)
    assert np.allclose(loaded.probabilities(piece.ids), clf.classify_score(score), atol=1e-6)


def test_held_out_pieces_are_not_trained_on_and_are_reported(real_data, tmp_path, monkeypatch):
    heard: list[str] = []
    views = C.heard_views

    def spy(pieces, *args, **kwargs):
        heard.extend(p.id for p in pieces)
        return views(pieces, *args, **kwargs)

    monkeypatch.setattr(C, "heard_views", spy)
    every = [p for split in ("train", "valid", "test") for p in C.pieces_of(real_data, split)]
    prefix = every[0].id.split("/")[0] + "/" + every[0].id.split("/")[1][:3]  # a few pieces of one genre
    held = [p for p in every if p.id.startswith(prefix)]
    _, info = train_classifier(real_data, None, ListeningConfig(iterations=20), progress=False, hold_out=(prefix,))
    assert held and not any(name.startswith(prefix) for name in heard)
    assert info["held_out"]["pieces"] == len(held) and info["held_out"]["prefixes"] == [prefix]
    test = C.pieces_of(real_data, "test")
    assert info["pieces"] == sum(not p.id.startswith(prefix) for p in test)


def test_leave_one_out_judges_every_piece_of_the_genre_once(real_data):
    genre = open_encoding(real_data).genres[0]
    result = leave_one_out(real_data, genre, ListeningConfig(iterations=20), group_of=lambda name: name)
    mine = [p for split in ("train", "valid", "test") for p in C.pieces_of(real_data, split)]
    mine = [p for p in mine if p.genre == 0]
    assert result["pieces"] == len(mine) == sum(g["pieces"] for g in result["groups"].values())
    assert 0.0 <= result["accuracy"] <= 1.0


def test_composer_of_a_piano_corpus_file():
    assert composer_of("classical/chopin_op10_1.mid") == "classical/chopin"
    assert composer_of("ragtime/joplin.mid") == "ragtime/joplin.mid"


def test_listening_config_is_checked_once():
    from etude.errors import ConfigError

    with pytest.raises(ConfigError):
        ListeningConfig(replay_tempo=0.5)
    with pytest.raises(ConfigError):
        ListeningConfig(iterations=0)


def test_replaying_thins_inner_voices_only_and_keeps_the_music_otherwise(real_data):
    notes = {"time": np.array([0, 0, 0, 0, 10, 10, 20]), "pitch": np.array([60, 48, 67, 64, 50, 62, 70])}
    rng = np.random.default_rng(0)
    assert C._outer_voices_kept(notes, rng, 1.0).tolist() == [False, True, True, False, True, True, True]
    assert C._outer_voices_kept(notes, rng, 0.0).all()
    enc = open_encoding(real_data)
    score = enc.decode(C.pieces_of(real_data, "test")[0].ids)
    same = C.played_otherwise(score, rng, tempo=1.0, jitter=0.0)  # nothing changed but the resolution
    assert same.ticks_per_quarter == 480 and same.note_num() == score.note_num()
    assert np.allclose(
        np.sort(same.to("second").tracks[0].notes.numpy()["time"]),
        np.sort(score.to("second").tracks[0].notes.numpy()["time"]),
        atol=1e-3,
    )
