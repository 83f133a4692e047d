"""Training speed of the LSTM generator against the machine's matrix-product peak, same run.

For the cpu and paper presets: tokens/s of full training steps (forward, backward, Adam) on
random tokens, and the achieved FLOP/s (3 x forward FLOPs per token) as a share of the peak of a
2048 x 2048 float32 matrix product measured first. Target (issue 3): paper >= 0.6 of peak on CPU.

    python benchmarks/train_speed.py [--steps 3] [--seq-len 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from etude.config import load_preset
from etude.models.lstm import LSTMGenerator

VOCAB, GENRES = 392, 5  # the built-in corpus's REMI vocabulary and genres


def matmul_peak(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def train_rate(preset: str, steps: int, seq_len: int | None, device: torch.device) -> tuple[float, float]:
    cfg = load_preset(preset)
    model = LSTMGenerator(VOCAB, GENRES, cfg.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    b, t = cfg.train.batch_size, seq_len or cfg.train.seq_len
    x = torch.randint(1, VOCAB, (b, t + 1), device=device)
    g = torch.randint(0, GENRES, (b,), device=device)

    def step():
        _, loss, _ = model(x[:, :-1], g, x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    tokens_per_s = steps * b * t / (time.perf_counter() - start)
    return tokens_per_s, tokens_per_s * 3 * model.flops_per_token()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seq-len", type=int, default=64, help="window length for the timing (default 64)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    device = torch.device(a.device)
    peak = matmul_peak(device)
    print(f"device {device}, {torch.get_num_threads()} threads; 2048^2 float32 matmul peak: {peak / 1e9:.0f} GFLOP/s")
    print(f"{'preset':<7} {'tokens/s':>10} {'GFLOP/s':>9} {'of peak':>8}")
    for preset, steps in (("cpu", a.steps * 10), ("paper", a.steps)):
        rate, flops = train_rate(preset, steps, a.seq_len, device)
        print(f"{preset:<7} {rate:10.0f} {flops / 1e9:9.1f} {flops / peak:8.2f}")
        if preset == "paper":
            print(
                f"paper: {flops / peak:.2f} of peak (target >= 0.60); 6000 iterations of 32 x 256 tokens would "
                f"take {6000 * 32 * 256 / rate / 3600:.1f} h here"
            )


if __name__ == "__main__":
    main()
