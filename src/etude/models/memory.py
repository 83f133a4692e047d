"""MemoryLSTM: the LSTM generator with a memory of the piece it reads or writes.

The memory is a neural cache (Grave, Joulin & Usunier, "Improving neural language models with a
continuous cache", ICLR 2017) over the LSTM's own top-layer outputs in the same piece: each past
output h_i is kept with the token that followed it, x_{i+1}, and the next token is drawn from

    p(w | t) = (1 - lam_t) p_lstm(w | h_t) + lam_t p_mem(w | t),
    p_mem(w | t) = sum over i < t with x_{i+1} = w of softmax_i((Q h_t) . (K h_i)),

so a passage that has been heard before makes its continuation likely again: music that comes
back. Grave et al. score with theta * h_t . h_i and fix theta and lambda; here the look-up has
learned query and key maps Q, K (H x H, both starting at sqrt(theta) I, which is their cache), and
lam_t is a learned gate of h_t (sigmoid(g . h_t + b)) that, like the sentinel of a
pointer-sentinel mixture (Merity et al. 2017), decides how much to copy; Q, K and the gate start
from the model settings (`memory_theta`, `memory_lambda`) and train with the LSTM. Music repeats
at distances counted in bars (phrases of 4 and 8, strains of 16), so each score also gets a
learned bias by the number of bars between t and i (0 .. MAX_BAR_LAG, one more for further back;
REMI's Bar tokens count them; 0 at the start; encodings without bars have one bucket). The memory holds the last
`memory_size` positions of the piece being read or written (its primer included), never the
training set.

The forward pass returns log-probabilities of the mixture in place of logits (softmax leaves them
as they are, so sampling, masks and the losses read them unchanged).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from etude.config import ModelConfig
from etude.models.form_plan import FormPlan, LeadIn
from etude.models.lstm import LSTMGenerator
from etude.models.lstm_stepper import LSTMStepper
from etude.models.section_copy import SectionCopy

MAX_BAR_LAG = 16  # bar distances with a bias of their own; further back shares one
BAR_BIAS_SCALE = 10.0  # the bias is kept divided by this: Adam moves it 10 x faster than a weight
# following a form plan, in a section that comes back: added to the copy gate's log-odds (6: a
# gate of 0.3 becomes 0.99), and to the look-up's scores of keys exactly the section's distance
# back (their bar, not its neighbours); chosen on the validation split, the one pair of those
# tried that met every form aim there (docs/generation.md says how)
FORM_RECALL = 6.0
FORM_FOCUS = 6.0
# ...and in a new section, added to the gate (-2: 0.3 becomes 0.05), so that new music is new:
# chosen on the validation split (more pitches, overlapped areas and adherence; the form holds)
FORM_NOVELTY = -2.0
# ...and with a copy pointer (etude.models.section_copy: encodings with bars and positions), added
# to the score of the one entry it points at, on top of FORM_FOCUS: the look-up then reads that
# entry alone (its weight e^12 times any other's in the bar)
SECTION_POINTER = 12.0

# (keys (B, N, H): K h_i of past top-layer outputs, values (B, N): the token after each, bars
# (B, N): the bar count at each, pending (B, H): the last output's key, whose token the next
# call brings, bar (B,): the bar count at the last input)
Memory = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class PieceMemory(nn.Module):
    """The memory's learned parts: the query and key maps of the look-up, and the gate lam_t."""

    def __init__(self, hidden: int, theta: float, lam: float, size: int, pad_id: int):
        super().__init__()
        self.query, self.key = nn.Linear(hidden, hidden, bias=False), nn.Linear(hidden, hidden, bias=False)
        for m in (self.query, self.key):
            nn.init.eye_(m.weight)
            m.weight.data.mul_(math.sqrt(theta))
        self.gate = nn.Linear(hidden, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, math.log(lam / (1 - lam)))
        self.bar_bias = nn.Parameter(torch.zeros(MAX_BAR_LAG + 2))  # by bars back, 0 .. MAX_BAR_LAG + 1, scaled
        self.size, self.pad_id = size, pad_id

    def read(
        self,
        h: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        lag: torch.Tensor,
        visible: torch.Tensor | None = None,
        recall: float | torch.Tensor = 0.0,
        phrasing: float = 1.0,
        focus: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What each output h (B, T, H) of the LSTM recalls: weights over the keys (B, T, N) (the
        rows of one that can read nothing are 0) and the gate lam (B, T, 1) (0 for those).
        keys (B, N, H) (`key` of past outputs) and values (B, N): the memory; lag (B, T, N): bars
        from each key to each output (>= 0 where visible); visible (B or 1, T, N) bool: which
        keys each output may read (None: all). Padded values are never read. Sampling's settings
        (as trained: 0 and 1): recall (a number, or (B, 1, 1) a row) is added to the gate's
        log-odds, and phrasing multiplies the bar-distance bias; a form plan's focus (B, T, N)
        is added to the scores."""
        readable = (values != self.pad_id)[:, None, :]  # (B, 1, N)
        visible = readable if visible is None else visible & readable
        scores = torch.bmm(self.query(h), keys.transpose(1, 2))  # (B, T, N)
        scores = scores + phrasing * BAR_BIAS_SCALE * self.bar_bias[lag.clamp(0, MAX_BAR_LAG + 1)]
        if focus is not None:
            scores = scores + focus
        weights = torch.softmax(scores.masked_fill(~visible, -math.inf), -1).nan_to_num(0.0)
        lam = torch.sigmoid(self.gate(h) + recall) * visible.any(-1, keepdim=True)  # (B, T, 1)
        return weights, lam

    @staticmethod
    def mix(logits: torch.Tensor, weights: torch.Tensor, lam: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """log p of the mixture (B, T, V) from the LSTM's logits (B, T, V) and `read`'s recall."""
        p_mem = torch.zeros_like(logits, dtype=weights.dtype)
        p_mem.scatter_add_(2, values[:, None, :].expand(-1, weights.shape[1], -1), weights)
        p = (1 - lam) * torch.softmax(logits.float(), -1) + lam * p_mem
        return torch.log(p.clamp_min(1e-30))

    def remember(self, keys, values, bars, pending: torch.Tensor, bar: torch.Tensor) -> Memory:
        """The memory kept for the next call: its last `size` entries."""
        return keys[:, -self.size :], values[:, -self.size :], bars[:, -self.size :], pending, bar


class MemoryLSTM(LSTMGenerator):
    """LSTMGenerator + PieceMemory; the same interface, state (h, c, Memory) carried by callers
    that read a piece in chunks (etude.evaluation.position) and kept inside its stepper."""

    remembers_piece = True
    carries_state = False  # its memory of one lane cannot be reset alone

    def __init__(
        self,
        vocab_size: int,
        n_genres: int,
        cfg: ModelConfig,
        pad_id: int = 0,
        bar_id: int | None = None,
        vocab: list[str] | None = None,
    ):
        super().__init__(vocab_size, n_genres, cfg, pad_id)
        self.memory = PieceMemory(cfg.hidden, cfg.memory_theta, cfg.memory_lambda, cfg.memory_size, pad_id)
        self.bar_id = -1 if bar_id is None else bar_id  # the token that starts a bar (-1: none)
        # token names by id, for a form plan's copy pointer (None, or no bars and positions: none)
        self.vocab = vocab if vocab is not None and SectionCopy.possible(vocab) else None

    def _recall(self, x: torch.Tensor, genre: torch.Tensor, state) -> tuple:
        """The LSTM's logits (B, T, V) for x (B, T), what each position recalls (weights, lam),
        the memory's values (B, N), and the state after x. x's first token follows the state's
        pending output; output t is followed by input t + 1."""
        lstm_state, memory = (None, None) if state is None else (state[:2], state[2])
        query, lstm_state = self.outputs(x, genre, lstm_state)  # (B, T, H)
        logits = self.head(self.drop(query))  # (B, T, V)
        T = x.shape[1]
        new_keys = self.memory.key(query)  # (B, T, H)
        bar = torch.zeros_like(x[:, 0]) if memory is None else memory[4]  # (B,)
        bars = bar[:, None] + (x == self.bar_id).cumsum(1)  # (B, T): bar count at each input
        keys, values, key_bars = [new_keys[:, :-1]], [x[:, 1:]], [bars[:, :-1]]
        if memory is not None:  # the past, with its pending output followed by x's first token
            old_keys, old_values, old_bars, pending, _ = memory
            keys = [old_keys, pending[:, None], *keys]
            values, key_bars = [old_values, x[:, :1], *values], [old_bars, bar[:, None], *key_bars]
        keys, values, key_bars = torch.cat(keys, 1), torch.cat(values, 1), torch.cat(key_bars, 1)  # (B, N, ...)
        n_old = keys.shape[1] - (T - 1)
        j = torch.arange(keys.shape[1], device=x.device)
        visible = (j[None, :] < n_old + torch.arange(T, device=x.device)[:, None])[None]  # (1, T, N): j - n_old < t
        weights, lam = self.memory.read(query, keys, values, bars[:, :, None] - key_bars[:, None, :], visible)
        memory = self.memory.remember(keys.detach(), values, key_bars, new_keys[:, -1].detach(), bars[:, -1])
        return logits, weights, lam, values, (*lstm_state, memory)

    def forward(self, x, genre, targets=None, state=None):
        """As LSTMGenerator.forward, with log-probabilities of the mixture in place of logits
        (B, T, V) and the memory in the state (h, c, Memory)."""
        logits, weights, lam, values, state = self._recall(x, genre, state)
        logp = self.memory.mix(logits, weights, lam, values)
        loss = None
        if targets is not None:
            loss = F.nll_loss(logp.reshape(-1, self.vocab_size), targets.reshape(-1), ignore_index=self.pad_id)
        return logp, loss, state

    def objective(self, x: torch.Tensor, y: torch.Tensor, genre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's NLL summed over non-pad targets y (B, T), and their count; only the
        targets' probabilities are formed (no (B, T, V) recall)."""
        logits, weights, lam, values, _ = self._recall(x, genre, None)
        p_lstm = torch.softmax(logits.float(), -1).gather(-1, y[..., None])  # (B, T, 1)
        p_mem = (weights * (values[:, None, :] == y[..., None])).sum(-1, keepdim=True)  # (B, T, 1)
        nll = -torch.log(((1 - lam) * p_lstm + lam * p_mem).clamp_min(1e-30))[..., 0]
        mask = y != self.pad_id
        return nll[mask].sum(), mask.sum()

    @torch.no_grad()
    def step(self, token, genre, state=None):
        """One generation step (token, genre (B,) -> log p (B, V), state), through forward."""
        logp, _, state = self(token[:, None], genre, state=state)
        return logp[:, 0], state

    def stepper(
        self,
        genres: torch.Tensor,
        int8: bool = False,
        recall: float = 0.0,
        phrasing: float = 1.0,
        form: FormPlan | None = None,
    ) -> MemoryStepper:
        lstm = super().stepper(genres, int8)
        pointer, lead_in = None, None
        if form and self.vocab:
            pointer, lead_in = SectionCopy(self.vocab, len(genres), SECTION_POINTER), LeadIn(self.vocab)
        return MemoryStepper(lstm, self.memory, self.bar_id, recall, phrasing, form, pointer, lead_in)


class MemoryStepper:
    """The fused LSTM steps (LSTMStepper) with the memory of the piece so far kept beside them:
    each step appends the previous output with the token that followed it, then mixes, with
    sampling's `recall` and `phrasing` (PieceMemory.read). With a form plan, a section that comes
    back copies from its first statement (FormPlan.copy_lag): FORM_RECALL more on the gate,
    FORM_FOCUS more on the keys exactly that many bars back, and, with a `pointer` (SectionCopy),
    SECTION_POINTER more on the one key in step with the bar being written; a new section has
    FORM_NOVELTY on the gate (it copies less). With `lead_in` (LeadIn), a row whose first bar is a
    lead-in (a pickup) counts the plan's bars from its second, decided at bar 2's first token
    after its bar token (its time signature, where the encoding writes one)."""

    def __init__(
        self,
        lstm: LSTMStepper,
        memory: PieceMemory,
        bar_id: int,
        recall: float = 0.0,
        phrasing: float = 1.0,
        form: FormPlan | None = None,
        pointer: SectionCopy | None = None,
        lead_in: LeadIn | None = None,
    ):
        self.lstm, self.memory, self.bar_id = lstm, memory, bar_id
        self.recall, self.phrasing, self.form, self.pointer, self.lead_in = recall, phrasing, form, pointer, lead_in
        B, H = lstm.genres.shape[0], lstm.H
        dev = lstm.genres.device
        self.keys = torch.zeros(B, memory.size, H, device=dev)
        self.values = torch.zeros(B, memory.size, dtype=torch.long, device=dev)
        self.bars = torch.zeros(B, memory.size, dtype=torch.long, device=dev)  # the bar count at each key
        self.bar = torch.zeros(B, dtype=torch.long, device=dev)  # the bar count at the last input
        self.lead = torch.zeros(B, dtype=torch.long, device=dev)  # 1 where the first bar is a lead-in
        self.lead_known = torch.zeros(B, dtype=torch.bool, device=dev)  # ... decided (at bar 2)
        self.lead_pending = lead_in is not None  # some row's lead-in not yet decided
        self.n, self.has_pending = 0, False
        self.top = lstm.top  # (B, H): the top layer's output, overwritten by each step
        # a form plan's choice for the current bar, worked out at its bar token: bars back to copy
        # from (B, 1, 1; 0: a new section; None: to work out), the gate's bias (B, 1, 1), and the
        # bar each row copies (B,) for the pointer
        self.back: torch.Tensor | None = None
        self.form_recall: torch.Tensor | None = None
        self.source = None
        self.host = (self.values.numpy(), self.bars.numpy()) if dev.type == "cpu" else None  # for the pointer

    @torch.no_grad()
    def prime(self, x: torch.Tensor) -> torch.Tensor:
        """Forget the memory, then step through x (B, T): log p (B, V) of the token after it."""
        self.n, self.has_pending, self.back = 0, False, None
        self.bar.zero_()
        self.lead.zero_()
        self.lead_known.zero_()
        self.lead_pending = self.lead_in is not None
        self.lstm.reset()
        if self.pointer is not None:
            self.pointer.reset()
        for k in range(x.shape[1]):
            logp = self.step(x[:, k])
        return logp

    @torch.no_grad()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        """token (B,) -> log p (B, V) of the next token."""
        if self.has_pending:
            if self.n == self.memory.size:  # full: keep the newer half (a copy every size/2 steps)
                half = self.memory.size // 2
                for kept in (self.keys, self.values, self.bars):
                    kept[:, :half] = kept[:, -half:].clone()
                self.n, self.back = half, None
                if self.pointer is not None:
                    self.pointer.shift(self.memory.size - half)
            self.keys[:, self.n] = self.memory.key(self.top)
            self.values[:, self.n], self.bars[:, self.n] = token, self.bar
            self.n += 1
        new_bar = token == self.bar_id
        self.bar += new_bar
        logits = self.lstm.step(token)
        self.has_pending = True
        query, values = self.top[:, None], self.values[:, : self.n]  # (B, 1, H), (B, N)
        lag = (self.bar[:, None] - self.bars[:, : self.n])[:, None]  # (B, 1, N)
        recall, focus = self.recall, None
        if self.form is not None:
            if self.lead_pending:
                self._find_lead_in(token, (self.bar == 2) & ~new_bar & ~self.lead_known)
            if self.back is None or bool(new_bar.any()):  # the plan's choice holds for a bar
                self.back = self.form.copy_lag(self.bar - self.lead, lag)  # (B, 1, 1): 0 in a new section
                self.form_recall = self.recall + torch.where(self.back > 0, FORM_RECALL, FORM_NOVELTY)
                if self.pointer is not None:  # the bar each row copies (0: none), for the pointer
                    rows_back = self.back[:, 0, 0]
                    self.source = torch.where(rows_back > 0, self.bar - rows_back, 0).cpu().numpy()
            back, recall = self.back, self.form_recall
            focus = FORM_FOCUS * ((lag == back) & (back > 0))  # (B, 1, N): the bar this one copies
            if self.pointer is not None:
                focus = self._point(token, focus)
        weights, lam = self.memory.read(query, self.keys[:, : self.n], values, lag, None, recall, self.phrasing, focus)
        return self.memory.mix(logits[:, None], weights, lam, values)[:, 0]

    def _memory_on_host(self) -> tuple:
        """The memory's tokens and bar counts (B, N) as NumPy arrays (views on the CPU)."""
        return self.host if self.host else tuple(t.cpu().numpy() for t in (self.values, self.bars))

    def _find_lead_in(self, token: torch.Tensor, rows: torch.Tensor) -> None:
        """For the rows marked in `rows` (B,) bool, at bar 2's token `token` (B,) after its bar
        token: whether their first bar was a lead-in (LeadIn, from the memory's tokens of bar 1).
        Where one was, the plan's choice for this bar is worked out again."""
        if not bool(rows.any()):
            return
        values, bars = self._memory_on_host()
        for b in torch.nonzero(rows).flatten().tolist():
            lead = int(self.lead_in(values[b, : self.n][bars[b, : self.n] == 1], int(token[b])))
            if lead:
                self.lead[b], self.back = lead, None
        self.lead_known |= rows
        self.lead_pending = not bool(self.lead_known.all())

    def _point(self, token: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
        """The copy pointer moved after `token` (B,), and SECTION_POINTER added to the focus
        (B, 1, N) of the entry it points at. (SectionCopy works in NumPy: on the CPU its arrays
        are views of the memory's, made once, since each call here costs microseconds.)"""
        n, tokens = self.n, token.cpu().numpy()
        values, bars = self._memory_on_host()
        self.pointer.follow(tokens, values[:, :n], bars[:, :n], self.source, tokens == self.bar_id)
        if n == 0:
            return focus
        p, dev = self.pointer, focus.device
        return focus.scatter_add_(2, p.focus_index.to(dev), p.focus_bonus.to(dev))
