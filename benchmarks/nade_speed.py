"""Training speed of the NADE output (etude.models.nade) against the textbook formulation, same run.

The textbook way computes a hidden vector for each of the 88 keys of a frame (a cumulative sum of
(frames, keys, hidden) tensors); étude's computes only the m + 1 distinct ones of a frame with m
notes. Both get the same random frames with JSB-like polyphony (about 4 notes of 88), checked to
give the same logits, and are timed for forward + backward. Target (issue 4): >= 3x faster on CPU.

    python benchmarks/nade_speed.py [--frames 1000] [--hidden 150] [--notes 4] [--reps 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from etude.models.nade import NADEHead

KEYS, STATE = 88, 256


def textbook_logits(head: NADEHead, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """a_i = c + sum_{j<i} v_j W_j for every key at once: (N, K, Hn) tensors."""
    contrib = v[:, :, None] * head.W  # (N, K, Hn)
    a = head.to_c(u)[:, None, :] + contrib.cumsum(1) - contrib
    return head.to_b(u) + (torch.sigmoid(a) * head.V).sum(-1)


def seconds_per_step(logits_fn, head: NADEHead, u: torch.Tensor, v: torch.Tensor, reps: int) -> float:
    def step():
        head.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(logits_fn(u, v), v).backward()

    step()  # warm-up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--frames", type=int, default=1000, help="frames per step (a JSB batch of 16 x 128 has about 1000 real ones)"
    )
    ap.add_argument("--hidden", type=int, default=150, help="NADE hidden units")
    ap.add_argument("--notes", type=float, default=4.0, help="mean notes per frame")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()

    torch.manual_seed(0)
    head = NADEHead(STATE, KEYS, args.hidden)
    u = torch.randn(args.frames, STATE)
    v = (torch.rand(args.frames, KEYS) < args.notes / KEYS).float()
    torch.testing.assert_close(head.logits(u, v), textbook_logits(head, u, v), atol=1e-4, rtol=1e-4)

    ours = seconds_per_step(head.logits, head, u, v, args.reps)
    peer = seconds_per_step(lambda a, b: textbook_logits(head, a, b), head, u, v, args.reps)
    print(
        f"NADE forward + backward, {args.frames} frames x {KEYS} keys, {args.hidden} hidden, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"  textbook (a hidden vector per key): {peer * 1e3:8.1f} ms")
    print(f"  etude (one per note segment):       {ours * 1e3:8.1f} ms")
    ratio = peer / ours
    print(f"  speed-up {ratio:.1f}x (target >= 3x): {'met' if ratio >= 3 else 'MISSED'}")


if __name__ == "__main__":
    main()
