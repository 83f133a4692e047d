"""Takes: the pieces the studio generated, each in its own folder under the studio's folder.

A take's id is 32 hex digits made here; its files are `piece.mid`, `piece.wav`, `piece.png`
and `take.json`. Requests name a take and one of those file names; nothing from a request is
ever joined into a path unchecked.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import uuid
from pathlib import Path

FILES = {"piece.mid": "audio/midi", "piece.wav": "audio/wav", "piece.png": "image/png"}
_ID = re.compile(r"^[0-9a-f]{32}$")


class TakeStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.order: list[str] = []  # this session's takes, oldest first

    def add(self, files: dict[str, Path], info: dict) -> str:
        """Move `files` (name in FILES -> a file) into a new take; returns its id."""
        take = uuid.uuid4().hex
        folder = self.root / take
        folder.mkdir()
        for name, path in files.items():
            if name in FILES and path is not None:
                shutil.move(str(path), folder / name)
        (folder / "take.json").write_text(json.dumps({**info, "id": take}))
        with self.lock:
            self.order.append(take)
        return take

    def info(self, take: str) -> dict | None:
        folder = self._folder(take)
        return None if folder is None else json.loads((folder / "take.json").read_text())

    def describe(self, take: str) -> dict | None:
        """A take as every answer of the API shows it: its description, id and file URLs."""
        info = self.info(take)
        if info is None:
            return None
        return {**info, "urls": {name.split(".")[1]: f"/api/takes/{take}/{name}" for name in FILES}}

    def file(self, take: str, name: str) -> Path | None:
        """The path of a take's file, or None unless both the id and the name are the studio's own."""
        folder = self._folder(take)
        if folder is None or name not in FILES or not (folder / name).is_file():
            return None
        return folder / name

    def delete(self, take: str) -> bool:
        folder = self._folder(take)
        if folder is None:
            return False
        shutil.rmtree(folder)
        with self.lock:
            self.order.remove(take)
        return True

    def list(self) -> list[dict]:
        with self.lock:
            ids = list(self.order)
        return [d for d in (self.describe(t) for t in ids) if d]

    def _folder(self, take: str) -> Path | None:
        if not _ID.match(take):
            return None
        with self.lock:
            known = take in self.order
        folder = self.root / take
        return folder if known and (folder / "take.json").is_file() else None
