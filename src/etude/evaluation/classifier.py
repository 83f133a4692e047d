"""The genre judge: which genre a piece belongs to, in two kinds.

- "listening" (the default, ListeningConfig): hearing.py's features of what a listener hears
  (key-relative pitch classes, melody and bass motion, harmony, rhythm between onsets, register,
  texture, density), read from onsets and pitches only, so blind to how a file was made (on a
  grid or performed, its note lengths, pedal, velocities, tempo marks, tracks); then a small MLP.
  It is trained on whole pieces and on windows of `window` seconds, since it judges both, and
  on each piece played otherwise (another tempo, thinner chords, looser onsets).
- "tokens" (TokenConfig, the first version): embedding -> LSTM -> mean over the non-pad steps
  -> linear, on windows of event tokens; `hears` "notes" keeps only bars, positions, pitches and
  durations, "all" every token but the genre's; random key shifts of +-`transpose` semitones.

Both are trained on a prepared data folder's training split (pieces decoded from their tokens)
and saved as a folder (config.json with the kind, model.safetensors, tokenizer.json);
Classifier.load gives back the right kind. judging.py trains them on a prepared folder and measures them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from symusic import Score
from torch import nn
from tqdm import tqdm

from etude.data.encoding import EventEncoding, encoding_from_state
from etude.data.store import open_encoding, open_split, read_pieces
from etude.errors import CheckpointError, ConfigError, InputError
from etude.evaluation import hearing
from etude.paths import ensure_dir


@dataclass
class ListeningConfig:
    """The listening judge: hearing.SIZE features -> (hidden, ReLU, dropout) -> genres."""

    kind: ClassVar[str] = "listening"
    hidden: int = 64  # 0: a linear model (logistic regression)
    dropout: float = 0.2
    iterations: int = 300  # full-batch Adam steps
    lr: float = 1e-2
    weight_decay: float = 1e-3
    window: float = 30.0  # seconds: each training piece is also heard in windows this long
    windows: int = 2  # its opening and windows-1 more from random starts
    replays: int = 1  # each training piece also heard this often as another player might give it:
    replay_tempo: float = 1.25  # its tempo times a factor from 1/replay_tempo..replay_tempo,
    replay_jitter: float = 0.03  # its onsets moved by up to this many seconds either way,
    replay_thin: float = 0.5  # and each inner note of its chords left out with this probability
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden < 0 or not 0 <= self.dropout < 1 or self.iterations < 1 or self.lr <= 0:
            raise ConfigError("listening judge: hidden >= 0, 0 <= dropout < 1, iterations >= 1 and lr > 0")
        if self.window <= 0 or self.windows < 0 or self.replays < 0:
            raise ConfigError("listening judge: window > 0 seconds, windows >= 0 and replays >= 0")
        if self.replay_tempo < 1 or self.replay_jitter < 0 or not 0 <= self.replay_thin <= 1:
            raise ConfigError("listening judge: replay_tempo >= 1, replay_jitter >= 0 s, 0 <= replay_thin <= 1")


@dataclass
class TokenConfig:
    """The token judge (the first version): an LSTM over windows of event tokens."""

    kind: ClassVar[str] = "tokens"
    embed: int = 64
    hidden: int = 128
    seq_len: int = 256  # tokens per window
    batch_size: int = 32
    iterations: int = 300
    lr: float = 3e-3
    seed: int = 0
    hears: str = "notes"  # notes: bars, positions, pitches, durations only | all: every token but the genre's
    transpose: int = 5  # training windows shifted by a random -K..K semitones (0: none)

    def __post_init__(self) -> None:
        if self.hears not in HEARD and self.hears != "all":
            raise InputError(f"unknown classifier input {self.hears!r}; choose notes or all")


JudgeConfig = ListeningConfig | TokenConfig


HEARD = {"notes": ("Bar", "Position", "Pitch", "Duration", "TimeShift", "NoteOn", "NoteOff")}


def heard_tokens(encoding: EventEncoding, hears: str) -> np.ndarray:
    """A mask over the vocabulary (bool, (V,)) of the tokens the classifier reads; never genre
    tokens. `notes` keeps the token types of HEARD["notes"] (drum pitches excluded)."""
    vocab = encoding.vocab
    genre_ids = {encoding.genre_id(g) for g in encoding.genres}
    if hears == "all":
        return np.array([i not in genre_ids for i in range(len(vocab))])
    if hears not in HEARD:
        raise InputError(f"unknown classifier input {hears!r}; choose notes or all")
    return np.array([i not in genre_ids and t.split("_")[0] in HEARD[hears] for i, t in enumerate(vocab)])


class GenreClassifier(nn.Module):
    def __init__(self, vocab_size: int, n_genres: int, cfg: TokenConfig, pad_id: int = 0):
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        self.embed = nn.Embedding(vocab_size, cfg.embed)
        self.lstm = nn.LSTM(cfg.embed, cfg.hidden, batch_first=True)
        self.head = nn.Linear(cfg.hidden, n_genres)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T) token ids -> genre logits (B, G), averaging the LSTM over non-pad steps."""
        h, _ = self.lstm(self.embed(x))  # (B, T, H)
        mask = (x != self.pad_id).float()[..., None]  # (B, T, 1)
        pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, H)
        return self.head(pooled)


def windows_of(ids: np.ndarray, seq_len: int, pad_id: int, heard: np.ndarray, max_windows: int = 8) -> torch.Tensor:
    """Consecutive windows (at most max_windows, evenly spread) of one piece's heard tokens
    (`heard`: a mask over the vocabulary, from heard_tokens), padded to seq_len: (W, seq_len)."""
    ids = np.asarray(ids, dtype=np.int64)
    ids = ids[heard[ids]]
    starts = list(range(0, max(1, len(ids) - seq_len + 1), seq_len)) or [0]
    if len(starts) > max_windows:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, max_windows).astype(int)]
    out = np.full((len(starts), seq_len), pad_id, dtype=np.int64)
    for k, s in enumerate(starts):
        chunk = ids[s : s + seq_len]
        out[k, : len(chunk)] = chunk
    return torch.from_numpy(out)


class Classifier:
    """A trained genre judge over `encoding`'s genres. Each kind gives `classify_score` (a score
    -> genre probabilities (G,)) and `probabilities` (a piece's token ids -> (G,)), one through
    the other."""

    kind: ClassVar[str]

    def __init__(self, model: nn.Module, encoding: EventEncoding, path: Path | None = None):
        self.model, self.encoding, self.path = model.eval(), encoding, path

    @property
    def genres(self) -> list[str]:
        return self.encoding.genres

    @property
    def cfg(self) -> JudgeConfig:
        return self.model.cfg

    def classify_score(self, score: Score) -> np.ndarray:
        raise NotImplementedError

    def probabilities(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        ensure_dir(folder, "classifier folder")
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(folder / "model.safetensors"))
        cfg = {"kind": self.kind, "classifier": asdict(self.cfg), **self._saved()}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        (folder / "tokenizer.json").write_text(json.dumps(self.encoding.state(), indent=2))
        self.path = folder
        return folder

    def _saved(self) -> dict:
        """What config.json keeps besides the kind and its config (read back by build)."""
        return {}

    @staticmethod
    def load(folder: Path) -> Classifier:
        """The classifier saved in `folder`, of its own kind (one saved before kinds: tokens)."""
        folder = Path(folder)
        try:
            saved = json.loads((folder / "config.json").read_text())
            kind = KINDS[saved.get("kind", "tokens")]
            enc = encoding_from_state(json.loads((folder / "tokenizer.json").read_text()))
            model = kind.build(saved, enc)
            model.load_state_dict(load_file(str(folder / "model.safetensors")))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"cannot load classifier {folder}: {str(exc).splitlines()[0][:200]}") from None
        return kind(model, enc, folder)


class TokenClassifier(Classifier):
    kind = "tokens"

    @torch.no_grad()
    def probabilities(self, ids: np.ndarray) -> np.ndarray:
        heard = heard_tokens(self.encoding, self.cfg.hears)
        x = windows_of(ids, self.cfg.seq_len, self.encoding.pad_id, heard)
        return torch.softmax(self.model(x), -1).mean(0).numpy()

    def classify_score(self, score: Score) -> np.ndarray:
        return self.probabilities(self.encoding.encode(score, self.genres[0]))

    def _saved(self) -> dict:
        return {"vocab_size": self.encoding.vocab_size, "pad_id": self.encoding.pad_id}

    @staticmethod
    def build(saved: dict, enc: EventEncoding) -> nn.Module:
        saved["classifier"].setdefault("hears", "all")  # saved before `hears` existed: it heard every token
        return GenreClassifier(
            saved["vocab_size"], len(enc.genres), TokenConfig(**saved["classifier"]), saved["pad_id"]
        )

    @classmethod
    def fit(cls, enc: EventEncoding, cfg: TokenConfig, pieces: list[Piece], progress: bool) -> Classifier:
        """Trained on `pieces` (windows of their heard tokens, genres sampled evenly)."""
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        heard = heard_tokens(enc, cfg.hears)
        model = GenreClassifier(enc.vocab_size, len(enc.genres), cfg, enc.pad_id)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        # balanced sampling: each genre equally often, so accuracy is not bought by the largest genre
        by_genre = [[i for i, p in enumerate(pieces) if p.genre == k] for k in range(len(enc.genres))]
        by_genre = [ids for ids in by_genre if ids]
        for _ in tqdm(range(cfg.iterations), desc="classifier", disable=None if progress else True):
            xs, ys = [], []
            for _ in range(cfg.batch_size):
                piece = pieces[rng.choice(by_genre[rng.integers(len(by_genre))])]
                shift = int(rng.integers(-cfg.transpose, cfg.transpose + 1)) if cfg.transpose else 0
                moved = enc.transpose(piece.ids, shift) if shift else None  # None: a note would leave the keyboard
                w = windows_of(piece.ids if moved is None else moved, cfg.seq_len, enc.pad_id, heard, max_windows=64)
                xs.append(w[rng.integers(len(w))])
                ys.append(piece.genre)
            loss = F.cross_entropy(model(torch.stack(xs)), torch.tensor(ys))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return cls(model, enc)


class ListeningNet(nn.Module):
    """Standardised features (mean and spread of the training views, kept as buffers) -> genre logits."""

    def __init__(self, n_genres: int, cfg: ListeningConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.zeros(hearing.SIZE))
        self.register_buffer("spread", torch.ones(hearing.SIZE))
        if cfg.hidden:
            self.net = nn.Sequential(
                nn.Linear(hearing.SIZE, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, n_genres)
            )
        else:
            self.net = nn.Linear(hearing.SIZE, n_genres)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, hearing.SIZE) features -> (B, G) logits."""
        return self.net((x - self.mean) / self.spread)


class ListeningClassifier(Classifier):
    """The listening judge. It hears a score as its training pieces were stored: onsets on the
    encoding's grid of the file's own beats (hearing.on_grid), so that it judges onsets like
    those it was trained on, however finely or loosely a file was timed."""

    kind = "listening"

    def classify_score(self, score: Score) -> np.ndarray:
        return self._judge(hearing.on_grid(score, self.encoding.cfg.beat_res))

    def probabilities(self, ids: np.ndarray) -> np.ndarray:
        return self._judge(self.encoding.decode(np.asarray(ids)))

    @torch.no_grad()
    def _judge(self, prepared: Score) -> np.ndarray:
        x = hearing.hear(prepared)
        if x is None:  # too few notes to judge: no opinion
            return np.full(len(self.genres), 1.0 / len(self.genres))
        return torch.softmax(self.model(torch.from_numpy(x)[None]), -1)[0].numpy()

    @staticmethod
    def build(saved: dict, enc: EventEncoding) -> nn.Module:
        return ListeningNet(len(enc.genres), ListeningConfig(**saved["classifier"]))

    @classmethod
    def fit(cls, enc: EventEncoding, cfg: ListeningConfig, pieces: list[Piece], progress: bool) -> Classifier:
        """Trained on the heard_views of `pieces`."""
        x, y, _ = heard_views(pieces, enc, cfg, progress)
        return cls.fit_features(x, y, enc, cfg)

    @classmethod
    def fit_features(cls, x: np.ndarray, y: np.ndarray, enc: EventEncoding, cfg: ListeningConfig) -> Classifier:
        """Trained on features x (N, hearing.SIZE) of genres y (N,), full batch."""
        torch.manual_seed(cfg.seed)
        model = ListeningNet(len(enc.genres), cfg)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        model.mean.copy_(xt.mean(0))
        model.spread.copy_(xt.std(0) + 1e-6)
        # class weights: each genre counts the same, so accuracy is not bought by the largest genre
        counts = np.bincount(y, minlength=len(enc.genres))
        weight = torch.tensor(np.where(counts > 0, len(y) / (len(counts) * np.maximum(counts, 1)), 0.0))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        model.train()
        for _ in range(cfg.iterations):
            loss = F.cross_entropy(model(xt), yt, weight=weight.float())
            opt.zero_grad()
            loss.backward()
            opt.step()
        return cls(model, enc)


def tempo_scaled(score: Score, factor: float) -> Score:
    """A copy of the score with every tempo times `factor` (notes keep their ticks)."""
    out = score.copy()
    for t in out.tempos:
        t.qpm = t.qpm * factor
    return out


def played_otherwise(score: Score, rng: np.random.Generator, tempo: float, jitter: float, thin: float = 0.0) -> Score:
    """The score as another player or arranger might give it: every tempo times one factor drawn
    log-uniform from 1/tempo..tempo, each inner note of a chord of three or more (neither its
    lowest nor its highest) left out with probability `thin`, every onset moved by a uniform
    -jitter..+jitter seconds (durations kept); a tick score at 480 ticks per quarter, fine
    enough for the jitter."""
    factor = float(np.exp(rng.uniform(-np.log(tempo), np.log(tempo))))
    out = tempo_scaled(score.resample(480), factor)
    for track in out.tracks:
        kept = _outer_voices_kept(track.notes.numpy(), rng, thin)
        notes = [n for n, k in zip(track.notes, kept) if k]
        track.notes.clear()
        track.notes.extend(notes)
    out = out.to("second")
    for track in out.tracks:
        for n in track.notes:
            n.time = max(0.0, n.time + float(rng.uniform(-jitter, jitter)))
    return out.to("tick")


def _outer_voices_kept(notes: dict[str, np.ndarray], rng: np.random.Generator, thin: float) -> np.ndarray:
    """Which notes (bool, (N,)) stay when each inner note of a chord struck together is left out
    with probability `thin`."""
    keep = np.ones(len(notes["time"]), dtype=bool)
    if not thin:
        return keep
    for onset in np.unique(notes["time"]):
        chord = np.flatnonzero(notes["time"] == onset)
        if len(chord) >= 3:
            inner = chord[np.argsort(notes["pitch"][chord])][1:-1]
            keep[inner] = rng.random(len(inner)) >= thin
    return keep


def _views(t: np.ndarray, p: np.ndarray, starts: list[float], window: float) -> list[np.ndarray | None]:
    """Features of onsets t (s) and pitches p whole, then of each window from t[0] + start."""
    views = [hearing.features_of(t, p)]
    for s in starts:
        keep = (t >= t[0] + s) & (t < t[0] + s + window)
        views.append(hearing.features_of(t[keep], p[keep]))
    return views


def heard_views(
    pieces: list[Piece], enc: EventEncoding, cfg: ListeningConfig, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (N, hearing.SIZE) float32, genres (N,) and piece indices (N,) of each piece heard
    whole (its first view), from its opening for cfg.window s and from cfg.windows-1 random
    starts; then cfg.replays times played_otherwise (on the encoding's grid, as classify_score
    hears a file), whole and from its opening. Views with too few notes are left out."""
    rng = np.random.default_rng(cfg.seed)
    xs, ys, which = [], [], []
    for k, piece in enumerate(tqdm(pieces, desc="hearing", disable=None if progress else True)):
        score = enc.decode(piece.ids)
        t, p = hearing.onsets_of(score)
        if not len(t):
            continue
        late = max(t[-1] - t[0] - cfg.window, 0.0)
        starts = ([0.0] + [float(rng.uniform(0, late)) for _ in range(cfg.windows - 1)]) if cfg.windows else []
        views = _views(t, p, starts, cfg.window)
        for _ in range(cfg.replays):
            replayed = played_otherwise(score, rng, cfg.replay_tempo, cfg.replay_jitter, cfg.replay_thin)
            views += _views(*hearing.onsets_of(hearing.on_grid(replayed, enc.cfg.beat_res)), [0.0], cfg.window)
        for v in views:
            if v is not None:
                xs.append(v)
                ys.append(piece.genre)
                which.append(k)
    if not xs:
        raise InputError("no training piece has enough notes for the listening judge")
    return np.stack(xs), np.array(ys, dtype=np.int64), np.array(which)


KINDS: dict[str, type[Classifier]] = {"listening": ListeningClassifier, "tokens": TokenClassifier}


@dataclass
class Piece:
    """A stored piece of a prepared data folder: its pieces.csv id, token ids and genre index."""

    id: str
    ids: np.ndarray
    genre: int


def pieces_of(data_dir: Path, split: str) -> list[Piece]:
    """The pieces of one split (transposed copies included, as stored)."""
    rows, index = open_split(data_dir, split)
    names = [r["id"] for r in read_pieces(Path(data_dir) / "pieces.csv") if r["split"] == split]
    return [Piece(name, np.asarray(rows[s : s + n, 0]), int(g)) for name, (s, n, g) in zip(names, index)]


def every_piece(data_dir: Path) -> list[Piece]:
    """The pieces of the train, valid and test splits, in that order."""
    return [p for split in ("train", "valid", "test") for p in pieces_of(data_dir, split)]


def held_out(pieces: list[Piece], prefixes: tuple[str, ...]) -> list[Piece]:
    """The pieces whose id starts with any of `prefixes` (a folder, or a composer's file names)."""
    return [p for p in pieces if prefixes and p.id.startswith(tuple(prefixes))]


def open_event_data(data_dir: Path) -> EventEncoding:
    """The encoding of a prepared folder of event tokens with two genres or more."""
    enc = open_encoding(Path(data_dir))
    if not isinstance(enc, EventEncoding):
        raise InputError(f"{data_dir} holds piano rolls; the genre classifier reads event tokens")
    if len(enc.genres) < 2:
        raise InputError(f"{data_dir} has one genre; a genre classifier needs two or more")
    return enc
