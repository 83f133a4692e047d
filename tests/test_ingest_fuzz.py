"""Crafted and broken MIDI files beside good ones: `data prepare` finishes, every file becomes a
piece or a rejection with a reason, and memory stays bounded.

The crafted set reproduces each fault seen in the field: a native abort in the parser (a valid
header and a track of noise), division 0, an int32 overflow when resampling extreme tempi, noise
after a valid header, special files, link loops, a name that is not UTF-8; and fuzzes the rest
(truncations at many offsets, bit flips, absurd header fields and chunk lengths, huge note counts).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from symusic import Note, Score, Tempo, Track

HEADER = b"MThd" + struct.pack(">IHHH", 6, 1, 1, 480)


def _track_of(noise: bytes) -> bytes:
    return b"MTrk" + struct.pack(">I", len(noise)) + noise


def _noise(seed: int, n: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(n))


def _score(tpq: int, mspq: int, notes: list[tuple[int, int, int]]) -> bytes:
    s = Score(tpq)
    s.tempos.append(Tempo(0, mspq=mspq))
    t = Track(program=0)
    for time, duration, pitch in notes:
        t.notes.append(Note(time, duration, pitch, 80))
    s.tracks.append(t)
    return s.dumps_midi()


def crafted_files(base: bytes) -> dict[str, bytes]:
    """name -> bytes of every crafted file (regular files only)."""
    rng = random.Random(0)
    files: dict[str, bytes] = {}
    for k, cut in enumerate(sorted(rng.sample(range(1, len(base)), 24))):
        files[f"truncated_{k:02d}.mid"] = base[:cut]
    for k in range(40):
        flipped = bytearray(base)
        for _ in range(1 + k % 5):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        files[f"bitflip_{k:02d}.mid"] = bytes(flipped)
    files["division_0.mid"] = base[:12] + b"\x00\x00" + base[14:]
    files["tracks_65535.mid"] = base[:10] + b"\xff\xff" + base[12:]
    files["chunk_4gb.mid"] = HEADER + b"MTrk" + b"\xff\xff\xff\xff" + b"\x00" * 64
    files["header_len_huge.mid"] = b"MThd\x7f\xff\xff\xff" + base[8:]
    files["native_abort.mid"] = HEADER + _track_of(_noise(5, 200_000))  # double free in symusic 0.5.9
    files["noise_after_header.mid"] = HEADER + _noise(7, 20 << 20)  # 20 MB
    files["junk_after_tracks.mid"] = base + b"\x00\x00\x80\x43junk" * 16  # kept: read the declared tracks
    files["tempo_overflow.mid"] = _score(1, 1, [(k * 700_000, 1, 60) for k in range(3000)])
    files["many_notes.mid"] = _score(480, 500_000, [(k * 3, 2, 21 + k % 88) for k in range(200_000)])
    files["zero_bytes.mid"] = b""
    return files


def build_corpus(root: Path, good_corpus: Path) -> dict[str, str]:
    """Good pieces and crafted files under root/{march,waltz,fuzz}; returns special name -> expected reason."""
    shutil.copytree(good_corpus, root)
    fuzz = root / "fuzz"
    fuzz.mkdir()
    base = (good_corpus / "march" / "march0.mid").read_bytes()
    for name, data in crafted_files(base).items():
        (fuzz / name).write_bytes(data)
    os.mkfifo(fuzz / "a_pipe.mid")
    os.symlink("/dev/zero", fuzz / "dev_zero.mid")
    os.symlink("loop.mid", fuzz / "loop.mid")
    os.symlink("nowhere.mid", fuzz / "broken.mid")
    os.symlink("..", fuzz / "parent_loop")  # a folder link back up: walked once, not for ever
    shutil.copy(good_corpus / "waltz" / "waltz0.mid", os.fsdecode(os.fsencode(str(fuzz)) + b"/caf\xe9.mid"))
    return {
        "a_pipe.mid": "not a regular file",
        "dev_zero.mid": "not a regular file",
        "loop.mid": "not a regular file",
        "broken.mid": "not a regular file",
    }


RUNNER = """
import json, resource, sys
from pathlib import Path
from etude.config import DataConfig
from etude.data import prepare
from etude.data.isolation import Limits
limits = Limits(seconds=20, memory_mb=1024)
meta = prepare(Path(sys.argv[1]), Path(sys.argv[2]), DataConfig(min_seconds=1.0), workers=2, limits=limits)
peak = {w: resource.getrusage(getattr(resource, w)).ru_maxrss >> 10 for w in ("RUSAGE_SELF", "RUSAGE_CHILDREN")}
print(json.dumps({"files": meta["files"], "rejections": meta["rejections"], "peak_mb": peak}))
"""


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, good_corpus=Path(__file__).parent / "data" / "good"):
    root = tmp_path_factory.mktemp("fuzz")
    specials = build_corpus(root / "corpus", good_corpus)
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(root / "corpus"), str(root / "data")], capture_output=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return root, specials, json.loads(proc.stdout.decode().splitlines()[-1]), proc.stderr.decode(errors="replace")


def test_every_file_is_a_piece_or_a_rejection_with_a_reason(fuzzed):
    root, specials, report, _ = fuzzed
    from etude.data.store import read_pieces

    stored = {r["id"].split("#")[0] for r in read_pieces(root / "data" / "pieces.csv")}
    rejected = {r["path"]: r["reason"] for r in report["rejections"]}
    listed = {
        p.relative_to(root / "corpus").as_posix()
        for p in (root / "corpus").rglob("*.mid*")
        if "parent_loop" not in p.parts
    }
    assert not stored & set(rejected)
    assert stored | set(rejected) == listed  # nothing twice through the link to ".."
    assert all(reason for reason in rejected.values())
    for name, reason in specials.items():
        assert rejected[f"fuzz/{name}"].startswith(reason)
    assert rejected["fuzz/native_abort.mid"] == "crashed the MIDI reader"
    assert rejected["fuzz/division_0.mid"] == rejected["fuzz/noise_after_header.mid"] == "unreadable or corrupt"
    assert rejected["fuzz/tempo_overflow.mid"] == "unreadable or corrupt"
    assert rejected["fuzz/junk_after_tracks.mid"] == "duplicate of another piece"  # read whole: march0's notes
    assert "fuzz/many_notes.mid" in stored
    assert {"march/march1.mid", "march/march2.mid", "waltz/waltz1.mid", "waltz/waltz2.mid"} <= stored
    for copied in ("march/march0.mid", "waltz/waltz0.mid"):  # crafted copies sort first and keep the notes
        assert copied in stored or rejected[copied] == "duplicate of another piece"
    by_reason = Counter(rejected.values())
    print(f"\n{len(listed)} files tried: {len(stored)} kept, rejected by reason: {dict(by_reason)}")


def test_a_name_that_is_not_utf8_is_kept_losslessly(fuzzed):
    root, _, _, _ = fuzzed
    from etude.data.store import read_pieces

    ids = [r["id"] for r in read_pieces(root / "data" / "pieces.csv")]
    name = os.fsdecode(b"fuzz/caf\xe9.mid")
    assert (
        name in ids
        or f"{name}#0" in ids
        or any(r["path"] == name for r in json.loads((root / "data" / "meta.json").read_text())["rejections"])
    )
    assert os.fsencode(name) == b"fuzz/caf\xe9.mid"


def test_memory_stays_bounded_and_the_output_is_quiet(fuzzed):
    _, _, report, stderr = fuzzed
    assert report["peak_mb"]["RUSAGE_SELF"] < 1500, report["peak_mb"]
    assert report["peak_mb"]["RUSAGE_CHILDREN"] < 1500, report["peak_mb"]
    assert "Traceback" not in stderr and "double free" not in stderr
