"""`etude data prepare`: a corpus as flat arrays on disk, read by np.memmap (`etude data info`
summarises them: etude.data.summary).

Layout of a prepared folder:
  meta.json          settings and their hash, genres, vocabulary, counts, rejections with reasons
  tokenizer.json     the encoder's state (`etude.data.encoding.load_encoding`)
  split.json         piece file -> train | valid | test; reused on later runs
  {split}.bin        all pieces of the split back to back: uint16 tokens, or uint8 rows of 88 keys
  {split}.idx.npy    int64 (pieces, 3): first row, number of rows, genre index
  pieces.csv         one line per stored piece: id, genre, split, seconds, rows, transposition,
                     notes fingerprint (for duplicates), grid fit before and after re-timing

Files are parsed and encoded by worker processes and streamed to disk as they arrive, so memory
stays flat whatever the corpus size. Rows are written once to a scratch file, then copied into
the split files once deduplication and the split are known.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from etude import __version__
from etude.config import DataConfig, EncodingConfig, settings_hash, to_dict, validate
from etude.data.beats import KEEP_FIT, fit_to_grid
from etude.data.corpus import SPLITS, SourceFile, assign_split, discover, load_split, save_split
from etude.data.encoding import Encoding, encoding_from_state, load_encoding, make_encoding, save_encoding
from etude.data.isolation import Failed, Limits, isolated_map
from etude.data.midi import DUPLICATE, REDUCTION, Rejection, load_pieces, notes_fingerprint, rejection_for
from etude.errors import InputError
from etude.paths import ensure_dir

log = logging.getLogger(__name__)
# bump when the layout above or what ingest writes changes: old caches are then rebuilt (4: files in
# bars of one beat get bars found from their notes)
FORMAT = 4


@dataclass
class _Encoded:
    id: str
    file_id: str
    genre: str
    seconds: float
    fingerprint: str
    rows: np.ndarray
    source_tracks: tuple[int, int]  # (pitched, drum) tracks of the file
    fit: tuple[float, float]  # grid fit of the file's own grid and of the one encoded (etude.data.beats)


_worker: dict[str, Any] = {}


def _init_worker(state: dict, data_cfg: DataConfig) -> None:
    _worker["encoding"] = encoding_from_state(state)
    _worker["cfg"] = data_cfg


def _load_and_encode(src: SourceFile) -> list[_Encoded] | Rejection:
    result = load_pieces(src.path, src.id, src.genre, _worker["cfg"])
    if isinstance(result, Rejection):
        return result
    enc: Encoding = _worker["encoding"]
    out = []
    for p in result:
        score, before, after = fit_to_grid(p.score, _worker["cfg"].retime)
        rows = enc.encode(score, p.genre)
        out.append(
            _Encoded(
                p.id, src.id, p.genre, p.seconds, notes_fingerprint(p.score), rows, p.source_tracks, (before, after)
            )
        )
    return out


def _results(files: list[SourceFile], state: dict, cfg: DataConfig, workers: int, limits: Limits):
    """Yield each file's result in corpus order, from `workers` processes where a crash, a hang
    or a memory blow-up costs only that file (a rejection with the reason)."""
    results = isolated_map(_load_and_encode, files, workers, _init_worker, (state, cfg), limits)
    for src, result in zip(files, results):
        yield rejection_for(result, src.id) if isinstance(result, Failed) else result


def corpus_fingerprint(files: list[SourceFile]) -> str:
    rows = []
    for f in files:
        st = f.path.stat() if f.path.exists() else None
        rows.append((f.id, f.genre, st.st_size if st else -1, st.st_mtime_ns if st else -1))
    return settings_hash(rows)


def prepare(
    corpus: Path,
    out: Path,
    data: DataConfig | None = None,
    encoding: EncodingConfig | None = None,
    genre: str | None = None,
    workers: int | None = None,
    force: bool = False,
    append: bool = False,
    limits: Limits = Limits(),
) -> dict[str, Any]:
    """Prepare `corpus` into `out` (layout in the module docstring) and return its meta.

    Files are read in worker processes under `limits` (time and memory per file): a file that
    crashes the reader, hangs or blows up memory is rejected with that reason.

    Nothing is done when `out` already holds the same settings for the same files, unless
    `force`. With `append`, only files not yet in `out` are read, and their pieces are appended
    to its arrays (same settings and genres required). Raises InputError when the corpus has no
    usable piece; a cache already in `out` is then left as it was.
    """
    data, encoding = data or DataConfig(), encoding or EncodingConfig()
    validate(data, "data.")
    validate(encoding, "encoding.")
    out = Path(out)
    files = discover(corpus, genre)
    settings = {"data": to_dict(data), "encoding": to_dict(encoding)}
    digest = settings_hash(FORMAT, settings, corpus_fingerprint(files))
    old = read_meta(out) if (out / "meta.json").exists() else None
    if old and old.get("settings_hash") == digest and not force:
        log.info("%s is up to date (settings %s); nothing to do", out, digest)
        return old
    base = _Existing.load(out, old, settings) if append else None
    genres = sorted({f.genre for f in files})
    if base is not None:
        new_genres = sorted(set(genres) - set(base.meta["genres"]))
        if new_genres:
            raise InputError(
                f"cannot append genre(s) {', '.join(new_genres)}: the vocabulary is fixed; prepare anew without "
                "--append"
            )
        genres = base.meta["genres"]
        files = [f for f in files if f.id not in base.file_ids]
        log.info("appending %d new file(s) to %s", len(files), out)
    elif old:
        log.info("settings or files changed: rebuilding %s", out)
    enc = make_encoding(encoding, genres)
    work = scratch_dir(out)
    try:
        return _build(
            files, enc, data, out, work, workers or os.cpu_count() or 1, settings, digest, corpus, base, limits
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scratch_dir(out: Path) -> Path:
    """A fresh `out/.building-PID` (per process: two preparations of one folder must not share
    it); scratch folders left by killed preparations are removed first."""
    ensure_dir(out, "data folder")
    for old in out.glob(".building-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    work = out / f".building-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


@dataclass
class _Existing:
    """What an append keeps of a prepared folder."""

    meta: dict[str, Any]
    records: list[PieceRecord]  # pieces.csv rows
    file_ids: set[str]  # files already stored or rejected
    fingerprints: dict[str, str]  # notes fingerprint -> piece id

    @classmethod
    def load(cls, out: Path, meta: dict[str, Any] | None, settings: dict) -> _Existing:
        if meta is None:
            raise InputError(f"nothing to append to: {out} is not a prepared data folder")
        if meta.get("format") != FORMAT or meta["settings"] != settings:
            raise InputError(f"{out} was prepared with other settings; append needs the same ones (or prepare anew)")
        records = [PieceRecord.of(r) for r in read_pieces(out / "pieces.csv")]
        ids = {r.id.split("#")[0] for r in records} | {r["path"] for r in meta["rejections"]}
        prints = {r.fingerprint: r.id for r in records if r.fingerprint and r.transpose == 0}
        return cls(meta, records, ids, prints)


def _encode_all(files, enc, data, workers, work: Path, seen: dict[str, str], limits: Limits):
    """Pass 1: parse and encode every file into the scratch file work/all.bin, dropping pieces
    whose notes are already in `seen`. Returns the kept pieces (in corpus order) and rejections."""
    rejections: list[Rejection] = []
    pieces: list[dict] = []
    n_rows = 0
    with open(work / "all.bin", "wb") as scratch:
        bar = tqdm(
            _results(files, enc.state(), data, workers, limits),
            total=len(files),
            desc="prepare",
            unit="file",
            disable=None,
        )
        for result in bar:
            if isinstance(result, Rejection):
                rejections.append(result)
                continue
            for p in result:
                if p.fingerprint in seen:
                    rejections.append(Rejection(p.id, DUPLICATE, f"same notes as {seen[p.fingerprint]}"))
                    continue
                seen[p.fingerprint] = p.id
                scratch.write(p.rows.tobytes())
                pieces.append(
                    dict(
                        id=p.id,
                        file_id=p.file_id,
                        genre=p.genre,
                        seconds=p.seconds,
                        start=n_rows,
                        rows=len(p.rows),
                        fingerprint=p.fingerprint,
                        tracks=p.source_tracks,
                        fit=p.fit,
                    )
                )
                n_rows += len(p.rows)
    return pieces, rejections, n_rows


def _write_splits(pieces, split, enc, data, work: Path, n_rows: int) -> list[PieceRecord]:
    """Pass 2: copy each piece (and its transpositions, train only) from the scratch file into
    work/{split}.bin and work/{split}.idx.npy. Returns the pieces.csv rows."""
    scratch_rows = np.memmap(work / "all.bin", dtype=enc.dtype, mode="r", shape=(n_rows, enc.row_size))
    genre_index = {g: i for i, g in enumerate(enc.genres)}
    records = []
    for name in SPLITS:
        index = []
        written = 0
        with open(work / f"{name}.bin", "wb") as fh:
            for p in (p for p in pieces if split[p["file_id"]] == name):
                rows = np.asarray(scratch_rows[p["start"] : p["start"] + p["rows"]])
                shifts = [0] + ([k for k in range(-data.transpose, data.transpose + 1) if k] if name == "train" else [])
                for k in shifts:
                    moved = rows if k == 0 else enc.transpose(rows if enc.row_size > 1 else rows[:, 0], k)
                    if moved is None:
                        continue
                    moved = moved.reshape(-1, enc.row_size)
                    fh.write(np.ascontiguousarray(moved).tobytes())
                    index.append((written, len(moved), genre_index[p["genre"]]))
                    written += len(moved)
                    fingerprint = p["fingerprint"] if k == 0 else ""
                    records.append(
                        PieceRecord(
                            p["id"],
                            p["genre"],
                            name,
                            round(p["seconds"], 3),
                            len(moved),
                            k,
                            fingerprint,
                            *(round(f, 4) for f in p["fit"]),
                        )
                    )
        np.save(work / f"{name}.idx.npy", np.array(index, dtype=np.int64).reshape(-1, 3))
    del scratch_rows
    (work / "all.bin").unlink()
    return records


def _counts(records: list[PieceRecord]) -> dict[str, dict[str, dict[str, float]]]:
    """Pieces, transposed copies, rows and seconds per split and genre, from pieces.csv rows."""
    counts: dict[str, dict[str, Counter]] = {s: defaultdict(Counter) for s in SPLITS}
    for r in records:
        c = counts[r.split][r.genre]
        c["pieces" if r.transpose == 0 else "augmented"] += 1
        c["tokens"] += r.rows
        c["seconds"] += r.seconds if r.transpose == 0 else 0.0
    return {s: {g: dict(c) for g, c in sorted(counts[s].items())} for s in SPLITS}


def _build(
    files, enc, data, out, work, workers, settings, digest, corpus, base: _Existing | None, limits: Limits
) -> dict[str, Any]:
    pieces, rejections, n_rows = _encode_all(
        files, enc, data, workers, work, dict(base.fingerprints) if base else {}, limits
    )
    if not pieces and base is None:
        reasons = Counter(r.reason for r in rejections)
        summary = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        raise InputError(f"no usable piece in {corpus}: {len(files)} file(s) rejected ({summary})")

    previous = load_split(out / "split.json")
    by_genre: dict[str, set[str]] = defaultdict(set)
    for p in pieces:
        by_genre[p["genre"]].add(p["file_id"])
    if base:  # the stored files count towards each genre's proportions
        for r in base.records:
            if r.transpose == 0:
                by_genre[r.genre].add(r.id.split("#")[0])
    split = assign_split({g: sorted(ids) for g, ids in by_genre.items()}, data, previous)
    records = _write_splits(pieces, split, enc, data, work, n_rows)
    if base:
        records = base.records + records
        rejections = [Rejection(r["path"], r["reason"], r["detail"]) for r in base.meta["rejections"]] + rejections
        for name in SPLITS:  # the new rows go after the stored ones
            stored = np.load(out / f"{name}.idx.npy")
            new = np.load(work / f"{name}.idx.npy")
            new[:, 0] += int(stored[:, 1].sum()) if len(stored) else 0
            np.save(work / f"{name}.idx.npy", np.concatenate([stored, new]).reshape(-1, 3))

    write_pieces(work / "pieces.csv", records)
    save_encoding(enc, work / "tokenizer.json")
    meta = {
        **meta_header(enc, digest, settings, corpus),
        "files": len(files) + (base.meta["files"] if base else 0),
        "counts": _counts(records),
        "reduction": _reduction(pieces, base.meta.get("reduction") if base else None),
        "grid": _grid(records),
        "rejection_counts": dict(Counter(r.reason for r in rejections).most_common()),
        "rejections": [{"path": r.path, "reason": r.reason, "detail": r.detail} for r in rejections],
    }
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    # Install: the old meta goes first and the new one last, so a half-written folder never passes
    # as up to date. Appended rows go after the stored ones, which the old index still describes.
    (out / "meta.json").unlink(missing_ok=True)
    for name in SPLITS if base else ():
        with open(out / f"{name}.bin", "ab") as dst, open(work / f"{name}.bin", "rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
        (work / f"{name}.bin").unlink()
    install(work, out)
    save_split(out / "split.json", split)
    log.info("prepared %d new pieces (%d rejected) into %s", len(pieces), len(rejections), out)
    return meta


class PieceRecord(NamedTuple):
    """One row of pieces.csv: a stored piece (or a transposed copy of one)."""

    id: str  # file id, with "#N" for the Nth clip of a long file
    genre: str
    split: str  # train | valid | test
    seconds: float
    rows: int  # tokens or frames stored
    transpose: int  # semitones this copy is shifted by (0: the piece itself)
    fingerprint: str  # notes fingerprint of the piece itself ("" for copies)
    fit_before: float = float("nan")  # grid fit of the file's own beat grid (etude.data.beats.grid_fit); nan: none
    fit_after: float = float("nan")  # grid fit of the grid encoded: re-timed where the file's did not fit

    @classmethod
    def of(cls, row: dict[str, str]) -> PieceRecord:
        """A record from a row read by `read_pieces`."""
        return cls(
            row["id"],
            row["genre"],
            row["split"],
            float(row["seconds"]),
            int(row["rows"]),
            int(row["transpose"]),
            row["fingerprint"],
            float(row["fit_before"]),
            float(row["fit_after"]),
        )


PIECE_COLUMNS = PieceRecord._fields


def _reduction(pieces: list[dict], stored: dict | None) -> dict[str, Any]:
    """How files became piano parts: the rule, and per genre the files kept, those with several
    pitched tracks merged and those with drum tracks dropped (stored counts of an append added)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for g, c in ((stored or {}).get("genres") or {}).items():
        counts[g].update(c)
    files = {p["file_id"]: p for p in pieces}  # clips of one file count once
    for p in files.values():
        pitched, drums = p["tracks"]
        counts[p["genre"]].update({"files": 1, "merged": int(pitched > 1), "drums_dropped": int(drums > 0)})
    return {"rule": REDUCTION, "genres": {g: dict(c) for g, c in sorted(counts.items())}}


def _grid(records: list[PieceRecord]) -> dict[str, Any]:
    """How well each genre's pieces sit on a beat grid: per genre the pieces, those re-timed, and
    the median grid fit of the files' own grids and of the grids encoded."""
    by_genre: dict[str, list[PieceRecord]] = defaultdict(list)
    for r in records:
        if r.transpose == 0:
            by_genre[r.genre].append(r)
    genres = {}
    for genre, rows in sorted(by_genre.items()):
        before = np.array([r.fit_before for r in rows])
        after = np.array([r.fit_after for r in rows])
        genres[genre] = {
            "pieces": len(rows),
            "retimed": int(np.sum(after != before)),
            "fit_before": round(float(np.nanmedian(before)), 3),
            "fit_after": round(float(np.nanmedian(after)), 3),
        }
    rule = (
        f"share of onsets within a 16th or a triplet 8th of the beat grid; files under {KEEP_FIT} "
        "re-timed onto the beats found from their notes (etude.data.beats)"
    )
    return {"rule": rule, "genres": genres}


def meta_header(enc: Encoding, digest: str, settings: dict, corpus: Path | str) -> dict[str, Any]:
    """The part of meta.json that says what a prepared folder holds and how it was made (format,
    version, settings and their hash, corpus, genres, vocabulary, row layout)."""
    return {
        "format": FORMAT,
        "etude_version": __version__,
        "settings_hash": digest,
        "settings": settings,
        "corpus": str(corpus),
        "genres": enc.genres,
        "vocab_size": enc.vocab_size,
        "vocab": enc.vocab,
        "row_size": enc.row_size,
        "dtype": np.dtype(enc.dtype).name,
    }


def write_pieces(path: Path, records: list[PieceRecord]) -> None:
    """pieces.csv: one row per stored piece (PIECE_COLUMNS, described in the module docstring).

    UTF-8, with file names that are not valid UTF-8 kept byte for byte (surrogateescape)."""
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.writer(fh)
        writer.writerow(PIECE_COLUMNS)
        writer.writerows(records)


def read_pieces(path: Path) -> list[dict[str, str]]:
    """The rows of a pieces.csv, by column name."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def install(work: Path, out: Path) -> None:
    """Move a built folder's files into `out`: the old meta.json goes first and the new one last,
    so a half-installed folder never passes as up to date."""
    (out / "meta.json").unlink(missing_ok=True)
    for f in sorted(work.iterdir(), key=lambda f: f.name == "meta.json"):
        os.replace(f, out / f.name)


def read_meta(data_dir: Path) -> dict[str, Any]:
    path = Path(data_dir) / "meta.json"
    if not path.exists():
        raise InputError(f"{data_dir} is not a prepared data folder (no meta.json); run `etude data prepare` first")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def open_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows of one split as a read-only memmap (rows, row_size) and its index (pieces, 3)."""
    meta = read_meta(data_dir)
    index = np.load(Path(data_dir) / f"{split}.idx.npy")
    total = int(index[:, 1].sum()) if len(index) else 0
    if total == 0:
        return np.zeros((0, meta["row_size"]), dtype=meta["dtype"]), index
    rows = np.memmap(Path(data_dir) / f"{split}.bin", dtype=meta["dtype"], mode="r", shape=(total, meta["row_size"]))
    return rows, index


def tokens_per_second(data_dir: Path, quantile: float = 0.99) -> float | None:
    """The `quantile` of the training pieces' tokens per second of music (transposed copies left
    out), or None for piano-roll data (a fixed number of frames per second)."""
    if read_meta(data_dir)["settings"]["encoding"]["name"] == "pianoroll":
        return None
    density = [
        r.rows / r.seconds
        for r in map(PieceRecord.of, read_pieces(Path(data_dir) / "pieces.csv"))
        if r.split == "train" and r.transpose == 0 and r.seconds > 0
    ]
    return float(np.quantile(density, quantile)) if density else None


def open_encoding(data_dir: Path) -> Encoding:
    return load_encoding(Path(data_dir) / "tokenizer.json")
