"""GenreClassifier: which genre a token sequence belongs to.

Embedding -> LSTM -> mean over the non-pad steps -> linear layer over the genres. Trained on
windows of event tokens from a prepared data folder (the genre token at a piece's start is
replaced by padding, so the model hears only the music); a piece's genre probabilities are the
mean of its windows' softmax outputs.
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

from etude.data.cache import open_encoding, open_split
from etude.data.encoding import EventEncoding, encoding_from_state
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


def windows_of(ids: np.ndarray, seq_len: int, pad_id: int, genre_ids: set[int], max_windows: int = 8) -> torch.Tensor:
    """Consecutive windows (at most max_windows, evenly spread) of one piece, genre tokens masked."""
    ids = np.array([pad_id if int(i) in genre_ids else int(i) for i in ids], dtype=np.int64)
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
        genre_ids = {self.encoding.genre_id(g) for g in self.genres}
        x = windows_of(ids, self.model.cfg.seq_len, self.encoding.pad_id, genre_ids)
        return torch.softmax(self.model(x), -1).mean(0).numpy()

    def classify_score(self, score) -> np.ndarray:
        return self.probabilities(self.encoding.encode(score, self.genres[0]))

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        ensure_dir(folder, "classifier folder")
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(folder / "model.safetensors"))
        cfg = {"classifier": self.model.cfg.__dict__, "vocab_size": self.encoding.vocab_size, "pad_id": self.encoding.pad_id}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        (folder / "tokenizer.json").write_text(json.dumps(self.encoding.state(), indent=2))
        self.path = folder
        return folder

    @classmethod
    def load(cls, folder: Path) -> Classifier:
        folder = Path(folder)
        try:
            cfg = json.loads((folder / "config.json").read_text())
            enc = encoding_from_state(json.loads((folder / "tokenizer.json").read_text()))
            model = GenreClassifier(cfg["vocab_size"], len(enc.genres), ClassifierConfig(**cfg["classifier"]), cfg["pad_id"])
            model.load_state_dict(load_file(str(folder / "model.safetensors")))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"cannot load classifier {folder}: {str(exc).splitlines()[0][:200]}") from None
        return cls(model.eval(), enc, folder)


def _pieces(data_dir: Path, split: str) -> list[tuple[np.ndarray, int]]:
    rows, index = open_split(data_dir, split)
    return [(np.asarray(rows[s : s + n, 0]), int(g)) for s, n, g in index]


def train_classifier(data_dir: Path, out: Path | None = None, cfg: ClassifierConfig | None = None, progress: bool = True) -> tuple[Classifier, dict]:
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
    genre_ids = {enc.genre_id(g) for g in enc.genres}
    model = GenreClassifier(enc.vocab_size, len(enc.genres), cfg, enc.pad_id)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # balanced sampling: each genre equally often, so accuracy is not bought by the largest genre
    by_genre = [[i for i, (_, g) in enumerate(train) if g == k] for k in range(len(enc.genres))]
    by_genre = [ids for ids in by_genre if ids]
    for _ in tqdm(range(cfg.iterations), desc="classifier", disable=None if progress else True):
        xs, ys = [], []
        for _ in range(cfg.batch_size):
            piece, genre = train[rng.choice(by_genre[rng.integers(len(by_genre))])]
            w = windows_of(piece, cfg.seq_len, enc.pad_id, genre_ids, max_windows=64)
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
    return {"genres": clf.genres, "accuracy": float(np.trace(confusion) / total) if total else float("nan"), "confusion": confusion.tolist(), "pieces": int(total)}
