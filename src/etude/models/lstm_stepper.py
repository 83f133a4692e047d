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
  fp32 everywhere stays the default;
- with int8, runs the layers and the head as one TorchScript function (`layer_steps`): a
  quantised product called from Python costs ~10 us of dispatch beyond its arithmetic on a Xeon
  core, more than a third of a 2 x 256 step. At fp32 the products dominate and the same function
  runs as Python (TorchScript was 5-10 % slower there), as it does wherever TorchScript is
  missing or fails to compile; the results are the same either way.
The arithmetic is the model's own (the same products and gates, summed in another order), so at
fp32 the logits agree with LSTMGenerator.step to float rounding.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable, List

import torch
from torch import nn

from etude.errors import ConfigError

log = logging.getLogger(__name__)


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
            # in layer_steps's form: int8 layers packed (none at fp32); fp32 products as (in, out)
            # and biases (1, out), an empty tensor where a product is int8 or has no bias
            self.packed = [_int8(wi, bi) for wi, bi in zip(w[: self.L], b)] if int8 else []
            none = torch.empty(0, device=dev)
            self.wt = [none if int8 and i < self.L else wi.t().contiguous() for i, wi in enumerate(w)]
            self.bias = [none if bi is None else bi[None] for bi in b]


def layer_steps(
    gates: torch.Tensor,
    gate_views: List[torch.Tensor],
    cs: List[torch.Tensor],
    inputs: List[torch.Tensor],
    outputs: List[torch.Tensor],
    tmp: torch.Tensor,
    packed: List[torch.classes.quantized.LinearPackedParamsBase],
    wt: List[torch.Tensor],
    bias: List[torch.Tensor],
    top: torch.Tensor,
    logits: torch.Tensor,
) -> torch.Tensor:
    """One step of every layer and the head, in the stepper's buffers (B = batch, H = hidden):
    gates (B, 4H) holds layer 0's input part on entry; gate_views = its (i, f, o) block, i, f, o
    and the candidate; cs = each layer's c (B, H); inputs/outputs = each layer's [h_(i-1); h_i]
    and h_i, views of one buffer; packed = int8 weights of the layers (empty at fp32), wt/bias
    the fp32 (in, out) products and biases (index L: the head). Returns logits (B, V)."""
    sig, i_, f_, o_, cand = gate_views[0], gate_views[1], gate_views[2], gate_views[3], gate_views[4]
    for i in range(len(cs)):
        if len(packed) > 0:
            y = torch.ops.quantized.linear_dynamic(inputs[i], packed[i])  # (B, 4H)
            if i == 0:
                gates.add_(y)
            else:
                gates.copy_(y)
        elif i == 0:
            gates.addmm_(inputs[i], wt[i])
        else:
            torch.addmm(bias[i], inputs[i], wt[i], out=gates)
        sig.sigmoid_()  # input, forget and output gates
        cand.tanh_()  # cell candidate
        cs[i].mul_(f_).addcmul_(i_, cand)
        torch.tanh(cs[i], out=tmp)
        torch.mul(o_, tmp, out=outputs[i])
    return torch.addmm(bias[-1], top, wt[-1], out=logits)  # the head


_COMPILED: list[Callable[..., torch.Tensor]] = []


def compiled_layer_steps() -> Callable[..., torch.Tensor]:
    """layer_steps as TorchScript, compiled once per process (~0.1 s); the Python function itself
    where TorchScript is unavailable (it is deprecated in torch and may go)."""
    if not _COMPILED:
        try:
            with warnings.catch_warnings():  # its deprecation notice; the fallback covers removal
                warnings.simplefilter("ignore")
                _COMPILED.append(torch.jit.script(layer_steps))
        except Exception as e:  # any failure to compile leaves the same arithmetic in Python
            log.debug("layer_steps runs as Python: TorchScript failed (%s)", e)
            _COMPILED.append(layer_steps)
    return _COMPILED[0]


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
        gate_views = [g[:, : 3 * H], g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]]
        # per layer: its input [h_(i-1); h_i] (layer 0: h_0) and its output h_i, views of self.h
        inputs = [self.h[:, max(i - 1, 0) * H : (i + 1) * H] for i in range(L)]
        outputs = [self.h[:, i * H : (i + 1) * H] for i in range(L)]
        weights = (fused.packed, fused.wt, fused.bias)
        self.run_args = (self.gates, gate_views, self.c, inputs, outputs, self.tmp, *weights, self.top, self.logits)
        self.run = compiled_layer_steps() if fused.packed else layer_steps

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
        torch.index_select(self.fused.table, 0, self.table_rows + token, out=self.gates)  # layer 0's input part
        return self.run(*self.run_args)
