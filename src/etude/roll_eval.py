"""Likelihood and accuracy of piano-roll models on whole pieces, as the polyphonic benchmark
measures them: frame-level NLL in nats (summed over the 88 keys, averaged over frames) and the
frame accuracy of Bay, Ehmann & Downie (ISMIR 2009)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from etude.config import AIS

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # frames (B, T + 1, K), mask (B, T + 1), genre (B,)


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


def marginal_log_probs(rows: np.ndarray) -> torch.Tensor:
    """log p(key off), log p(key on) per key from add-one smoothed training frequencies: (2, K).
    The benchmark's floor: every frame drawn from these independent per-key marginals."""
    on = (np.asarray(rows, dtype=np.float64).sum(0) + 1) / (len(rows) + 2)
    return torch.from_numpy(np.log(np.stack([1 - on, on]))).float()


def frame_accuracy(tp: float, fp: float, fn: float) -> float:
    """Bay et al. (2009) frame accuracy: TP / (TP + FP + FN), counts summed over all frames and
    keys; nan when all three are 0."""
    total = tp + fp + fn
    return tp / total if total else math.nan


@torch.no_grad()
def evaluate_rolls(
    model, batches, device: torch.device | str = "cpu", ais: AIS | None = None, marginal: torch.Tensor | None = None
) -> dict[str, float]:
    """Frame NLL (nats, mean over scored frames), frame accuracy of the model's most likely next
    frame, and with `marginal` the floor's NLL on the same frames. RBM-family models need `ais`."""
    model.eval()
    nll_sum = floor_sum = 0.0
    frames_scored = frames_total = 0
    tp = fp = fn = 0.0
    kw = {"ais": ais} if ais is not None else {}
    for frames, mask, genre in batches:
        frames, mask, genre = frames.to(device), mask.to(device), genre.to(device)
        nll = model.frame_nll(frames, mask, genre, **kw).cpu()  # (B, T), nan where not scored
        real = mask[:, 1:].cpu()
        scored = real & ~torch.isnan(nll)
        nll_sum += float(nll[scored].sum())
        frames_scored += int(scored.sum())
        frames_total += int(real.sum())
        target = frames[:, 1:].cpu()
        pred = model.predict(frames, genre).cpu()
        m = real[..., None]
        tp += float((pred * target * m).sum())
        fp += float((pred * (1 - target) * m).sum())
        fn += float(((1 - pred) * target * m).sum())
        if marginal is not None:
            floor_sum -= float((marginal[1] * target + marginal[0] * (1 - target))[scored].sum())
    model.train()
    out = {
        "loss": nll_sum / frames_scored if frames_scored else math.nan,
        "accuracy": frame_accuracy(tp, fp, fn),
        "frames": frames_total,
        "frames_scored": frames_scored,
    }
    if marginal is not None:
        out["marginal_loss"] = floor_sum / frames_scored if frames_scored else math.nan
    return out
