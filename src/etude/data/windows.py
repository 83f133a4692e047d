"""Batches of a prepared split: training windows inside pieces, and whole pieces for scoring.

Event tokens: windows of seq_len + 1 tokens give inputs and next-token targets. Piano rolls:
windows (or whole pieces) of frames with a mask of real frames; row 0 of a whole piece is the
silent frame before it, so the piece's first frame is a target too.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # frames (B, T + 1, K), mask (B, T + 1), genre (B,)


class Windows:
    """Windows of seq_len + 1 rows taken inside pieces (never across two), padded when short.

    Event tokens give batches (x, y, genre): inputs and next-token targets (B, T) and (B,).
    Piano rolls (`roll=True`) give (frames (B, T + 1, 88) float, mask (B, T + 1) of real frames,
    genre (B,)); with `lead`, a window may start at the silent frame before its piece (row -1),
    so each piece's first frame is a target too.
    """

    def __init__(
        self,
        rows: np.ndarray,
        index: np.ndarray,
        seq_len: int,
        pad_id: int = 0,
        roll: bool = False,
        lead: bool = True,
        transpose: int = 0,
        start_share: float = 0.0,
    ):
        self.rows, self.index, self.seq_len, self.pad_id = rows, index, seq_len, pad_id
        self.roll, self.first = roll, -1 if roll and lead else 0
        self.transpose = transpose if roll else 0  # random batches: each window shifted by -transpose..transpose keys
        self.start_share = start_share  # random batches: share of windows that begin at their piece's start
        lengths = index[:, 1].astype(np.float64)
        self.weights = np.maximum(lengths - 1, 1) / np.maximum(lengths - 1, 1).sum()

    def _window(self, piece: int, offset: int) -> np.ndarray:
        """Rows offset .. offset + seq_len of a piece (row -1: silent), pad_id/zeros past its end."""
        start, length, _ = (int(v) for v in self.index[piece])
        w = np.full(
            (self.seq_len + 1, self.rows.shape[1]),
            0 if self.roll else self.pad_id,
            dtype=np.float32 if self.roll else np.int64,
        )
        skip = max(0, -offset)  # the silent row before the piece
        take = min(self.seq_len + 1 - skip, length - offset - skip)
        w[skip : skip + take] = self.rows[start + offset + skip : start + offset + skip + take]
        return w

    def _tensors(self, spots: list[tuple[int, int]]):
        windows = np.stack([self._window(p, o) for p, o in spots])
        genres = torch.tensor([int(self.index[p, 2]) for p, _ in spots], dtype=torch.long)
        if self.roll:
            pos = np.arange(self.seq_len + 1)[None, :] + np.array([o for _, o in spots])[:, None]  # (B, T + 1)
            lengths = self.index[[p for p, _ in spots], 1][:, None]
            return torch.from_numpy(windows), torch.from_numpy((pos >= 0) & (pos < lengths)), genres
        w = torch.from_numpy(windows[..., 0])
        return w[:, :-1], w[:, 1:], genres

    def random_batch(self, rng: np.random.Generator, batch_size: int, part: slice = slice(None)):
        """A batch of windows at random places (a `start_share` of them at their piece's start),
        pieces drawn by length.

        The whole batch's positions are drawn; only the windows in `part` are read, so data-parallel
        processes each read their own share of the same global batch.
        """
        pieces = rng.choice(len(self.index), size=batch_size, p=self.weights)
        rooms = np.maximum(0, self.index[pieces, 1] - self.seq_len - 1 - self.first)
        offsets = (rng.random(batch_size) * (rooms + 1)).astype(np.int64) + self.first
        if self.start_share:  # drawn only when asked, so runs without it keep their random stream
            offsets[rng.random(batch_size) < self.start_share] = self.first
        batch = self._tensors([(int(p), int(o)) for p, o in zip(pieces, offsets)][part])
        if self.transpose:
            shifts = rng.integers(-self.transpose, self.transpose + 1, batch_size)[part]
            batch = (shift_keys(batch[0], shifts), *batch[1:])
        return batch

    def batch(self, seed: int, it: int, batch_size: int, part: slice = slice(None)):
        """Iteration `it`'s training batch of a run seeded `seed`: random windows (random_batch)."""
        return self.random_batch(np.random.default_rng([seed, it]), batch_size, part)

    def fixed_batches(self, batch_size: int, max_windows: int):
        """Consecutive windows covering every piece (evenly thinned to at most max_windows)."""
        spots = [
            (p, o)
            for p in range(len(self.index))
            for o in range(self.first, max(1, int(self.index[p, 1]) - 1), self.seq_len)
        ]
        if len(spots) > max_windows:
            spots = [spots[i] for i in np.linspace(0, len(spots) - 1, max_windows).astype(int)]
        for i in range(0, len(spots), batch_size):
            yield self._tensors(spots[i : i + batch_size])


class Lanes:
    """Event-token batches for truncated back-propagation through time (train.carry_state).

    Lane b of a batch reads whole pieces one after another, each in order, window after window of
    seq_len + 1 tokens: a window's last token is the next one's first input, so a lane's inputs
    run on without a gap, and its model state can be carried from one iteration to the next; a
    piece's last window is padded. Each lane draws its pieces uniformly at random with replacement
    (reading pieces whole weights every token alike), CHUNK at a time from a generator seeded by
    (seed, lane, chunk), so iteration `it`'s batch is a pure function of (seed, it) and a resumed
    run reads what the uninterrupted one read.

    Batches are (x, y, genre, fresh): inputs and next-token targets (B, T), genres (B,), and
    fresh (B,) bool, true where the window begins its piece (the lane's state starts from zeros).
    """

    CHUNK = 256  # pieces a lane draws at a time

    def __init__(self, rows: np.ndarray, index: np.ndarray, seq_len: int, pad_id: int = 0):
        self.windows = Windows(rows, index, seq_len, pad_id)
        self.index, self.seq_len = index, seq_len
        self.counts = np.maximum(1, -(-(index[:, 1].astype(np.int64) - 1) // seq_len))  # windows per piece
        self._drawn: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # (seed, lane) -> pieces, window ends

    def spot(self, seed: int, lane: int, it: int) -> tuple[int, int]:
        """(piece, offset of its window) that `lane` reads at iteration `it`."""
        pieces, ends = self._drawn.get((seed, lane), (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        while not len(ends) or ends[-1] <= it:
            chunk = np.random.default_rng([seed, lane, len(pieces) // self.CHUNK]).integers(
                0, len(self.index), self.CHUNK
            )
            base = int(ends[-1]) if len(ends) else 0
            pieces, ends = np.concatenate([pieces, chunk]), np.concatenate([ends, base + np.cumsum(self.counts[chunk])])
            self._drawn[(seed, lane)] = (pieces, ends)
        k = int(np.searchsorted(ends, it, side="right"))
        piece = int(pieces[k])
        return piece, (it - int(ends[k] - self.counts[piece])) * self.seq_len

    def batch(self, seed: int, it: int, batch_size: int, part: slice = slice(None)):
        """Iteration `it`'s batch: the windows of lanes range(batch_size)[part]."""
        spots = [self.spot(seed, lane, it) for lane in range(batch_size)[part]]
        x, y, genre = self.windows._tensors(spots)
        return x, y, genre, torch.tensor([offset == 0 for _, offset in spots])


def shift_keys(frames: torch.Tensor, shifts: np.ndarray) -> torch.Tensor:
    """Piano-roll windows (B, T, keys) each moved up by shifts[b] keys (down if negative);
    notes pushed past either end of the keyboard are dropped."""
    out = torch.zeros_like(frames)
    keys = frames.shape[-1]
    for b, s in enumerate(int(v) for v in shifts):
        if abs(s) < keys:
            out[b, :, max(s, 0) : keys + min(s, 0)] = frames[b, :, max(-s, 0) : keys - max(s, 0)]
    return out


def thin_pieces(index: np.ndarray, max_frames: int) -> np.ndarray:
    """The rows of a split's index (pieces) to score when at most `max_frames` frames are wanted:
    a fixed random choice of whole pieces (seed 0, kept in split order) whose frames fit, at
    least one; every piece when max_frames is 0 or all fit."""
    if max_frames <= 0 or int(index[:, 1].sum()) <= max_frames:
        return index
    kept, total = [], 0
    for k in np.random.default_rng(0).permutation(len(index)):
        if kept and total + int(index[k, 1]) > max_frames:
            continue
        kept.append(int(k))
        total += int(index[k, 1])
    return index[np.sort(kept)]


def piece_batches(rows: np.ndarray, index: np.ndarray, max_frames: int = 8192) -> Iterator[Batch]:
    """Whole pieces, shortest first, padded into batches of at most max_frames frames (a longer
    piece goes alone). Row 0 of each piece is the silent frame before it; the mask marks real frames."""
    order = np.argsort(index[:, 1], kind="stable")
    group: list[int] = []

    def emit(group: list[int]) -> Batch:
        T = int(max(index[k, 1] for k in group))
        frames = np.zeros((len(group), T + 1, rows.shape[1]), dtype=np.float32)
        mask = np.zeros((len(group), T + 1), dtype=bool)
        for i, k in enumerate(group):
            start, length, _ = (int(x) for x in index[k])
            frames[i, 1 : 1 + length] = rows[start : start + length]
            mask[i, 1 : 1 + length] = True
        genre = torch.tensor([int(index[k, 2]) for k in group], dtype=torch.long)
        return torch.from_numpy(frames), torch.from_numpy(mask), genre

    for k in order:
        if group and (len(group) + 1) * int(index[k, 1]) > max_frames:
            yield emit(group)
            group = []
        group.append(int(k))
    if group:
        yield emit(group)
