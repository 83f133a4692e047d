"""A corpus on disk: which MIDI files, which genre each, and the saved train/valid/test split.

Genre comes from the first-level sub-folder of the corpus folder, from `genre=` for a flat folder,
or from a CSV manifest with the columns `path,genre` (paths relative to the manifest's folder).
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from etude.config import DataConfig
from etude.errors import InputError
from etude.paths import check_genre_name

MIDI_SUFFIXES = (".mid", ".midi")
SPLITS = ("train", "valid", "test")
HELD_OUT = ("test", "valid")  # the splits no model trains on: test for the figures reported, valid for choices


@dataclass(frozen=True)
class SourceFile:
    path: Path
    id: str  # path relative to the corpus root, with forward slashes
    genre: str


def _midi_files(folder: Path, seen: set[tuple[int, int]]) -> Iterator[Path]:
    """Every .mid/.midi name under `folder`, hidden folders skipped. Links to folders are
    followed, but no folder (device, inode) in `seen` is walked, and each walked one is added,
    so a link loop ends. Files are not opened here: special files and broken links are found by
    etude.data.midi.file_problem and rejected there."""
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            st = current.stat()
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue  # an unreadable folder or a link loop: nothing to list
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.name.startswith("."):
                    stack.append(path)
            elif path.suffix.lower() in MIDI_SUFFIXES:
                yield path


def _read_manifest(path: Path) -> list[SourceFile]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from None
    if rows and not {"path", "genre"} <= set(rows[0]):
        raise InputError(f"manifest {path} needs the columns path,genre")
    files = []
    for line, row in enumerate(rows, start=2):
        if not row["path"]:
            raise InputError(f"manifest {path}, line {line}: no path")
        genre = check_genre_name((row["genre"] or "").strip(), f"manifest {path}, line {line}")
        files.append(SourceFile(path.parent / row["path"], row["path"].replace("\\", "/"), genre))
    return files


def discover(corpus: Path, genre: str | None = None) -> list[SourceFile]:
    """The MIDI files of a corpus folder or manifest, each with its genre, sorted by id."""
    corpus = Path(corpus)
    if not corpus.exists():
        raise InputError(f"corpus not found: {corpus}")
    if genre is not None:
        check_genre_name(genre, "--genre")
    if corpus.is_file():
        if corpus.suffix.lower() != ".csv":
            raise InputError(f"{corpus} is a file; give a folder of MIDI files or a CSV manifest")
        files = _read_manifest(corpus)
    elif not corpus.is_dir():
        raise InputError(f"{corpus} is neither a folder nor a CSV manifest")
    else:
        files = []
        top = [p for p in corpus.iterdir() if not p.is_dir() and p.suffix.lower() in MIDI_SUFFIXES]
        if top and genre is None:
            raise InputError(
                f"{corpus} has MIDI files outside genre sub-folders; pass --genre NAME "
                "to name their genre, or move them into one sub-folder per genre"
            )
        for p in sorted(top):
            files.append(SourceFile(p, p.name, genre or ""))
        root = corpus.stat()
        seen = {(root.st_dev, root.st_ino)}
        for sub in sorted(p for p in corpus.iterdir() if p.is_dir() and not p.name.startswith(".")):
            name = genre or check_genre_name(sub.name, f"the folder name {sub}")
            for p in _midi_files(sub, seen):
                files.append(SourceFile(p, p.relative_to(corpus).as_posix(), name))
    if not files:
        raise InputError(f"no .mid or .midi files found in {corpus}")
    return sorted(files, key=lambda f: f.id)


def assign_split(
    ids_by_genre: dict[str, list[str]], cfg: DataConfig, previous: dict[str, str] | None = None
) -> dict[str, str]:
    """Map each piece id to "train", "valid" or "test", per genre, seeded and deterministic.

    Of each genre, `test_frac` goes to test and `valid_frac` of the rest to validation (at least
    one piece each when the genre has three or more). Ids found in `previous` keep their split;
    new ids are shared out so that the proportions hold as closely as they can.
    """
    previous = previous or {}
    split: dict[str, str] = {}
    for genre in sorted(ids_by_genre):
        ids = sorted(ids_by_genre[genre])
        n = len(ids)
        n_test = round(n * cfg.test_frac)
        n_valid = round((n - n_test) * cfg.valid_frac)
        if n >= 3:
            n_test = max(n_test, 1) if cfg.test_frac > 0 else 0
            n_valid = max(n_valid, 1) if cfg.valid_frac > 0 else 0
        want = {"test": n_test, "valid": n_valid, "train": n - n_test - n_valid}
        kept = [i for i in ids if previous.get(i) in SPLITS]
        for i in kept:
            split[i] = previous[i]
            want[previous[i]] -= 1
        new = [i for i in ids if i not in split]
        random.Random(f"{cfg.seed}:{genre}").shuffle(new)
        for name in ("test", "valid"):
            take = max(0, min(want[name], len(new)))
            for i in new[:take]:
                split[i] = name
            new = new[take:]
        for i in new:
            split[i] = "train"
    return split


def save_split(path: Path, split: dict[str, str]) -> None:
    Path(path).write_text(json.dumps(dict(sorted(split.items())), indent=1))


def load_split(path: Path) -> dict[str, str]:
    """A saved split, or an empty one when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read split file {path}: {exc}") from None
    return {k: v for k, v in data.items() if v in SPLITS}
