"""Likelihood of held-out music under a model, for event tokens and piano rolls alike.

Event tokens: mean negative log-likelihood in nats per token, perplexity and next-token accuracy,
beside an add-one smoothed unigram. Piano rolls, as the polyphonic benchmark measures them:
frame-level NLL in nats (summed over the 88 keys, averaged over frames) and the frame accuracy of
Bay, Ehmann & Downie (ISMIR 2009), beside the floor of independent per-key marginals. Models with
an RBM output estimate log Z by annealed importance sampling (`AIS`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from etude.config import AIS
from etude.data.corpus import HELD_OUT
from etude.data.store import open_split
from etude.data.windows import Windows, piece_batches, thin_pieces
from etude.models.base import EventModel, FrameModel
from etude.models.checkpoint import Checkpoint

REPORT_AIS = AIS(temps=500, runs=20)  # likelihood of RBM-output models in reports
REPORT_FRAMES = 4096  # piano-roll likelihood in reports: whole test pieces of at most this many frames in all


def unigram_log_probs(rows: np.ndarray, vocab_size: int, pad_id: int) -> torch.Tensor:
    """Add-one smoothed log-frequencies of the training tokens (V,): the baseline to beat."""
    counts = np.bincount(np.asarray(rows[:, 0], dtype=np.int64), minlength=vocab_size).astype(np.float64) + 1
    counts[pad_id] = 0
    logp = np.full(vocab_size, -np.inf)
    logp[counts > 0] = np.log(counts[counts > 0] / counts.sum())
    return torch.from_numpy(logp).float()


@torch.no_grad()
def token_likelihood(
    model: EventModel, batches, device: torch.device | str = "cpu", unigram: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean loss (nats/token), perplexity and next-token accuracy over non-pad targets of
    batches (x, y, genre) from `Windows`; with `unigram`, its loss on the same targets."""
    was_training = model.training
    model.eval()
    total = correct = 0
    nll = uni = 0.0
    for x, y, g in batches:
        x, y, g = x.to(device), y.to(device), g.to(device)
        logits, _, _ = model(x, g)  # (B, T, V)
        mask = y != model.pad_id
        logp = torch.log_softmax(logits.float(), -1)
        nll -= logp.gather(-1, y[..., None])[..., 0][mask].sum().item()
        correct += (logits.argmax(-1) == y)[mask].sum().item()
        total += mask.sum().item()
        if unigram is not None:
            uni -= unigram.to(device)[y[mask]].sum().item()
    model.train(was_training)  # the caller's mode back
    if total == 0:
        return {"loss": math.nan, "perplexity": math.nan, "accuracy": math.nan}
    out = {"loss": nll / total, "perplexity": math.exp(nll / total), "accuracy": correct / total, "tokens": total}
    if unigram is not None:
        out["unigram_loss"] = uni / total
        out["unigram_perplexity"] = math.exp(uni / total)
    return out


def marginal_log_probs(rows: np.ndarray) -> torch.Tensor:
    """log p(key off), log p(key on) per key from add-one smoothed training frequencies: (2, K).
    The benchmark's floor: every frame drawn from these independent per-key marginals."""
    on = (np.asarray(rows, dtype=np.float64).sum(0) + 1) / (len(rows) + 2)
    return torch.from_numpy(np.log(np.stack([1 - on, on]))).float()


def marginal_floor_nll(train_rows: np.ndarray, test_rows: np.ndarray) -> float:
    """NLL (nats per frame) of every test frame under the per-key marginals fitted on train."""
    logp = marginal_log_probs(train_rows).numpy()
    t = np.asarray(test_rows, dtype=np.float64)
    return float(-(t * logp[1] + (1 - t) * logp[0]).sum() / max(len(t), 1))


def frame_accuracy(tp: float, fp: float, fn: float) -> float:
    """Bay et al. (2009) frame accuracy: TP / (TP + FP + FN), counts summed over all frames and
    keys; nan when all three are 0."""
    total = tp + fp + fn
    return tp / total if total else math.nan


@torch.no_grad()
def frame_likelihood(
    model: FrameModel,
    batches,
    device: torch.device | str = "cpu",
    ais: AIS | None = None,
    marginal: torch.Tensor | None = None,
) -> dict[str, float]:
    """Frame NLL (nats, mean over scored frames), frame accuracy of the model's most likely next
    frame, and with `marginal` the floor's NLL on the same frames. `ais` sets the estimate of
    log Z for models whose likelihood is estimated (their default when None)."""
    was_training = model.training
    model.eval()
    nll_sum = floor_sum = 0.0
    frames_scored = frames_total = 0
    tp = fp = fn = 0.0
    for frames, mask, genre in batches:
        frames, mask, genre = frames.to(device), mask.to(device), genre.to(device)
        nll = model.frame_nll(frames, mask, genre, ais).cpu()  # (B, T), nan where not scored
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
    model.train(was_training)  # the caller's mode back
    out = {
        "loss": nll_sum / frames_scored if frames_scored else math.nan,
        "accuracy": frame_accuracy(tp, fp, fn),
        "frames": frames_total,
        "frames_scored": frames_scored,
    }
    if marginal is not None:
        out["marginal_loss"] = floor_sum / frames_scored if frames_scored else math.nan
    return out


def split_likelihood(ckpt: Checkpoint, split: str = HELD_OUT[0]) -> dict:
    """A checkpoint's likelihood on a split of its prepared data: nats per token (at most 512
    windows) or per frame (whole pieces of at most REPORT_FRAMES frames, RBM outputs by REPORT_AIS)."""
    rows, index = open_split(Path(ckpt.config.data), split)
    if len(index) == 0:
        return {"problem": f"no {split} pieces"}
    model = ckpt.model
    if model.unit == "frame":
        batches = piece_batches(rows, thin_pieces(index, REPORT_FRAMES))
        m = frame_likelihood(model, batches, ais=REPORT_AIS if model.estimated_likelihood else None)
        return {"test_nll_nats_per_frame": m["loss"], "frame_accuracy": m["accuracy"], "frames": m["frames_scored"]}
    batches = Windows(rows, index, ckpt.config.train.seq_len, model.pad_id).fixed_batches(32, 512)
    m = token_likelihood(model, batches, next(model.parameters()).device)
    return {"test_nll_nats_per_token": m["loss"], "test_perplexity": m["perplexity"], "tokens": m["tokens"]}
