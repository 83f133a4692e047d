"""Likelihood by position in the piece: does a model gain from what it heard long ago?

Each test piece is read whole by the model, its state carried from chunk to chunk (for a model
with a memory of the piece, the memory too), and the NLL of every token is put in a bucket by its
position (tokens from the piece's start). A model that remembers the piece gets better as the
piece goes on; one that forgets gets no better past its training windows.

Beside the model, a reference that needs no training: its own mixture with a copy model of the
piece (`copy_probs`), which predicts what followed the earlier occurrences of the last 8 to 16
tokens. A model with a real memory of the piece should beat that mixture.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from etude.data.corpus import HELD_OUT
from etude.data.store import open_split
from etude.models.base import EventModel
from etude.models.checkpoint import Checkpoint

EDGES = (0, 128, 256, 512, 1024, 2048, 4096, 8192)  # bucket edges in tokens; the last bucket is 4096..8191
COPY_SHORTEST, COPY_LONGEST = 8, 16  # context lengths (tokens) the copy model matches
COPY_WEIGHT = 0.5  # the copy model's share of the reference mixture where it has a prediction
# the buckets before this position over only the pieces that reach it: the same pieces in each, so
# a bucket is not worse merely because only long (harder) pieces reach it
SAME_PIECES_FROM = EDGES[-2]
REPORT_PIECES = 100  # position NLL in reports: at most this many test pieces (all: the benchmark)


def _context_hashes(tokens: np.ndarray, k: int) -> np.ndarray:
    """A 64-bit hash of tokens[t - k : t] for every t (T,); positions t < k get hash 0 (no context)."""
    t = np.asarray(tokens, dtype=np.uint64)
    h = np.zeros(len(t), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(1, k + 1):  # h[t] = sum_i tokens[t - i] * P^i, wrapping mod 2^64
            h[i:] += t[:-i] * np.uint64(pow(1_000_003, i, 2**64))
    h[:k] = 0
    return h


def copy_probs(tokens: np.ndarray, shortest: int = COPY_SHORTEST, longest: int = COPY_LONGEST) -> np.ndarray:
    """The copy model's probability of each token given the piece before it, (T,); nan where it
    predicts nothing.

    For the longest k in shortest..longest whose last-k-token context occurred earlier in the
    piece (ending before t): p(tokens[t]) = (times tokens[t] followed that context) / (times it
    occurred). A crude n-gram of the piece itself, as in the position-NLL audit of issue 30."""
    tokens = np.asarray(tokens)
    lengths = range(longest, shortest - 1, -1)
    hashes = {k: _context_hashes(tokens, k).tolist() for k in lengths}
    seen: dict[int, Counter] = {k: Counter() for k in lengths}  # context hash -> occurrences
    followed: dict[int, Counter] = {k: Counter() for k in lengths}  # (context hash, token) -> count
    out = np.full(len(tokens), np.nan)
    for t, y in enumerate(tokens.tolist()):
        if t < shortest:
            continue
        for k in lengths:
            if t >= k and seen[k][hashes[k][t]]:
                out[t] = followed[k][(hashes[k][t], y)] / seen[k][hashes[k][t]]
                break
        for k in lengths:
            if t >= k:
                seen[k][hashes[k][t]] += 1
                followed[k][(hashes[k][t], y)] += 1
    return out


def mix_with_copy(nll: np.ndarray, p_copy: np.ndarray, weight: float = COPY_WEIGHT) -> np.ndarray:
    """-log((1 - w) p_model + w p_copy) per token where the copy model predicts, else the model's
    own NLL: nll and p_copy (T,), nats."""
    mixed = -np.log((1 - weight) * np.exp(-nll) + weight * np.nan_to_num(p_copy))
    return np.where(np.isnan(p_copy), nll, mixed)


def _groups(index: np.ndarray, pieces: list[int], batch: int) -> Iterator[list[int]]:
    """Pieces in groups of `batch` of similar length (less padding)."""
    order = sorted(pieces, key=lambda p: int(index[p, 1]))
    for i in range(0, len(order), batch):
        yield order[i : i + batch]


@torch.no_grad()
def piece_nlls(
    model: EventModel,
    rows: np.ndarray,
    index: np.ndarray,
    pieces: list[int],
    max_tokens: int = EDGES[-1],
    chunk: int = 512,
    batch: int = 16,
) -> dict[int, np.ndarray]:
    """NLL (nats) of each token after the first of each piece in `pieces` (its first `max_tokens`),
    the whole piece read in chunks with the state carried: piece -> (length - 1,), entry t - 1
    scoring token t. rows/index: a split (etude.data.store.open_split)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: dict[int, np.ndarray] = {}
    for group in _groups(index, pieces, batch):
        lengths = [min(int(index[p, 1]), max_tokens) for p in group]
        tokens = torch.full((len(group), max(lengths)), model.pad_id, dtype=torch.long)
        for r, (p, n) in enumerate(zip(group, lengths)):
            start = int(index[p, 0])
            tokens[r, :n] = torch.from_numpy(np.asarray(rows[start : start + n, 0], dtype=np.int64))
        genre = torch.tensor([int(index[p, 2]) for p in group], device=device)
        tokens, state, nll = tokens.to(device), None, []
        for s in range(0, tokens.shape[1] - 1, chunk):
            x, y = tokens[:, s : s + chunk], tokens[:, s + 1 : s + chunk + 1]
            logits, _, state = model(x[:, : y.shape[1]], genre, state=state)
            nll.append(-torch.log_softmax(logits.float(), -1).gather(-1, y[..., None])[..., 0])
        nll_all = torch.cat(nll, 1).cpu().numpy()
        for r, (p, n) in enumerate(zip(group, lengths)):
            out[p] = nll_all[r, : n - 1].astype(np.float64)
    model.train(was_training)
    return out


def by_position(nlls: list[np.ndarray], edges: tuple[int, ...] = EDGES) -> list[dict]:
    """Mean NLL of the tokens at positions edges[i] .. edges[i + 1] - 1 over all pieces (entry
    t - 1 of a piece's array scores position t): [{"from", "to", "nll", "tokens"}] (nll nan when
    no piece reaches the bucket)."""
    sums = np.zeros(len(edges) - 1)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for nll in nlls:
        positions = np.arange(1, len(nll) + 1)
        bucket = np.searchsorted(edges, positions, side="right") - 1
        keep = bucket < len(edges) - 1
        np.add.at(sums, bucket[keep], nll[keep])
        np.add.at(counts, bucket[keep], 1)
    return [
        {"from": lo, "to": hi, "nll": sums[i] / counts[i] if counts[i] else math.nan, "tokens": int(counts[i])}
        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))
    ]


def position_report(
    model: EventModel,
    rows: np.ndarray,
    index: np.ndarray,
    min_tokens: int = 1200,
    max_pieces: int | None = None,
    same_from: int = SAME_PIECES_FROM,
) -> dict:
    """The model's NLL by position over the split's pieces of at least `min_tokens` tokens (at
    most `max_pieces` of them, spread evenly over the split), beside its mixture with the copy
    model: {"pieces", "mean", "mean_copy_mix", "buckets": [{"from", "to", "nll", "copy_mix",
    "tokens"}], "same_pieces": {"pieces", "from", "buckets"}}, nats per token. The later buckets
    hold only the longer pieces; "same_pieces" gives the buckets before position `same_from`
    over only the pieces that reach it (the same pieces in each)."""
    pieces = [p for p in range(len(index)) if int(index[p, 1]) >= min_tokens]
    if max_pieces is not None and len(pieces) > max_pieces:
        pieces = [pieces[int(i)] for i in np.linspace(0, len(pieces) - 1, max_pieces).round()]
    if not pieces:
        return {"pieces": 0, "problem": f"no piece of at least {min_tokens} tokens"}
    nlls = piece_nlls(model, rows, index, pieces)
    mixed = []
    for p, nll in nlls.items():
        start = int(index[p, 0])
        tokens = np.asarray(rows[start : start + len(nll) + 1, 0])
        mixed.append(mix_with_copy(nll, copy_probs(tokens)[1:]))
    scored = list(nlls.values())
    long = [k for k, nll in enumerate(scored) if len(nll) + 1 >= same_from]  # pieces of >= same_from tokens
    same_edges = tuple(e for e in EDGES if e <= same_from)
    same = _with_copy_mix([scored[k] for k in long], [mixed[k] for k in long], same_edges)
    return {
        "pieces": len(pieces),
        "mean": float(np.concatenate(scored).mean()),
        "mean_copy_mix": float(np.concatenate(mixed).mean()),
        "buckets": _with_copy_mix(scored, mixed),
        "same_pieces": {"pieces": len(long), "from": same_from, "buckets": same},
    }


def _with_copy_mix(nlls: list[np.ndarray], mixed: list[np.ndarray], edges: tuple[int, ...] = EDGES) -> list[dict]:
    """by_position of the model's NLLs, each bucket with the copy mixture's ("copy_mix") beside it."""
    buckets = by_position(nlls, edges)
    for b, m in zip(buckets, by_position(mixed, edges)):
        b["copy_mix"] = m["nll"]
    return buckets


def split_positions(ckpt: Checkpoint, split: str = HELD_OUT[0], max_pieces: int | None = REPORT_PIECES) -> dict:
    """position_report of an event-token checkpoint on a split of its prepared data."""
    rows, index = open_split(Path(ckpt.config.data), split)
    return position_report(ckpt.model, rows, index, max_pieces=max_pieces)
