"""Batch-1 generation speed against the machine's limit (the numbers robots, the studio and
call-and-response feel).

1. The model step alone, for the shipped piano model (2 x 256) and the paper's 4 x 1024 (random
   weights: speed does not depend on them): plain `nn.LSTM` on one step, the model's own step
   (`lstm_cell` per layer), and the fused stepper generation runs (fp32 and int8), each beside
   the limit: the bytes of weights one step reads over this machine's bandwidth for a buffer of
   that size, measured in the same run. The ratio says how far a path is from that limit.
2. Whole generation as `etude generate` runs it (grammar, sampling, the stepper): per genre,
   tokens/s and real-time factor (music seconds per wall second) at batch 1 (fp32 and int8) and
   16 (fp32), and the 99th percentile of the time per generated event at batch 1 (what a
   performance waits for); 4 x 1024 per genre at batch 1, its music seconds counted at the
   shipped model's seconds per token in that genre. 2b: the shipped model with a memory of the
   piece (pretrained:piano-memory) at batch 1, fp32, at --seconds and at 120 s (memory fullest),
   and at 120 s following the form plan AABA (--form).
3. With --data PREPARED (e.g. a `data prepare --retime off` of the piano corpus, as the shipped
   model was trained): validation NLL at fp32 and int8 through the stepper, teacher-forced.

Targets (2 CPU cores, batch 1): shipped >= 100x real time in every genre, 4 x 1024 >= 20x,
piano-memory >= 20x, p99 per event <= 1 ms (shipped) and <= 5 ms (4 x 1024), int8 costing
< 0.01 nats/token.

    python benchmarks/generate_speed.py [--seconds 30] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from etude.config import load_preset
from etude.generation.generate import Ask, Sampling, sample_tokens
from etude.models.checkpoint import Checkpoint, load_checkpoint
from etude.models.lstm import LSTMGenerator
from etude.models.pretrained import pretrained_path


def per_call_us(fn, seconds: float = 1.0) -> float:
    """Median microseconds of fn() over ~`seconds`, after a warm-up."""
    for _ in range(20):
        fn()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e6


def bandwidth_limit_us(nbytes: int) -> float:
    """Microseconds to read `nbytes` once, from a buffer of that size read again and again (so it
    sits where weights of that size sit: L2, L3 or memory), at torch's thread count."""
    buf = torch.ones(max(1, nbytes // 4))
    return per_call_us(lambda: buf.sum(), 0.5)


def weight_bytes(model: LSTMGenerator, int8: bool) -> int:
    """Bytes of weights one generation step reads: the recurrent and upper-layer matrices and the
    head (layer 0's input gates are one row of a table); with int8 the layers' matrices are one
    byte a weight and the head stays fp32, as the stepper keeps them."""
    c = model.cfg
    n = 4 * c.hidden * c.hidden + sum(8 * c.hidden * c.hidden for _ in range(1, c.layers))
    return n * (1 if int8 else 4) + c.hidden * model.vocab_size * 4


class _OnnxStep(torch.nn.Module):
    """The model's generation step as one graph (embedding, nn.LSTM on one step, head) for export."""

    def __init__(self, model: LSTMGenerator):
        super().__init__()
        self.model = model

    def forward(self, token, genre, h, c):
        m = self.model
        x = torch.cat([m.embed(token), m.genre(genre)], -1)[:, None]  # (1, 1, E + G)
        out, (h, c) = m.lstm(x, (h, c))
        return m.head(out[:, 0]), h, c


def onnx_step(model: LSTMGenerator, folder: str, int8: bool):
    """The peer: an ONNX Runtime session of the same step (int8: ORT's own dynamic quantisation,
    QInt8 weights), as a callable that runs one step and carries the state; None without
    onnxruntime (`pip install -e '.[bench]'`)."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return None
    import logging
    import warnings

    L, H = model.cfg.layers, model.cfg.hidden
    path = os.path.join(folder, f"step-{L}x{H}.onnx")
    args = (torch.tensor([3]), torch.tensor([0]), torch.zeros(L, 1, H), torch.zeros(L, 1, H))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _OnnxStep(model).eval(),
            args,
            path,
            input_names=["token", "genre", "h", "c"],
            output_names=["logits", "h2", "c2"],
            dynamo=False,
            opset_version=17,
        )
    if int8:
        logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process, for image models
        quantize_dynamic(path, path + ".int8.onnx", weight_type=QuantType.QInt8)
        path += ".int8.onnx"
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {
        "token": np.array([3]),
        "genre": np.array([0]),
        "h": np.zeros((L, 1, H), np.float32),
        "c": np.zeros((L, 1, H), np.float32),
    }

    def step():
        _, feed["h"], feed["c"] = session.run(None, feed)

    return step


def step_rows(name: str, model: LSTMGenerator, folder: str) -> None:
    """Per-step time of each path for one model at batch 1."""
    g, tok = torch.tensor([0]), torch.tensor([3])
    x = torch.zeros(1, 1, model.lstm.input_size)
    with torch.no_grad():
        state = [None]

        def plain_lstm():
            _, state[0] = model.lstm(x, state[0])

        model_state = [None]

        def own_step():
            _, model_state[0] = model.step(tok, g, model_state[0])

        fp32, int8 = model.stepper(g), model.stepper(g, int8=True)
        fp32.prime(tok[None])
        int8.prime(tok[None])
        limit32, limit8 = (bandwidth_limit_us(weight_bytes(model, q)) for q in (False, True))
        for path, fn, limit in (
            ("nn.LSTM, one step (no head)", plain_lstm, limit32),
            ("model.step (lstm_cell)", own_step, limit32),
            ("ONNX Runtime fp32", onnx_step(model, folder, False), limit32),
            ("ONNX Runtime int8", onnx_step(model, folder, True), limit8),
            ("stepper fp32", lambda: fp32.step(tok), limit32),
            ("stepper int8", lambda: int8.step(tok), limit8),
        ):
            if fn is None:
                print(f"{name:<10} {path:<28} (not measured: pip install -e '.[bench]')")
                continue
            us = per_call_us(fn)
            print(f"{name:<10} {path:<28} {us:8.1f} us/step  limit {limit:6.1f} us  ratio {us / limit:5.2f}")


class Timed:
    """A stepper that records the wall time between successive steps: one generated event each."""

    def __init__(self, stepper):
        self.stepper, self.times, self.last = stepper, [], None

    def prime(self, x):
        out = self.stepper.prime(x)
        self.last = time.perf_counter()
        return out

    def step(self, token):
        out = self.stepper.step(token)
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now
        return out


def generation(
    ckpt: Checkpoint, genre: str, n: int, length: str, int8: bool, sampling: Sampling = Sampling()
) -> tuple[float, int, float, float]:
    """Wall seconds, tokens, music seconds and p99 seconds per event of one sample_tokens call,
    after a short call that makes the fused weights (a once-per-process cost; `prepare_seconds`)."""
    sample_tokens(ckpt, Ask(genre, n, "4t", seed=1, int8=int8))
    model, made = ckpt.model, []
    original = model.stepper

    def timed_stepper(*args, **kwargs):
        made.append(Timed(original(*args, **kwargs)))
        return made[-1]

    model.stepper = timed_stepper
    try:
        t = time.perf_counter()
        seqs = sample_tokens(ckpt, Ask(genre, n, length, sampling, seed=1, int8=int8))
        wall = time.perf_counter() - t
    finally:
        del model.stepper
    music = sum(ckpt.encoding.decode(np.array(s)).to("second").end() for s in seqs)
    return wall, sum(len(s) for s in seqs), music, float(np.percentile(made[0].times, 99))


def prepare_seconds(model: LSTMGenerator, int8: bool) -> float:
    """Seconds to make the fused (and, with int8, quantised) weights: paid by the first
    generation of a process and again after training changes the parameters."""
    model.__dict__.pop("_fused", None)
    t = time.perf_counter()
    model.stepper(torch.zeros(1, dtype=torch.long), int8=int8)
    return time.perf_counter() - t


def validation_nll(ckpt: Checkpoint, data: str, int8: bool, pieces: int = 40, tokens: int = 1024) -> float:
    """Mean NLL (nats/token) of the first `pieces` validation pieces (up to `tokens` each),
    teacher-forced through the stepper."""
    from etude.data.store import open_split

    rows, index = open_split(data, "valid")
    total, count = 0.0, 0
    with torch.no_grad():
        for start, length, genre in index[:pieces]:
            ids = torch.from_numpy(np.asarray(rows[start : start + min(length, tokens), 0], dtype=np.int64))
            stepper = ckpt.model.stepper(torch.tensor([int(genre)]), int8=int8)
            logits = stepper.prime(ids[None, :1])
            for k in range(1, len(ids)):
                total -= torch.log_softmax(logits[0], -1)[ids[k]].item()
                count += 1
                logits = stepper.step(ids[k : k + 1])
    return total / count


def memory_rows(seconds: float) -> None:
    """The shipped model with a memory of the piece (pretrained:piano-memory) at batch 1, fp32,
    per genre at `seconds` and at 120 s (its memory fills as the piece goes on), and at 120 s
    following the form plan AABA."""
    memory = load_checkpoint(pretrained_path("piano-memory"))
    print("\n2b. generation with a memory of the piece (2 x 256 + memory), fp32 batch 1")
    worst = {}
    runs = {f"{seconds:g}s": (f"{seconds:g}s", Sampling()), "120s": ("120s", Sampling())}
    runs["120s AABA"] = ("120s", Sampling(form="AABA"))
    for label, (length, sampling) in runs.items():
        for genre in memory.encoding.genres:
            wall, tokens, music, tail = generation(memory, genre, 1, length, False, sampling)
            worst[label] = min(worst.get(label, float("inf")), music / wall)
            print(f"  {label:>9} {genre:<9} {tokens / wall:7.0f} tok/s {music / wall:7.1f}x  p99 {tail * 1e3:.2f} ms")
    print(
        "piano-memory, slowest genre: "
        + ", ".join(f"{k} {v:.1f}x (target 20x: ratio {v / 20:.2f})" for k, v in worst.items())
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--data", help="a prepared folder for the int8 NLL check (skipped without)")
    a = ap.parse_args()
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f" {f}" in flags]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags: {' '.join(isa) or '?'}, "
        f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '-')} "
        f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', '-')}"
    )
    piano = load_checkpoint(pretrained_path("piano"))
    cfg = load_preset("paper")
    paper = Checkpoint(
        piano.path,
        LSTMGenerator(piano.model.vocab_size, piano.model.n_genres, cfg.model).eval(),
        cfg,
        piano.encoding,
        {},
    )
    print("\n1. one step at batch 1")
    with tempfile.TemporaryDirectory() as folder:
        step_rows("2 x 256", piano.model.eval(), folder)
        step_rows("4 x 1024", paper.model, folder)

    print(f"\n2. generation, {a.seconds:g} s per piece ({'genre':<9} batch path: tokens/s, x real time, p99 per event)")
    length, worst, worst_paper, p99 = f"{a.seconds:g}s", {}, float("inf"), {}
    for genre in piano.encoding.genres:
        for n, int8 in ((1, False), (1, True), (16, False)):
            wall, tokens, music, tail = generation(piano, genre, n, length if n == 1 else "8s", int8)
            label = f"{'int8' if int8 else 'fp32'} b{n}"
            worst[label] = min(worst.get(label, float("inf")), music / wall)
            if n == 1:
                p99[label] = max(p99.get(label, 0.0), tail)
            print(
                f"  2 x 256  {genre:<9} {label:<8} {tokens / wall:7.0f} tok/s {music / wall:7.1f}x"
                f"  p99 {tail * 1e3:.2f} ms"
            )
            if (n, int8) == (1, False):
                seconds_per_token = music / tokens
        wall, tokens, _, tail = generation(paper, genre, 1, "300t", True)
        x = tokens * seconds_per_token / wall
        worst_paper = min(worst_paper, x)
        print(f"  4 x 1024 {genre:<9} int8 b1  {tokens / wall:7.0f} tok/s {x:7.1f}x  p99 {tail * 1e3:.2f} ms")
    print(
        "\nslowest genre, x real time: "
        + ", ".join(f"{k} {v:.1f}x" for k, v in worst.items())
        + f"; 4 x 1024 int8 {worst_paper:.1f}x"
    )
    print("p99 per event: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in p99.items()))
    print(
        f"shipped model, slowest genre at batch 1: fp32 (the default) {worst['fp32 b1']:.1f}x, "
        f"int8 {worst['int8 b1']:.1f}x (target 100x: ratios {worst['fp32 b1'] / 100:.2f}, "
        f"{worst['int8 b1'] / 100:.2f}); 4 x 1024 int8: {worst_paper:.1f}x (target 20x: ratio {worst_paper / 20:.2f})"
    )
    memory_rows(a.seconds)
    for name, ckpt in (("2 x 256", piano), ("4 x 1024", paper)):
        print(
            f"making the fused weights once per process, {name}: "
            + ", ".join(
                f"{'int8' if q else 'fp32'} {prepare_seconds(ckpt.model, q) * 1e3:.0f} ms" for q in (False, True)
            )
        )
    if a.data:
        fp32, int8 = validation_nll(piano, a.data, False), validation_nll(piano, a.data, True)
        print(
            f"\n3. validation NLL: fp32 {fp32:.4f}, int8 {int8:.4f} nats/token"
            f" (int8 costs {int8 - fp32:+.4f}; limit 0.01)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
