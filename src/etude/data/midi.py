"""One MIDI file in, pieces or a rejection out: read with symusic, reduce to one piano part, check.

Times stay in ticks (symusic's `Tick` time unit). A piece is a `symusic.Score` with exactly one
non-drum track (program 0, acoustic grand piano), its tempos and time signatures kept.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from symusic import Score, Tempo, TimeSignature, Track
from symusic.core import NoteTickList

from etude.config import DataConfig
from etude.data.isolation import Failed, Limits, isolated_map
from etude.errors import InputError

PIANO_LOW, PIANO_HIGH = 21, 108  # MIDI pitches of the piano's lowest and highest keys

# Rejection reasons, as counted and listed in meta.json and `etude data info`.
UNREADABLE = "unreadable or corrupt"
EMPTY = "empty"
NO_PITCHED = "no pitched notes (drums only)"
TOO_SHORT = "shorter than min_seconds"
TOO_LONG = "longer than max_seconds"
DUPLICATE = "duplicate of another piece"
NOT_FOUND = "not found"
NOT_A_FILE = "not a regular file (device, pipe, socket, broken link or link loop)"
TOO_LARGE = "larger than the MIDI size limit"
CRASHED = "crashed the MIDI reader"
TIMED_OUT = "took longer than the time limit per file"
OUT_OF_MEMORY = "needed more than the memory limit per file"

MAX_MIDI_BYTES = 64 << 20  # the largest MIDI file read; real ones are kilobytes to a few megabytes


@dataclass
class Piece:
    """A piano piece: one track in ticks, with its genre and where it came from."""

    id: str  # corpus-relative path, with "#k" for the k-th clip of a long file
    genre: str
    score: Score  # one piano track, tempos and time signatures kept, time unit Tick
    seconds: float  # duration from start to the last note-off, in seconds
    source_tracks: tuple[int, int] = (1, 0)  # (pitched, drum) tracks with notes in the file it came from


@dataclass
class Rejection:
    """A file that gave no piece, with the reason (one of the constants above)."""

    path: str
    reason: str
    detail: str = ""


def file_problem(path: Path) -> tuple[str, str] | None:
    """(reason, detail) when `path` cannot be read as a MIDI file at all, else None: a missing
    file, a special file (/dev/zero, a pipe), a broken link or a link loop, a file over MAX_MIDI_BYTES."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and not os.path.lexists(path):
            return NOT_FOUND, "no such file"
        what = "link loop" if exc.errno == errno.ELOOP else "broken link" if exc.errno == errno.ENOENT else exc.strerror
        return NOT_A_FILE, str(what)
    if not stat.S_ISREG(st.st_mode):
        return NOT_A_FILE, "not a regular file"
    if st.st_size > MAX_MIDI_BYTES:
        return TOO_LARGE, f"{st.st_size / 2**20:.0f} MiB > {MAX_MIDI_BYTES >> 20} MiB"
    return None


def check_chunks(data: bytes) -> bytes:
    """The part of `data` that the header declares: the header and its tracks' chunks, each
    checked to fit in the file. Bytes after the last declared track are ignored (some real files
    end in junk); a declared track cut short raises ValueError, as does a time division of 0.

    symusic 0.5.9 sometimes reads past the end of a truncated file's buffer and returns garbage
    instead of failing, so framing is checked here first.
    """
    if not data:
        raise ValueError("zero bytes")
    if data[:4] != b"MThd" or len(data) < 14:
        raise ValueError("no MIDI header (MThd)")
    pos = 8 + int.from_bytes(data[4:8], "big")
    n_tracks = int.from_bytes(data[10:12], "big")
    if int.from_bytes(data[12:14], "big") == 0:
        raise ValueError("header: time division of 0 ticks per quarter note")
    found = 0
    while found < n_tracks and pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "big")
        if pos + 8 + size > len(data):
            raise ValueError(f"truncated: chunk at byte {pos} needs {size} bytes, {len(data) - pos - 8} remain")
        found += data[pos : pos + 4] == b"MTrk"
        pos += 8 + size
    if found < n_tracks:
        raise ValueError(f"truncated: header announces {n_tracks} tracks, file holds {found}")
    return data[:pos]


def read_score(path: Path) -> Score:
    """Parse a MIDI file with symusic; raises ValueError/RuntimeError/OSError on bad files.

    Run it where a native crash costs only this file (etude.data.isolation) when the file is
    not trusted."""
    problem = file_problem(path)
    if problem:
        raise ValueError(f"{problem[0]}: {problem[1]}")
    return _parse(path)


def _parse(path: Path) -> Score:
    """symusic's reading of a regular file's declared chunks (file_problem already checked)."""
    return Score.from_midi(check_chunks(Path(path).read_bytes()))


def _sustained_ends(times: np.ndarray, ends: np.ndarray, pedals: dict) -> np.ndarray:
    """Note ends extended to the pedal release when a note ends while the pedal is down."""
    if len(pedals["time"]) == 0:
        return ends
    order = np.argsort(pedals["time"], kind="stable")
    down = pedals["time"][order].astype(np.int64)
    up = down + pedals["duration"][order].astype(np.int64)
    k = np.searchsorted(down, ends, side="right") - 1
    held = (k >= 0) & (ends < up[np.maximum(k, 0)])
    return np.where(held, np.maximum(ends, up[np.maximum(k, 0)]), ends)


def _fold_into_piano(pitch: np.ndarray) -> np.ndarray:
    """Pitches outside the piano's range moved by whole octaves onto its keys."""
    pitch = pitch.astype(np.int64)
    below = pitch < PIANO_LOW
    pitch[below] += 12 * ((PIANO_LOW - pitch[below] + 11) // 12)
    above = pitch > PIANO_HIGH
    pitch[above] -= 12 * ((pitch[above] - PIANO_HIGH + 11) // 12)
    return pitch


def _resolve_overlaps(time, end, pitch, vel):
    """One sounding note per key: a re-struck key cuts the note before it; same-onset repeats merge."""
    order = np.lexsort((-end, time, pitch))
    time, end, pitch, vel = time[order], end[order], pitch[order], vel[order]
    same_key_next = np.r_[pitch[1:] == pitch[:-1], False]
    next_time = np.r_[time[1:], 0]
    duplicate = np.r_[False, (pitch[1:] == pitch[:-1]) & (time[1:] == time[:-1])]
    cut = same_key_next & (next_time > time)
    end = np.where(cut, np.minimum(end, next_time), end)
    keep = ~duplicate
    time, end, pitch, vel = time[keep], end[keep], pitch[keep], vel[keep]
    order = np.lexsort((pitch, time))
    return time[order], end[order], pitch[order], vel[order]


REDUCTION = (
    "every pitched track merged into one piano part (a bass line is kept, as the left hand; "
    "melody and accompaniment tracks are all kept), drum tracks (MIDI channel 10) dropped, "
    "sustain pedal applied to note lengths, notes outside the keyboard folded by octaves"
)


def reduce_to_piano(score: Score) -> Score:
    """Merge every non-drum track into one piano track, sustain pedal (CC64) applied to durations
    (REDUCTION says it in words).

    Velocities, tempos and time signatures are kept; notes outside 21..108 are folded by octaves;
    zero-length notes last one tick.
    """
    parts = []
    for track in score.tracks:
        if track.is_drum or track.note_num() == 0:
            continue
        n = track.notes.numpy()
        time = n["time"].astype(np.int64)
        end = time + np.maximum(n["duration"].astype(np.int64), 1)
        end = _sustained_ends(time, end, track.pedals.numpy())
        parts.append((time, end, n["pitch"].astype(np.int64), n["velocity"].astype(np.int64)))
    piano = Score(score.ticks_per_quarter)
    piano.tempos = score.tempos.copy()
    piano.time_signatures = score.time_signatures.copy()
    track = Track(name="Piano", program=0, is_drum=False)
    if parts:
        time, end, pitch, vel = (np.concatenate(a) for a in zip(*parts))
        time, end, pitch, vel = _resolve_overlaps(time, end, _fold_into_piano(pitch), vel)
        track.notes = NoteTickList.from_numpy(
            time.astype(np.int32),
            (end - time).astype(np.int32),
            pitch.astype(np.int8),
            np.clip(vel, 1, 127).astype(np.int8),
        )
    piano.tracks.append(track)
    return piano


def _tempo_table(score: Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ticks, seconds per tick, seconds) at each tempo change of a score, (T,) each, a change
    at tick 0 added at 120 qpm where the score has none."""
    tempos = sorted(((t.time, t.qpm) for t in score.tempos), key=lambda x: x[0])
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0, 120.0))
    ticks = np.array([t for t, _ in tempos], dtype=np.float64)
    qpm = np.array([q for _, q in tempos], dtype=np.float64)
    sec_per_tick = 60.0 / (qpm * score.ticks_per_quarter)
    starts = np.r_[0.0, np.cumsum(np.diff(ticks) * sec_per_tick[:-1])]
    return ticks, sec_per_tick, starts


def seconds_to_ticks(score: Score, seconds: np.ndarray) -> np.ndarray:
    """Tick positions of times given in seconds, through the score's tempo map (120 qpm default)."""
    ticks, sec_per_tick, starts = _tempo_table(score)
    seconds = np.asarray(seconds, dtype=np.float64)
    k = np.searchsorted(starts, seconds, side="right") - 1
    return np.round(ticks[k] + (seconds - starts[k]) / sec_per_tick[k]).astype(np.int64)


def ticks_to_seconds(score: Score, ticks: np.ndarray) -> np.ndarray:
    """Times in seconds of (fractional) tick positions, through the score's tempo map."""
    at, sec_per_tick, starts = _tempo_table(score)
    ticks = np.asarray(ticks, dtype=np.float64)
    k = np.clip(np.searchsorted(at, ticks, side="right") - 1, 0, None)
    return starts[k] + (ticks - at[k]) * sec_per_tick[k]


def first_seconds(score: Score, seconds: float) -> Score:
    """A one-track score's notes that start in its first `seconds` (through its tempo map), cut
    there (clip_score); a score without tracks as it is."""
    if not score.tracks:
        return score
    return clip_score(score, 0, int(seconds_to_ticks(score, np.array([seconds]))[0]))


def clip_score(score: Score, start: int, end: int) -> Score:
    """Notes of a one-track score that start in [start, end) ticks, cut at `end`, moved to tick 0.

    The tempo and time signature in force at `start` are carried to tick 0.
    """
    n = score.tracks[0].notes.numpy()
    time = n["time"].astype(np.int64)
    keep = (time >= start) & (time < end)
    stop = np.minimum(time[keep] + n["duration"][keep], end)
    out = Score(score.ticks_per_quarter)
    for events, kind in ((score.tempos, Tempo), (score.time_signatures, TimeSignature)):
        before = [e for e in events if e.time <= start]
        inside = [e for e in events if start < e.time < end]
        target = out.tempos if kind is Tempo else out.time_signatures
        for i, e in enumerate(([before[-1]] if before else []) + inside):
            e = e.copy()
            e.time = 0 if i == 0 and before else e.time - start
            target.append(e)
    track = Track(name="Piano", program=0, is_drum=False)
    track.notes = NoteTickList.from_numpy(
        (time[keep] - start).astype(np.int32),
        (stop - time[keep]).astype(np.int32),
        n["pitch"][keep].astype(np.int8),
        n["velocity"][keep].astype(np.int8),
    )
    out.tracks.append(track)
    return out


def duration_seconds(score: Score) -> float:
    """Seconds from tick 0 to the last note-off."""
    return float(score.to("second").end()) if score.note_num() else 0.0


def notes_fingerprint(score: Score) -> str:
    """Hash of a piece's notes (onset and duration in 10 ms steps, pitch): equal for duplicates."""
    n = score.to("second").tracks[0].notes.numpy()
    rows = np.stack([np.round(n["time"] * 100), np.round(n["duration"] * 100), n["pitch"].astype(np.float64)]).astype(
        np.int64
    )
    return hashlib.sha1(rows.tobytes()).hexdigest()


def load_pieces(path: Path, piece_id: str, genre: str, cfg: DataConfig) -> list[Piece] | Rejection:
    """Read one MIDI file into one or more pieces (clips of a long file), or say why not."""
    problem = file_problem(path)
    if problem:
        return Rejection(piece_id, *problem)
    try:
        score = _parse(path)
    except (ValueError, RuntimeError, OSError, IndexError, OverflowError) as exc:
        return Rejection(piece_id, UNREADABLE, str(exc)[:200])
    if score.note_num() == 0:
        return Rejection(piece_id, EMPTY, "no notes")
    piano = reduce_to_piano(score)
    if piano.note_num() == 0:
        return Rejection(piece_id, NO_PITCHED)
    seconds = duration_seconds(piano)
    if seconds < cfg.min_seconds:
        return Rejection(piece_id, TOO_SHORT, f"{seconds:.1f} s < {cfg.min_seconds:g} s")
    tracks = tuple(sum(t.note_num() > 0 and t.is_drum == drum for t in score.tracks) for drum in (False, True))
    if seconds <= cfg.max_seconds:
        return [Piece(piece_id, genre, piano, seconds, tracks)]
    if cfg.long_pieces != "clip":
        return Rejection(piece_id, TOO_LONG, f"{seconds:.1f} s > {cfg.max_seconds:g} s")
    n_clips = int(np.ceil(seconds / cfg.max_seconds))
    bounds = seconds_to_ticks(piano, np.arange(n_clips + 1) * cfg.max_seconds)
    pieces = []
    for k in range(n_clips):
        clip = clip_score(piano, int(bounds[k]), int(bounds[k + 1]))
        clip_seconds = duration_seconds(clip)
        if clip_seconds >= cfg.min_seconds:
            pieces.append(Piece(f"{piece_id}#{k}", genre, clip, clip_seconds, tracks))
    return pieces or Rejection(piece_id, TOO_SHORT, "no clip reached min_seconds")


_FAILED = {"crashed": CRASHED, "timed out": TIMED_OUT, "out of memory": OUT_OF_MEMORY, "error": UNREADABLE}


def rejection_for(failed: Failed, piece_id: str) -> Rejection:
    """The rejection of a file whose reading failed in an isolated worker (etude.data.isolation)."""
    return Rejection(piece_id, _FAILED[failed.kind], failed.detail)


def _whole_file(item: tuple[Path, str]) -> list[Piece] | Rejection:
    path, genre = item
    return load_pieces(path, path.name, genre, DataConfig(min_seconds=0, max_seconds=float("inf")))


def read_piece(path: Path, genre: str = "", limits: Limits = Limits()) -> Score:
    """One MIDI file from anywhere (a primer, a piece to perform or classify) as one piano score,
    whatever its length, read in a worker process so that a crafted file costs an error, not the
    program. Raises InputError with the reason."""
    result = next(isolated_map(_whole_file, [(Path(path), genre)], workers=1, limits=limits))
    if isinstance(result, Failed):
        result = rejection_for(result, str(path))
    if isinstance(result, Rejection):
        raise InputError(f"{path}: {result.reason} {result.detail}".strip())
    return result[0].score
