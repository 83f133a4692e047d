"""Truncated back-propagation through time (train.carry_state): lanes that read whole pieces in
order, an LSTM state carried from window to window, and a run that resumes with it."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from etude.config import ModelConfig, load_preset
from etude.data.windows import Lanes
from etude.errors import ConfigError
from etude.models.lstm import LSTMGenerator
from etude.training.loop import train
from runs import trained_and_resumed


def test_lanes_read_whole_pieces_in_order_and_mark_where_each_begins():
    # three pieces of 7, 2 and 11 tokens, each token its own number (0 is the pad)
    rows = np.arange(1, 21, dtype=np.uint16)[:, None]
    index = np.array([[0, 7, 0], [7, 2, 1], [9, 11, 2]])
    lanes = Lanes(rows, index, seq_len=3, pad_id=0)
    assert lanes.counts.tolist() == [2, 1, 4]  # ceil((length - 1) / 3) windows a piece
    read: dict[int, list] = {0: [], 1: []}
    batches = [lanes.batch(seed=5, it=it, batch_size=2) for it in range(60)]
    for x, y, genre, fresh in batches:
        for lane in (0, 1):
            tokens = [t for t in x[lane].tolist() + y[lane, -1:].tolist() if t]
            first = int(index[genre[lane], 0]) + 1
            assert bool(fresh[lane]) == (tokens[0] == first)  # fresh exactly where a piece begins
            read[lane].append(tokens)
    for windows in read.values():
        for a, b in zip(windows, windows[1:]):
            if b[0] != a[-1]:  # the lane went on to another piece: it begins there, and `a` ended its own
                assert b[0] in index[:, 0] + 1 and a[-1] in index[:, 0] + index[:, 1]
    assert read[0] != read[1]  # each lane draws its own pieces
    # a pure function of (seed, iteration): a new reader asked for iteration 47 alone agrees
    again = Lanes(rows, index, seq_len=3, pad_id=0).batch(seed=5, it=47, batch_size=2, part=slice(1, 2))
    for got, want in zip(again, batches[47]):
        assert got.tolist() == want[1:2].tolist()


def test_windows_scored_with_the_state_carried_equal_the_piece_read_whole():
    torch.manual_seed(0)
    model = LSTMGenerator(30, 2, ModelConfig(embed=8, genre_embed=4, hidden=16, layers=2)).eval()
    tokens = torch.randint(1, 30, (3, 2 * 10 + 1))
    genre = torch.tensor([0, 1, 1])
    whole, count = model.objective(tokens[:, :-1], tokens[:, 1:], genre)
    halves = [(tokens[:, :11], True), (tokens[:, 10:], False)]
    carried = sum(model.objective(w[:, :-1], w[:, 1:], genre, torch.tensor([fresh] * 3))[0] for w, fresh in halves)
    torch.testing.assert_close(carried, whole)
    assert count == 20 * 3

    # a lane marked fresh starts from zeros: lane 1's second half scores as if read alone
    def loss(w, lanes, fresh=None):
        return model.objective(w[lanes, :-1], w[lanes, 1:], genre[lanes], fresh)[0]

    first, second = halves[0][0], halves[1][0]
    loss(first, [0, 1, 2], torch.tensor([True] * 3))
    mixed = loss(second, [0, 1, 2], torch.tensor([False, True, False]))
    carried_02 = loss(tokens, [0, 2]) - loss(first, [0, 2])
    torch.testing.assert_close(mixed, carried_02 + loss(second, [1]))


def test_a_carried_run_saves_its_lanes_state_and_resumes_exactly(real_data, tmp_path):
    # the copy rewound to iteration 10 and resumed: its lanes go on from their saved state
    whole, cut = trained_and_resumed(real_data, tmp_path, "train.carry_state=true")
    saved = torch.load(whole / "checkpoints" / "last" / "optimizer.pt", weights_only=True)["carried_state"]
    assert len(saved) == 1 and saved[0][0].shape == (2, 8, 48)  # one process: (layers, lanes, hidden)
    a = load_file(str(whole / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(cut / "checkpoints" / "last" / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(b[k], a[k])


def test_a_model_that_cannot_carry_its_state_is_refused_by_name(real_data, tmp_path):
    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    with pytest.raises(ConfigError, match="train.carry_state") as refused:
        train(cfg, tmp_path / "run", overrides=["model.name=lstm-memory", "train.carry_state=true"], progress=False)
    assert refused.value.option == "train.carry_state"
    assert not (tmp_path / "run").exists()
