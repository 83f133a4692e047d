"""Names and folders made from user input: genre names as file names, output folders.

Genre names come from folder names, CSV manifests and checkpoints, all of which a user may have
downloaded; they never reach a path unchecked.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from etude.errors import ConfigError, InputError

_SAFE_GENRE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}")


def check_genre_name(genre: str, where: str) -> str:
    """`genre` when it is safe as a file name and a token: 1-64 letters, digits, space, `_.+-`,
    starting with a letter or digit (no `/`, no `..` alone, no control characters)."""
    if not isinstance(genre, str) or not _SAFE_GENRE.fullmatch(genre) or genre.strip(". ") == "":
        raise InputError(
            f"genre name {genre!r} ({where}) cannot be used: a genre is 1-64 letters, digits, spaces "
            "or _ . + -, starting with a letter or digit"
        )
    return genre


def genre_file_stem(genre: str) -> str:
    """A file-name stem for a genre read from anywhere (a checkpoint made elsewhere included):
    every character outside [A-Za-z0-9 _.+-] becomes `_`, leading dots are dropped, so a genre
    that passes check_genre_name is its own stem."""
    stem = re.sub(r"[^A-Za-z0-9 _.+-]", "_", genre).lstrip(".")
    return stem[:64] or "genre"


def ensure_dir(path: Path, what: str = "output folder") -> Path:
    """Create folder `path` (and its parents) or raise InputError saying why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise InputError(f"cannot use {what} {path}: it is not a folder")
    return path


def check_finite(name: str, value: float, low: float | None = None) -> float:
    """`value` when it is a finite number (and above `low`), else a ConfigError naming `name`."""
    if not math.isfinite(value) or (low is not None and value <= low):
        bound = f" above {low:g}" if low is not None else ""
        raise ConfigError(f"{name} must be a finite number{bound}, not {value!r}", option=name)
    return value
