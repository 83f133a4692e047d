"""Misuse of the command line: each case exits with code 2 and one line on stderr, never a traceback.

Settings are validated once, up front, with the valid range in the message; paths that cannot be
written, devices that are not here and sampling settings that would give NaN probabilities are
refused before any work starts."""

from __future__ import annotations

import pickle

import pytest

from etude.cli import main
from test_ingest_fuzz import HEADER, _noise, _track_of

# (case id, argv with {data} {tmp} {file} placeholders, words the one line must contain)
CASES = [
    (
        "old-command-name",
        ["benchmark", "polyphonic", "--data", "{file}"],
        "`etude benchmark` is now `etude polyphonic`",
    ),
    ("out-in-proc", ["train", "{data}", "--preset", "tiny", "--out", "/proc/x/run"], "cannot create run folder"),
    ("out-under-a-file", ["train", "{data}", "--preset", "tiny", "--out", "{file}/run"], "cannot create run folder"),
    ("out-is-dev-null", ["train", "{data}", "--preset", "tiny", "--out", "/dev/null"], "not an empty folder"),
    (
        "generate-out-under-a-file",
        ["generate", "--genre", "jazz", "--length", "2s", "--no-audio", "--out", "{file}/g"],
        "cannot create output folder",
    ),
    ("data-out-in-proc", ["data", "prepare", "{corpus}", "--out", "/proc/x"], "cannot create data folder"),
    (
        "device-cuda-on-cpu-build",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--device", "cuda"],
        "--device cuda",
    ),
    (
        "device-tpu",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--device", "tpu"],
        "invalid choice: 'tpu'",
    ),
    ("generate-device-tpu", ["generate", "--device", "tpu"], "invalid choice: 'tpu'"),
    (
        "hidden-0",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--model.hidden=0"],
        "model.hidden=0 is out of range: valid values are >= 1",
    ),
    (
        "keep-prob-above-1",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--model.keep_prob=1.5"],
        "model.keep_prob=1.5 is out of range: valid values are in (0, 1]",
    ),
    ("keep-prob-0", ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--model.keep_prob=0"], "in (0, 1]"),
    (
        "lr-nan",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--train.lr=nan"],
        "train.lr=nan: a finite number is needed",
    ),
    ("lr-negative", ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--train.lr=-1"], ">= 0"),
    (
        "batch-0",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--train.batch_size=0"],
        "train.batch_size=0",
    ),
    (
        "unknown-setting",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--train.lrr=1"],
        "unknown setting 'train.lrr'",
    ),
    (
        "int-setting-given-text",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--model.layers=two"],
        "model.layers takes a int",
    ),
    (
        "budget-nan",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--budget", "nan"],
        "--budget: must be a finite number",
    ),
    (
        "max-minutes-nan",
        ["train", "{data}", "--preset", "tiny", "--out", "{tmp}/r", "--train.max_minutes=nan"],
        "train.max_minutes=nan",
    ),
    ("resume-not-a-run", ["train", "--resume", "{tmp}"], "not a run folder"),
    (
        "temperature-nan",
        ["generate", "--temperature", "nan", "--no-audio", "--out", "{tmp}/g"],
        "--temperature must be a finite number above 0",
    ),
    (
        "temperature-0",
        ["generate", "--temperature", "0", "--no-audio", "--out", "{tmp}/g"],
        "--temperature must be a finite number above 0",
    ),
    ("recall-inf", ["generate", "--recall", "inf", "--no-audio", "--out", "{tmp}/g"], "--recall must be a finite"),
    (
        "phrasing-nan",
        ["generate", "--phrasing", "nan", "--no-audio", "--out", "{tmp}/g"],
        "--phrasing must be a finite",
    ),
    (
        "form-without-memory",
        ["generate", "--form", "AABA", "--no-audio", "--out", "{tmp}/g"],
        "--form AABA: this model has no memory of the piece",
    ),
    ("form-not-letters", ["generate", "--form", "A-B", "--no-audio", "--out", "{tmp}/g"], "--form takes letters"),
    (
        "section-bars-0",
        ["generate", "--form", "AB", "--section-bars", "0", "--no-audio", "--out", "{tmp}/g"],
        "--section-bars: must be 1 or more",
    ),
    ("top-p-nan", ["generate", "--top-p", "nan", "--no-audio", "--out", "{tmp}/g"], "--top-p must be in (0, 1]"),
    ("evaluate-split-train", ["evaluate", "pretrained", "--split", "train", "--out", "{tmp}/e"], "invalid choice"),
    ("evaluate-recall-inf", ["evaluate", "pretrained", "--recall", "inf", "--out", "{tmp}/e"], "--recall must be a"),
    ("top-k-negative", ["generate", "--top-k=-3", "--no-audio", "--out", "{tmp}/g"], "--top-k must be 0"),
    ("length-0", ["generate", "--length", "0s", "--no-audio", "--out", "{tmp}/g"], "length '0s'"),
    ("n-0", ["generate", "--n", "0", "--no-audio", "--out", "{tmp}/g"], "--n: must be 1 or more"),
    ("unknown-genre", ["generate", "--genre", "../../x", "--no-audio", "--out", "{tmp}/g"], "unknown genre '../../x'"),
    (
        "tempo-scale-nan",
        ["perform", "{midi}", "--jsonl", "{tmp}/e.jsonl", "--tempo-scale=nan"],
        "--tempo-scale must be a finite number above 0",
    ),
    (
        "tempo-scale-inf",
        ["perform", "{midi}", "--jsonl", "{tmp}/e.jsonl", "--tempo-scale=inf"],
        "--tempo-scale must be a finite number above 0",
    ),
    (
        "count-in-negative",
        ["perform", "{midi}", "--jsonl", "{tmp}/e.jsonl", "--count-in=-2"],
        "--count-in: must be 0 or more",
    ),
    (
        "pieces-0",
        ["perform", "--run", "pretrained", "--jsonl", "{tmp}/e.jsonl", "--pieces", "0"],
        "--pieces: must be 1 or more",
    ),
    ("per-genre-text", ["corpus", "builtin", "--per-genre", "many"], "expected a whole number, got 'many'"),
    ("evaluate-n-0", ["evaluate", "pretrained", "--n", "0", "--out", "{tmp}/r"], "--n: must be 1 or more"),
    (
        "qpm-nan",
        ["data", "roll2midi", "{pickle_ok}", "--qpm", "nan", "--out", "{tmp}/x.mid"],
        "--qpm: must be a finite number above 0",
    ),
    ("seed-negative", ["generate", "--seed=-1", "--out", "{tmp}/g"], "--seed: must be 0 or more"),
    (
        "budget-negative",
        ["train", "{data}", "--budget=-3", "--out", "{tmp}/r"],
        "--budget: must be a finite number above 0",
    ),
    ("prepare-dev-zero", ["data", "prepare", "/dev/zero", "--out", "{tmp}/d"], "neither a folder nor a CSV manifest"),
    (
        "prepare-unsafe-genre",
        ["data", "prepare", "{midi_dir}", "--genre", "../../x", "--out", "{tmp}/d"],
        "genre name '../../x'",
    ),
    (
        "prepare-bad-fraction",
        ["data", "prepare", "{corpus}", "--test-frac", "1.5", "--out", "{tmp}/d"],
        "data.test_frac=1.5",
    ),
    (
        "prepare-timeout-0",
        ["data", "prepare", "{corpus}", "--file-timeout", "0", "--out", "{tmp}/d"],
        "--file-timeout: must be a finite number above 0",
    ),
    (
        "pickle-of-another-shape",
        ["data", "prepare", "{pickle}", "--out", "{tmp}/d"],
        "does not have the benchmark's layout",
    ),
    (
        "perform-a-file-that-aborts-the-parser",
        ["perform", "{abort}", "--jsonl", "{tmp}/e.jsonl"],
        "crashed the MIDI reader",
    ),
    (
        "primer-that-aborts-the-parser",
        ["generate", "--primer", "{abort}", "--no-audio", "--out", "{tmp}/g"],
        "primer {abort}: crashed the MIDI reader",
    ),
    ("perform-dev-zero", ["perform", "/dev/zero", "--jsonl", "{tmp}/e.jsonl"], "/dev/zero: not a regular file"),
    ("roll2midi-index", ["data", "roll2midi", "{pickle_ok}", "--index", "99", "--out", "{tmp}/x.mid"], "out of range"),
]


@pytest.fixture
def places(tmp_path, real_data, good_corpus):
    file = tmp_path / "a_file"
    file.write_text("not a folder")
    bad_pickle = tmp_path / "odd.pickle"
    bad_pickle.write_bytes(pickle.dumps({"train": [5, 6], "valid": [], "test": []}))
    abort = tmp_path / "abort.mid"  # a native double free in symusic 0.5.9's reader
    abort.write_bytes(HEADER + _track_of(_noise(5, 200_000)))
    ok_pickle = tmp_path / "ok.pickle"
    ok_pickle.write_bytes(pickle.dumps({"train": [[[60]]], "valid": [[[62]]], "test": [[[64]]]}))
    return {
        "data": str(real_data),
        "tmp": str(tmp_path),
        "file": str(file),
        "corpus": str(good_corpus),
        "midi": str(good_corpus / "march" / "march0.mid"),
        "midi_dir": str(good_corpus / "march"),
        "pickle": str(bad_pickle),
        "pickle_ok": str(ok_pickle),
        "abort": str(abort),
    }


@pytest.mark.parametrize("argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_misuse_is_one_line_and_exit_2(argv, words, places, capsys):
    try:
        code = main(["-q", *(a.format(**places) for a in argv)])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert "Traceback" not in err[0] and words.format(**places) in err[0], err[0]
