"""GenreClassifier: which genre a token sequence belongs to.

Embedding -> LSTM -> mean over the non-pad steps -> linear layer over the genres. Trained on
windows of event tokens from a prepared data folder; a piece's genre probabilities are the mean
of its windows' softmax outputs.

What it hears (`ClassifierConfig.hears`): "notes" (the default) keeps only bars, positions,
pitches and durations, so it judges the music alone: tempo, time-signature, velocity and genre
tokens are dropped from its input, which makes it blind to how fast a file was sequenced, how
loud, and which collection labelled it; random key shifts of +-`transpose` semitones in training
teach it that a key is not a genre. "all" keeps every token but the genre's (the first version).
`invariance` measures how often the predicted genre survives a tempo change, flattened dynamics
and a transposition.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from etude.data.encoding import EventEncoding, encoding_from_state
from etude.data.store import open_encoding, open_split
from etude.errors import CheckpointError, InputError
from etude.paths import ensure_dir

log = logging.getLogger(__name__)


@dataclass
class ClassifierConfig:
    embed: int = 64
    hidden: int = 128
    seq_len: int = 256  # tokens per window
    batch_size: int = 32
    iterations: int = 300
    lr: float = 3e-3
    seed: int = 0
    hears: str = "notes"  # notes: bars, positions, pitches, durations only | all: every token but the genre's
    transpose: int = 5  # training windows shifted by a random -K..K semitones (0: none)


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
    def __init__(self, vocab_size: int, n_genres: int, cfg: ClassifierConfig, pad_id: int = 0):
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


@dataclass
class Classifier:
    model: GenreClassifier
    encoding: EventEncoding
    path: Path | None = None

    @property
    def genres(self) -> list[str]:
        return self.encoding.genres

    @torch.no_grad()
    def probabilities(self, ids: np.ndarray) -> np.ndarray:
        """Genre probabilities (G,) of one piece's token ids."""
        self.model.eval()
        heard = heard_tokens(self.encoding, self.model.cfg.hears)
        x = windows_of(ids, self.model.cfg.seq_len, self.encoding.pad_id, heard)
        return torch.softmax(self.model(x), -1).mean(0).numpy()

    def classify_score(self, score) -> np.ndarray:
        return self.probabilities(self.encoding.encode(score, self.genres[0]))

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        ensure_dir(folder, "classifier folder")
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(folder / "model.safetensors"))
        cfg = {
            "classifier": self.model.cfg.__dict__,
            "vocab_size": self.encoding.vocab_size,
            "pad_id": self.encoding.pad_id,
        }
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        (folder / "tokenizer.json").write_text(json.dumps(self.encoding.state(), indent=2))
        self.path = folder
        return folder

    @classmethod
    def load(cls, folder: Path) -> Classifier:
        folder = Path(folder)
        try:
            cfg = json.loads((folder / "config.json").read_text())
            cfg["classifier"].setdefault("hears", "all")  # saved before `hears` existed: it heard every token
            enc = encoding_from_state(json.loads((folder / "tokenizer.json").read_text()))
            model = GenreClassifier(
                cfg["vocab_size"], len(enc.genres), ClassifierConfig(**cfg["classifier"]), cfg["pad_id"]
            )
            model.load_state_dict(load_file(str(folder / "model.safetensors")))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"cannot load classifier {folder}: {str(exc).splitlines()[0][:200]}") from None
        return cls(model.eval(), enc, folder)


def _pieces(data_dir: Path, split: str) -> list[tuple[np.ndarray, int]]:
    rows, index = open_split(data_dir, split)
    return [(np.asarray(rows[s : s + n, 0]), int(g)) for s, n, g in index]


def train_classifier(
    data_dir: Path, out: Path | None = None, cfg: ClassifierConfig | None = None, progress: bool = True
) -> tuple[Classifier, dict]:
    """Train on the train split; returns the classifier and its accuracy and confusion matrix on
    the test split (rows: true genre, columns: predicted)."""
    cfg = cfg or ClassifierConfig()
    enc = open_encoding(Path(data_dir))
    if not isinstance(enc, EventEncoding):
        raise InputError(f"{data_dir} holds piano rolls; the genre classifier reads event tokens")
    if len(enc.genres) < 2:
        raise InputError(f"{data_dir} has one genre; a genre classifier needs two or more")
    train = _pieces(Path(data_dir), "train")
    if not train:
        raise InputError(f"{data_dir} has no training pieces")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    heard = heard_tokens(enc, cfg.hears)
    model = GenreClassifier(enc.vocab_size, len(enc.genres), cfg, enc.pad_id)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # balanced sampling: each genre equally often, so accuracy is not bought by the largest genre
    by_genre = [[i for i, (_, g) in enumerate(train) if g == k] for k in range(len(enc.genres))]
    by_genre = [ids for ids in by_genre if ids]
    for _ in tqdm(range(cfg.iterations), desc="classifier", disable=None if progress else True):
        xs, ys = [], []
        for _ in range(cfg.batch_size):
            piece, genre = train[rng.choice(by_genre[rng.integers(len(by_genre))])]
            shift = int(rng.integers(-cfg.transpose, cfg.transpose + 1)) if cfg.transpose else 0
            moved = enc.transpose(piece, shift) if shift else None  # None also when a note would leave the keyboard
            w = windows_of(piece if moved is None else moved, cfg.seq_len, enc.pad_id, heard, max_windows=64)
            xs.append(w[rng.integers(len(w))])
            ys.append(genre)
        loss = F.cross_entropy(model(torch.stack(xs)), torch.tensor(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
    clf = Classifier(model.eval(), enc)
    if out is not None:
        clf.save(out)
    return clf, test_report(clf, data_dir)


def test_report(clf: Classifier, data_dir: Path) -> dict:
    """Accuracy and confusion matrix on the test split of a prepared data folder."""
    g = len(clf.genres)
    confusion = np.zeros((g, g), dtype=int)
    for ids, genre in _pieces(Path(data_dir), "test"):
        confusion[genre, int(np.argmax(clf.probabilities(ids)))] += 1
    total = confusion.sum()
    return {
        "genres": clf.genres,
        "accuracy": float(np.trace(confusion) / total) if total else float("nan"),
        "confusion": confusion.tolist(),
        "pieces": int(total),
    }


def _tempo_scaled(score, factor: float):
    out = score.copy()
    for t in out.tempos:
        t.qpm = t.qpm * factor
    return out


def _one_velocity(score, velocity: int = 64):
    out = score.copy()
    for track in out.tracks:
        for n in track.notes:
            n.velocity = velocity
    return out


TRANSFORMS = {
    "tempo x0.8": lambda s: _tempo_scaled(s, 0.8),
    "tempo x1.25": lambda s: _tempo_scaled(s, 1.25),
    "one velocity": _one_velocity,
    "transpose -3": lambda s: s.shift_pitch(-3),
    "transpose +3": lambda s: s.shift_pitch(3),
}


def invariance(clf: Classifier, data_dir: Path, max_pieces: int | None = None) -> dict[str, float]:
    """Share of test pieces whose predicted genre stays the same under each of TRANSFORMS
    (tempo scaled by 0.8 and 1.25, every velocity set to 64, transposed by -3 and +3 semitones):
    a classifier that judges the music, not how a file was made, scores 1 on each."""
    pieces = _pieces(Path(data_dir), "test")[:max_pieces]
    kept = {name: [] for name in TRANSFORMS}
    for ids, _ in pieces:
        score = clf.encoding.decode(ids)
        before = int(np.argmax(clf.classify_score(score)))
        for name, change in TRANSFORMS.items():
            kept[name].append(int(np.argmax(clf.classify_score(change(score)))) == before)
    return {name: float(np.mean(v)) if v else float("nan") for name, v in kept.items()}
