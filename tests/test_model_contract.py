"""Every registered model through the same checks, through the interface callers use
(etude.models.base): it declares the interface; on a tiny keyboard the probabilities of every
possible frame sum to one (exactly, or within AIS's error); training through its own objective
raises its likelihood of a toy set; samples have the documented shape; a checkpoint round trip
gives the same model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from etude.config import AIS, EncodingConfig, ModelConfig, RunConfig, TrainConfig
from etude.data.encoding import make_encoding
from etude.data.windows import Windows, piece_batches
from etude.evaluation.likelihood import frame_likelihood, token_likelihood
from etude.models.base import EventModel, FrameModel, Model
from etude.models.checkpoint import load_checkpoint, write_checkpoint
from etude.models.registry import REGISTRY, build_model

GENRES = ["folk", "jazz"]
# (data, name); "NAME:K" is NAME with its output a mixture of K NADE key orders (model.head_orders)
MODELS = [*sorted(REGISTRY), ("rolls", "lstm-nade:3")]
ESTIMATE = AIS(temps=300, runs=50)  # RBM outputs: log Z by AIS, seeded, so repeatable
QUICK = AIS(temps=100, runs=10)  # enough to tell a trained RBM output from an untrained one


def _config(name: str) -> ModelConfig:
    name, _, orders = name.partition(":")
    return ModelConfig(
        name=name,
        embed=8,
        genre_embed=4,
        hidden=24,
        layers=2,
        keep_prob=0.9,
        head_hidden=8,
        cd_k=1,
        head_orders=int(orders or 1),
    )


def _encoding(data: str):
    return make_encoding(EncodingConfig(name="pianoroll" if data == "rolls" else "remi"), GENRES)


def _model(data: str, name: str, n_keys: int = 88, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(_config(name), _encoding(data), n_keys)


def _toy_split(model, n_pieces: int = 4, length: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Rows and index (start, length, genre) of pieces that repeat a short pattern: chords of three
    keys alternating for piano rolls, a cycle of five token ids for events."""
    if model.unit == "frame":
        pattern = np.zeros((2, model.n_keys), np.float32)
        pattern[0, [39, 43, 46]] = pattern[1, [41, 44, 48]] = 1
    else:
        pattern = (np.arange(5) + 10)[:, None].astype(np.int64) % model.vocab_size
    rows = np.concatenate([np.resize(pattern, (length, pattern.shape[1])) for _ in range(n_pieces)])
    index = np.array([(k * length, length, k % len(GENRES)) for k in range(n_pieces)], np.int64)
    return rows, index


def _likelihood(model, rows, index) -> float:
    """Mean NLL of the toy split in the model's unit, through the evaluation code."""
    if model.unit == "frame":
        return frame_likelihood(model, piece_batches(rows, index), ais=QUICK)["loss"]
    return token_likelihood(model, Windows(rows, index, 16, model.pad_id).fixed_batches(8, 64))["loss"]


@pytest.mark.parametrize("data,name", MODELS)
def test_declares_the_interface(data, name):
    model = _model(data, name)
    assert isinstance(model, Model)
    assert isinstance(model, FrameModel if model.unit == "frame" else EventModel)
    assert model.unit == ("frame" if data == "rolls" else "token")
    assert isinstance(model.estimated_likelihood, bool)


@pytest.mark.parametrize("data,name", [m for m in MODELS if m[0] == "rolls"])
def test_probabilities_of_every_frame_sum_to_one(data, name):
    """A 6-key keyboard: p(first frame) over all 64 frames, for each genre."""
    model = _model(data, name, n_keys=6).eval()
    with torch.no_grad():
        for p in model.parameters():  # away from the near-uniform start
            p.add_(torch.randn_like(p) * 0.5)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)))  # (64, 6)
    frames = torch.cat([torch.zeros(64, 1, 6), every[:, None]], 1)  # (64, 2, 6): silence, then the frame
    mask = torch.ones(64, 2, dtype=torch.bool)
    for g in range(len(GENRES)):
        nll = model.frame_nll(frames, mask, torch.full((64,), g), ESTIMATE)[:, 0]
        total = float(torch.exp(-nll.double()).sum())
        assert total == pytest.approx(1.0, abs=0.1 if model.estimated_likelihood else 1e-4), (g, total)


@pytest.mark.parametrize("data,name", MODELS)
def test_training_through_its_objective_raises_its_likelihood(data, name):
    model = _model(data, name)
    rows, index = _toy_split(model)
    before = _likelihood(model, rows, index)
    windows = model.training_windows(rows, index, TrainConfig(seq_len=16))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(80):
        loss, count = model.objective(*windows.random_batch(rng, 8))
        optimizer.zero_grad()
        (loss / count.clamp(min=1)).backward()
        optimizer.step()
    after = _likelihood(model, rows, index)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("data,name", MODELS)
def test_scoring_leaves_the_model_in_the_mode_it_found(data, name):
    """Validation inside training must not switch dropout off for the rest of the run, and
    scoring a loaded model must not switch it on for the generation that follows."""
    model = _model(data, name)
    rows, index = _toy_split(model, n_pieces=2, length=16)
    for training in (True, False):
        model.train(training)
        _likelihood(model, rows, index)
        assert all(m.training == training for m in model.modules())


@pytest.mark.parametrize("data,name", MODELS)
def test_samples_have_the_documented_shape(data, name):
    model = _model(data, name).eval()
    genre = torch.tensor([0, 1])
    gen = torch.Generator().manual_seed(0)
    if model.unit == "frame":
        pieces = model.sample(2, 5, genre, temperature=1.0, generator=gen)
        assert pieces.shape == (2, 5, model.n_keys)
        assert set(pieces.unique().tolist()) <= {0.0, 1.0}
        return
    logits, state = model.step(torch.tensor([3, 4]), genre, None)
    assert logits.shape == (2, model.vocab_size)
    logits2, _ = model.step(logits.argmax(-1), genre, state)
    assert logits2.shape == (2, model.vocab_size) and torch.isfinite(logits2).all()


@pytest.mark.parametrize("data,name", MODELS)
def test_checkpoint_round_trip_gives_the_same_model(data, name, tmp_path):
    model = _model(data, name).eval()
    config = RunConfig(model=_config(name))
    folder = write_checkpoint(tmp_path / "ckpt", model, config, _encoding(data), {"iteration": 0})
    loaded = load_checkpoint(folder).model.eval()
    assert type(loaded) is type(model)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    rows, index = _toy_split(model, n_pieces=2, length=12)
    assert _likelihood(loaded, rows, index) == pytest.approx(_likelihood(model, rows, index), rel=1e-6)
