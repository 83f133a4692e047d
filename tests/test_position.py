"""Likelihood by position (etude.evaluation.position): the copy model and buckets by hand, and
whole pieces read in chunks scored as if read at once, for the plain and the memory LSTM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from etude.config import ModelConfig
from etude.evaluation.position import by_position, copy_probs, mix_with_copy, piece_nlls, position_report
from etude.models.lstm import LSTMGenerator
from etude.models.memory import MemoryLSTM


def test_copy_probs_by_hand():
    p = copy_probs(np.array([1, 2, 3, 1, 2, 4, 1, 2, 3]), shortest=2, longest=3)
    # t=5: (1, 2) was followed by 3 once, the token is 4 -> 0; t=8: (1, 2) -> 3 once, 4 once -> 0.5
    expected = [math.nan] * 5 + [0.0, math.nan, math.nan, 0.5]
    np.testing.assert_array_equal(np.isnan(p), np.isnan(expected))
    assert p[5] == 0.0 and p[8] == 0.5


def test_copy_probs_prefer_the_longest_context():
    # (5, 1, 2) occurred once, followed by 3; (1, 2) twice, by 3 and 4: the longer one decides
    p = copy_probs(np.array([5, 1, 2, 3, 6, 1, 2, 4, 5, 1, 2, 3]), shortest=2, longest=3)
    assert p[11] == 1.0 and p[7] == 0.0


def test_mix_with_copy_by_hand():
    nll = np.array([math.log(2), math.log(2)])
    mixed = mix_with_copy(nll, np.array([1.0, math.nan]))
    assert mixed[0] == pytest.approx(-math.log(0.25 + 0.5)) and mixed[1] == nll[1]


def test_by_position_by_hand():
    buckets = by_position([np.array([1.0, 2.0, 3.0]), np.array([5.0])], edges=(0, 2, 4))
    assert buckets[0] == {"from": 0, "to": 2, "nll": 3.0, "tokens": 2}  # positions 1 of both pieces
    assert buckets[1]["nll"] == 2.5 and buckets[1]["tokens"] == 2


def _split(lengths: list[int], vocab: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = rng.integers(1, vocab, (sum(lengths), 1))
    starts = np.cumsum([0, *lengths[:-1]])
    return rows, np.array([(s, n, k % 2) for k, (s, n) in enumerate(zip(starts, lengths))], np.int64)


@pytest.mark.parametrize("cls,name", [(LSTMGenerator, "lstm"), (MemoryLSTM, "lstm-memory")])
def test_pieces_read_in_chunks_and_batches_score_as_read_at_once(cls, name):
    torch.manual_seed(0)
    model = cls(20, 2, ModelConfig(name=name, embed=8, genre_embed=4, hidden=16, layers=2), pad_id=0).eval()
    rows, index = _split([37, 50, 12, 41])
    nlls = piece_nlls(model, rows, index, [0, 1, 2, 3], chunk=7, batch=3)
    for p, nll in nlls.items():
        start, n, genre = (int(v) for v in index[p])
        x = torch.from_numpy(rows[start : start + n, 0])[None]
        with torch.no_grad():
            logp = torch.log_softmax(model(x[:, :-1], torch.tensor([genre]))[0], -1)
        whole = -logp[0].gather(-1, x[0, 1:, None])[..., 0].numpy()
        assert nll.shape == (n - 1,)
        np.testing.assert_allclose(nll, whole, atol=1e-4)


def test_position_report_takes_long_pieces_and_mixes_the_copy_model():
    torch.manual_seed(0)
    model = LSTMGenerator(20, 2, ModelConfig(embed=8, genre_embed=4, hidden=16, layers=1), pad_id=0).eval()
    rows, index = _split([300, 40, 300])
    rows[300 + 40 + 150 : 300 + 40 + 300] = rows[300 + 40 : 300 + 40 + 150]  # the third piece repeats itself
    report = position_report(model, rows, index, min_tokens=100)
    assert report["pieces"] == 2
    assert [b["tokens"] for b in report["buckets"][:3]] == [2 * 127, 2 * 128, 2 * 44]
    # past the repeat the copy model knows every token: the mixture far below the untrained model
    assert report["buckets"][2]["copy_mix"] < report["buckets"][2]["nll"] - 0.3
    assert math.isnan(report["buckets"][-1]["nll"])  # no piece reaches 4096
    assert position_report(model, rows, index, min_tokens=1000)["pieces"] == 0
    # over only the pieces of at least 300 tokens, the same pieces in every bucket before position 300
    same = position_report(model, rows, index, min_tokens=100, same_from=300)["same_pieces"]
    assert same["pieces"] == 2 and [b["tokens"] for b in same["buckets"]] == [2 * 127, 2 * 128]
    same = position_report(model, rows, index, min_tokens=100, same_from=301)["same_pieces"]
    assert same["pieces"] == 0 and all(math.isnan(b["nll"]) for b in same["buckets"])


def test_the_report_page_shows_the_same_pieces_beside_all():
    from etude.evaluation.report import _position_table

    bucket = {"from": 0, "to": 128, "tokens": 254, "nll": 1.5, "copy_mix": 1.4}
    later = {"from": 4096, "to": 8192, "tokens": 10, "nll": 2.0, "copy_mix": 1.9}
    same = {"pieces": 1, "from": 4096, "buckets": [{**bucket, "nll": 1.75}]}
    page = _position_table({"buckets": [bucket, later], "mean": 1.6, "mean_copy_mix": 1.5, "same_pieces": same})
    assert "only the 1 pieces of 4096 tokens or more" in page
    rows = page.split("<tr>")[2:]
    assert "<td>1.750</td>" in rows[0] and rows[1].endswith("<td>–</td></tr>")  # none past 4,096
