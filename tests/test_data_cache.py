import json
import shutil

import numpy as np
import pytest

from etude.config import DataConfig, EncodingConfig
from etude.data import info, open_encoding, open_split, prepare, read_meta
from etude.data.store import read_pieces
from etude.errors import InputError

SMALL = DataConfig(min_seconds=1.0, test_frac=0.34, valid_frac=0.5)


def test_prepare_writes_memmapped_splits(tmp_path, good_corpus):
    meta = prepare(good_corpus, tmp_path / "d", SMALL, workers=1)
    assert meta["genres"] == ["march", "waltz"]
    assert meta["rejection_counts"] == {}
    enc = open_encoding(tmp_path / "d")
    total = 0
    for split in ("train", "valid", "test"):
        rows, index = open_split(tmp_path / "d", split)
        assert rows.dtype == np.uint16 and rows.shape[1] == 1
        for start, length, genre in index:
            piece = rows[start : start + length, 0]
            assert piece[0] == enc.genre_id(meta["genres"][genre])  # genre token first
            assert piece[-1] == enc.eos_id
            assert enc.decode(piece).note_num() > 0
        total += len(index)
    assert total == 7
    split = json.loads((tmp_path / "d" / "split.json").read_text())
    assert len(split) == 7 and set(split.values()) == {"train", "valid", "test"}
    # pedal_and_drums.mid: two pitched tracks merged, its drum track dropped; said in data info
    assert meta["reduction"]["genres"] == {
        "march": {"files": 3, "merged": 0, "drums_dropped": 0},
        "waltz": {"files": 4, "merged": 1, "drums_dropped": 1},
    }
    text = info(tmp_path / "d")
    assert "piano part: every pitched track merged" in text and "drum tracks (MIDI channel 10) dropped" in text


def test_same_settings_do_nothing_changed_settings_rebuild(tmp_path, good_corpus):
    out = tmp_path / "d"
    prepare(good_corpus, out, SMALL, workers=1)
    stamp = (out / "train.bin").stat().st_mtime_ns
    prepare(good_corpus, out, SMALL, workers=1)
    assert (out / "train.bin").stat().st_mtime_ns == stamp
    meta = prepare(good_corpus, out, SMALL, EncodingConfig(name="tsd"), workers=1)
    assert meta["settings"]["encoding"]["name"] == "tsd"
    assert read_meta(out)["settings_hash"] == meta["settings_hash"]


def test_split_file_is_reused_on_rebuild(tmp_path, good_corpus):
    out = tmp_path / "d"
    prepare(good_corpus, out, SMALL, workers=1)
    split = json.loads((out / "split.json").read_text())
    moved = next(k for k, v in split.items() if v == "train")
    split[moved] = "test"
    (out / "split.json").write_text(json.dumps(split))
    prepare(good_corpus, out, SMALL, EncodingConfig(beat_res=4), workers=1)
    assert json.loads((out / "split.json").read_text())[moved] == "test"
    rows = {r["id"]: r for r in read_pieces(out / "pieces.csv")}
    assert rows[moved]["split"] == "test" and rows[moved]["genre"] == moved.split("/")[0]


def test_bad_files_are_counted_and_listed(tmp_path, good_corpus, corrupt_dir):
    corpus = tmp_path / "c"
    shutil.copytree(good_corpus, corpus)
    shutil.copytree(corrupt_dir, corpus / "waltz" / "bad")
    shutil.copy(good_corpus / "march" / "march0.mid", corpus / "waltz" / "copy.mid")  # duplicate
    meta = prepare(corpus, tmp_path / "d", DataConfig(min_seconds=1.0, long_pieces="reject"), workers=2)
    counts = meta["rejection_counts"]
    assert counts["unreadable or corrupt"] == 4
    assert counts["empty"] == counts["no pitched notes (drums only)"] == 1
    assert counts["longer than max_seconds"] == 1
    assert counts["duplicate of another piece"] == 1
    assert {r["path"] for r in meta["rejections"]} >= {"waltz/bad/truncated.mid", "waltz/copy.mid"}
    text = info(tmp_path / "d")
    assert "unreadable or corrupt" in text and "rejected: 9" in text


def test_only_bad_files_is_an_error_and_keeps_old_cache(tmp_path, good_corpus, corrupt_dir):
    out = tmp_path / "d"
    prepare(good_corpus, out, SMALL, workers=1)
    before = (out / "meta.json").read_text()
    with pytest.raises(InputError, match="no usable piece"):
        prepare(corrupt_dir, out, DataConfig(long_pieces="reject"), genre="x", workers=1)
    assert (out / "meta.json").read_text() == before
    assert not list(out.glob(".building*"))


def test_transposition_augments_train_only(tmp_path, good_corpus):
    meta = prepare(
        good_corpus, tmp_path / "d", DataConfig(min_seconds=1.0, test_frac=0.34, valid_frac=0.5, transpose=2), workers=1
    )
    train = meta["counts"]["train"]
    assert sum(c.get("augmented", 0) for c in train.values()) == 4 * sum(c["pieces"] for c in train.values())
    for split in ("valid", "test"):
        assert all(c.get("augmented", 0) == 0 for c in meta["counts"][split].values())
    _, index = open_split(tmp_path / "d", "train")
    assert len(index) == 5 * sum(c["pieces"] for c in train.values())


def test_workers_give_the_same_arrays(tmp_path, good_corpus):
    prepare(good_corpus, tmp_path / "one", SMALL, workers=1)
    prepare(good_corpus, tmp_path / "two", SMALL, workers=2)
    for split in ("train", "valid", "test"):
        a, ia = open_split(tmp_path / "one", split)
        b, ib = open_split(tmp_path / "two", split)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ia, ib)


def test_pianoroll_cache(tmp_path, good_corpus):
    meta = prepare(good_corpus, tmp_path / "d", SMALL, EncodingConfig(name="pianoroll"), workers=1)
    assert meta["row_size"] == 88 and meta["dtype"] == "uint8"
    rows, index = open_split(tmp_path / "d", "train")
    assert rows.shape == (index[:, 1].sum(), 88) and rows.max() == 1


def test_append_reads_only_new_files_and_matches_a_full_build(tmp_path, good_corpus):
    corpus = tmp_path / "c"
    shutil.copytree(good_corpus, corpus)
    later = [corpus / "march" / "march2.mid", corpus / "waltz" / "waltz2.mid"]
    held = tmp_path / "held"
    held.mkdir()
    for p in later:
        shutil.move(p, held / p.name)
    out = tmp_path / "d"
    first = prepare(corpus, out, SMALL, workers=1)
    before = {s: open_split(out, s)[0].copy() for s in ("train", "valid", "test")}
    shutil.move(held / "march2.mid", later[0])
    shutil.move(held / "waltz2.mid", later[1])
    shutil.copy(good_corpus / "march" / "march0.mid", corpus / "march" / "again.mid")  # a duplicate
    meta = prepare(corpus, out, SMALL, workers=1, append=True)
    assert meta["files"] == first["files"] + 3
    assert meta["rejection_counts"] == {"duplicate of another piece": 1}
    total = sum(c["pieces"] for s in meta["counts"].values() for c in s.values())
    assert total == sum(c["pieces"] for s in first["counts"].values() for c in s.values()) + 2
    enc = open_encoding(out)
    for s, old_rows in before.items():  # stored rows untouched, new pieces after them
        rows, index = open_split(out, s)
        np.testing.assert_array_equal(rows[: len(old_rows)], old_rows)
        for start, length, genre in index:
            assert rows[start, 0] == enc.genre_id(meta["genres"][genre])
    split = json.loads((out / "split.json").read_text())
    assert {"march/march2.mid", "waltz/waltz2.mid"} <= set(split)
    assert prepare(corpus, out, SMALL, workers=1) == meta  # now up to date


def test_append_refuses_other_settings_and_new_genres(tmp_path, good_corpus):
    out = tmp_path / "d"
    prepare(good_corpus / "march", out, SMALL, genre="march", workers=1)
    with pytest.raises(InputError, match="other settings"):
        prepare(good_corpus / "march", out, DataConfig(min_seconds=2.0), genre="march", workers=1, append=True)
    with pytest.raises(InputError, match="cannot append genre"):
        prepare(good_corpus, out, SMALL, workers=1, append=True)
    with pytest.raises(InputError, match="nothing to append"):
        prepare(good_corpus, tmp_path / "empty", SMALL, workers=1, append=True)


def test_kill_9_during_prepare_then_a_rerun_recovers_the_right_counts(tmp_path, piano_corpus):
    """200 real ragtime files (links into the piano corpus): a prepare killed with SIGKILL while
    it parses leaves no worker behind, and running it again gives what an uninterrupted run gives."""
    import signal
    import subprocess
    import sys
    import time

    from procs import alive, children

    corpus = tmp_path / "corpus" / "ragtime"
    corpus.mkdir(parents=True)
    for f in sorted((piano_corpus / "ragtime").glob("*.mid"))[:200]:
        (corpus / f.name).symlink_to(f)
    command = [sys.executable, "-m", "etude", "-q", "data", "prepare", str(corpus.parent), "--workers", "2", "--out"]
    proc = subprocess.Popen([*command, str(tmp_path / "cut")], stderr=subprocess.PIPE)
    deadline = time.time() + 120
    scratch = []
    while time.time() < deadline and not any(p.stat().st_size > 0 for p in scratch):
        scratch = list((tmp_path / "cut").glob(".building-*/all.bin"))
        time.sleep(0.01)
    assert scratch, "prepare finished before it could be killed"
    workers = children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert not (tmp_path / "cut" / "meta.json").exists()
    deadline = time.time() + 60  # workers notice their parent's death at their next poll: wait for it, not a fixed time
    while [w for w in workers if alive(w)] and time.time() < deadline:
        time.sleep(0.05)
    assert workers and not [w for w in workers if alive(w)], "workers outlived a killed prepare"
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    subprocess.run([*command, str(tmp_path / "cut")], check=True, capture_output=True, timeout=300)
    subprocess.run([*command, str(tmp_path / "whole")], check=True, capture_output=True, timeout=300)
    cut, whole = read_meta(tmp_path / "cut"), read_meta(tmp_path / "whole")
    assert cut["counts"] == whole["counts"] and cut["rejection_counts"] == whole["rejection_counts"]
    assert list((tmp_path / "cut").glob(".building-*")) == []  # the killed run's scratch is gone
    assert (tmp_path / "cut" / "split.json").read_text() == (tmp_path / "whole" / "split.json").read_text()
