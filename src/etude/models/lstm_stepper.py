"""LSTMStepper: an LSTMGenerator's generation step, fused for small batches on the CPU.

A step of the plain model (LSTMGenerator.step) embeds the token, concatenates the genre, and runs
each layer as `torch.lstm_cell` (two matrix products and the gates), then the head: at batch 1 on
a CPU most of that time is allocation and dispatch, not arithmetic. The stepper instead
- looks layer 0's input gates up in a table made once per genre: table[g][t] = W_ih0 [embed(t);
  genre(g)] + b_ih0 + b_hh0, (V, 4H), so layer 0 multiplies only its recurrent weights;
- runs every other layer as one product of [x; h] with [W_ih W_hh] (4H, 2H);
- writes every result into buffers made once, so a step allocates (almost) nothing;
- optionally keeps each layer's product weights as int8 (dynamic quantisation, per output
  channel, fbgemm/qnnpack), reading a quarter of the bytes per step; the head stays fp32, and
  fp32 everywhere stays the default.
The arithmetic is the model's own (the same products and gates, summed in another order), so at
fp32 the logits agree with LSTMGenerator.step to float rounding.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from etude.errors import ConfigError

_LINEAR_INT8 = torch.ops.quantized.linear_dynamic.default  # x (B, in) float, packed weights -> (B, out) float


def _int8(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """fbgemm/qnnpack's packed int8 form of a linear layer's weight (out, in), per-channel scales."""
    w = weight.detach().float().contiguous()
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
    with warnings.catch_warnings():  # torch marks quantised tensors as deprecated (docs/generation.md)
        warnings.simplefilter("ignore", UserWarning)
        q = torch.quantize_per_channel(w, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(q, None if bias is None else bias.detach().float())


class FusedLSTM:
    """An LSTMGenerator's weights in the stepper's form, made once (LSTMGenerator.stepper keeps
    them until a parameter changes): the layer-0 input table of every genre (G, V, 4H), the other
    products as fp32 (in, out) matrices or int8 packed weights, and the head."""

    def __init__(self, embed: nn.Embedding, genre: nn.Embedding | None, lstm: nn.LSTM, head: nn.Linear, int8: bool):
        dev = lstm.weight_hh_l0.device
        if int8 and (dev.type != "cpu" or not torch.backends.quantized.supported_engines):
            raise ConfigError("int8 generation runs on the CPU with a quantised engine (fbgemm or qnnpack)")
        self.embed, self.genre, self.lstm, self.int8, self.device = embed, genre, lstm, int8, dev
        self.H, self.L, self.V = lstm.hidden_size, lstm.num_layers, head.out_features
        # gate rows reordered from torch's (input, forget, candidate, output) to (input, forget,
        # output, candidate): the three sigmoid gates are then one contiguous block, one op
        H = self.H
        order = torch.cat([torch.arange(2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)]).to(dev)
        with torch.no_grad():
            w_ih0, E = lstm.weight_ih_l0.detach().float(), embed.embedding_dim
            table = embed.weight.detach().float() @ w_ih0[:, :E].t() + lstm.bias_ih_l0 + lstm.bias_hh_l0  # (V, 4H)
            if genre is not None:
                table = table[None] + (genre.weight.detach().float() @ w_ih0[:, E:].t())[:, None]  # (G, V, 4H)
            self.table = table.reshape(-1, 4 * H)[:, order].contiguous()  # (G * V, 4H): row genre * V + token
            w = [lstm.weight_hh_l0.detach().float()[order]]
            b: list[torch.Tensor | None] = [None]
            for i in range(1, self.L):
                w.append(
                    torch.cat([getattr(lstm, f"weight_ih_l{i}"), getattr(lstm, f"weight_hh_l{i}")], 1).float()[order]
                )
                b.append((getattr(lstm, f"bias_ih_l{i}") + getattr(lstm, f"bias_hh_l{i}")).float()[order])
            w.append(head.weight.detach().float())
            b.append(head.bias.detach().float())
            # int8 for the recurrent products only: the head (V x H) is small, and quantising its
            # input each call costs more than its int8 read saves (2.4x slower at 256 x 400, 1.2x
            # at 1024 x 400 on 2 Xeon cores; benchmarks/generate_speed.py)
            self.packed = [_int8(wi, bi) if int8 and i < self.L else None for i, (wi, bi) in enumerate(zip(w, b))]
            self.wt = [None if p is not None else wi.t().contiguous() for p, wi in zip(self.packed, w)]
            self.bias = [None if bi is None else bi[None] for bi in b]

    def product(self, i: int, x: torch.Tensor, out: torch.Tensor, add: bool) -> torch.Tensor:
        """x @ (layer i's weights; i = L: the head) + its bias, into `out` (added to it with `add`)."""
        if self.packed[i] is not None:
            y = _LINEAR_INT8(x, self.packed[i])
            return out.add_(y) if add else out.copy_(y)
        if add:
            return out.addmm_(x, self.wt[i])
        return torch.addmm(self.bias[i], x, self.wt[i], out=out)


class LSTMStepper:
    """Steps of one batch of sequences: `prime` with the prefix, then `step` token by token.

    fused: the model's weights (FusedLSTM); genres: (B,) genre ids. Logits come back as a (B, V)
    float32 tensor that the next step overwrites; `top` (B, H) is the top layer's output."""

    def __init__(self, fused: FusedLSTM, genres: torch.Tensor):
        B, H, L, dev = len(genres), fused.H, fused.L, fused.device
        self.fused, self.genres, self.H, self.L = fused, genres.to(dev), H, L
        rows = self.genres if fused.genre is not None else torch.zeros_like(self.genres)
        self.table_rows = rows * fused.V  # (B,) each row's block of the input table
        # buffers: every layer's h side by side, so that layer i's input [h_(i-1); h_i] is one
        # slice of them and a layer's output is written once; c per layer, gates, logits
        self.h = torch.zeros(B, L * H, device=dev)
        self.c = [torch.zeros(B, H, device=dev) for _ in range(L)]
        self.gates = torch.empty(B, 4 * H, device=dev)
        self.tmp = torch.empty(B, H, device=dev)
        self.logits = torch.empty(B, fused.V, device=dev)
        self.top = self.h[:, (L - 1) * H :]
        g = self.gates  # views made once: the sigmoid gates (i, f, o) as one block and apart, the candidate
        self.gate_views = (g[:, : 3 * H], g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :])
        # per layer: its input [h_(i-1); h_i] (layer 0: h_0) and its output h_i, views of self.h
        self.layer_views = [
            (self.h[:, max(i - 1, 0) * H : (i + 1) * H], self.h[:, i * H : (i + 1) * H]) for i in range(L)
        ]

    def reset(self) -> None:
        """Back to the zero state."""
        for t in (self.h, *self.c):
            t.zero_()

    @torch.no_grad()
    def prime(self, x: torch.Tensor) -> torch.Tensor:
        """Start from the zero state and step through the prefix x (B, T): the logits after it.
        (Stepping, not nn.LSTM over the prefix: its first call at a new shape costs tens of ms
        in oneDNN's set-up, more than a prefix of a few tokens takes to step.)"""
        self.reset()
        for k in range(x.shape[1]):
            logits = self.step(x[:, k])
        return logits

    @torch.no_grad()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        """token (B,) -> logits (B, V) of the next token."""
        gates, f = self.gates, self.fused
        sig, i_, f_, o_, cand = self.gate_views
        torch.index_select(f.table, 0, self.table_rows + token, out=gates)  # layer 0's input part
        for i, (c, (x, h)) in enumerate(zip(self.c, self.layer_views)):
            f.product(i, x, gates, add=i == 0)
            sig.sigmoid_()  # input, forget and output gates
            cand.tanh_()  # cell candidate
            c.mul_(f_).addcmul_(i_, cand)
            torch.tanh(c, out=self.tmp)
            torch.mul(o_, self.tmp, out=h)
        return f.product(self.L, self.top, self.logits, add=False)  # the head
