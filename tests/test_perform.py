import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from symusic import Score

from etude.cli import main
from etude.data.encoding import roll_to_score
from etude.perform.outputs import Outputs, RecordingSink
from etude.perform.stream import (
    GeneratedPieces,
    Playing,
    SinkClosed,
    count_in,
    file_events,
    perform,
    play,
    score_events,
)


def _piece(frames: int = 16, fpb: int = 4) -> Score:
    roll = np.zeros((frames, 88), dtype=np.uint8)
    rng = np.random.default_rng(0)
    for t in range(0, frames, 2):
        roll[t : t + 2, rng.integers(20, 60, 3)] = 1
    return roll_to_score(roll, fpb, qpm=240)


def _balanced(events):
    """Every note-on has its note-off on the same channel and key."""
    sounding = set()
    for e in events:
        if e.type == "note_on" and e.velocity:
            assert (e.channel, e.pitch) not in sounding
            sounding.add((e.channel, e.pitch))
        elif e.type in ("note_on", "note_off"):
            sounding.discard((e.channel, e.pitch))
    return sounding


def test_events_are_ordered_and_balanced():
    events = score_events(_piece(), tempo_scale=2.0, transpose=3)
    assert [e.t for e in events] == sorted(e.t for e in events)
    assert _balanced(events) == set()
    plain = score_events(_piece())
    assert events[0].pitch == plain[0].pitch + 3 and events[-1].t == pytest.approx(plain[-1].t / 2)


def test_play_sends_on_time_and_releases_all():
    sink = RecordingSink()
    events = score_events(_piece(), tempo_scale=4.0)
    stats = play(iter([events]), sink)
    assert stats.stopped == "end" and stats.events == len(events)
    sent = [e for _, e in sink.sent]
    assert _balanced(sent) == set()
    last = sent[-1]
    assert (last.type, last.pitch, last.velocity, last.channel) == ("control_change", 123, 0, 0)
    assert last.t >= events[-1].t  # stamped when sent, after the last note
    t0 = sink.sent[0][0] - events[0].t
    errors = [abs(when - t0 - e.t) for (when, e), _ in zip(sink.sent, events)]
    assert max(errors) < 0.02  # generous here; benchmarks/perform_timing.py measures it properly


class _FailAfter(RecordingSink):
    def __init__(self, n, exc):
        super().__init__()
        self.n, self.exc = n, exc

    def send(self, event):
        if len(self.sent) == self.n and self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc
        super().send(event)


@pytest.mark.parametrize("exc, stopped", [(KeyboardInterrupt(), "interrupted"), (SinkClosed("gone"), "output closed")])
def test_interrupted_mid_piece_leaves_no_stuck_note(exc, stopped):
    events = score_events(_piece(), tempo_scale=8.0)
    sink = _FailAfter(7, exc)
    stats = play(iter([events]), sink)
    assert stats.stopped == stopped
    sent = [e for _, e in sink.sent]
    assert _balanced(sent) == set()  # every note-on got its note-off
    assert ("control_change", 123, 0, 0) in [(e.type, e.pitch, e.velocity, e.channel) for e in sent]


class _SignalledDuringSend(RecordingSink):
    """Sends itself `signum` in the middle of its third send (as Ctrl-C or a kill would arrive),
    then finishes that send."""

    def __init__(self, signum):
        super().__init__()
        self.signum = signum

    def send(self, event):
        if len(self.sent) == 2:
            os.kill(os.getpid(), self.signum)
            time.sleep(0.05)  # a handler that raises does so here, inside the send
        super().send(event)


@pytest.mark.parametrize("signum, stopped", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")])
def test_a_signal_during_a_send_stops_after_it(signum, stopped):
    """Raised inside a send, the interrupt could leave a lock of the sink held (a TCP server's
    clean-up then hung for ever); it is held until the send returns: the third event is sent
    whole, playback stops there, every note is released, and the handlers are put back."""
    events = score_events(_piece(), tempo_scale=8.0)
    # as at a terminal: a test run started as a background job has SIGINT ignored, and play
    # leaves an ignored SIGINT ignored
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signum)
        sink = _SignalledDuringSend(signum)
        stats = play(iter([events]), sink)
        after = signal.getsignal(signum)
    finally:
        signal.signal(signal.SIGINT, outer)
    sent = [e for _, e in sink.sent]
    assert stats.stopped == stopped
    assert sent[:3] == events[:3] and sent[3].type != "note_on"  # the third whole, then the clean-up
    assert _balanced(sent) == set() and (sent[-1].type, sent[-1].pitch) == ("control_change", 123)
    assert after is before


def test_count_in_and_back_to_back_pieces():
    clicks = count_in(2, qpm=120, tempo_scale=2.0)
    assert [e.t for e in clicks if e.type == "note_on"] == [0.0, 0.25]
    events = score_events(_piece(8), tempo_scale=8.0)
    sink = RecordingSink()
    play(iter([events, events]), sink)
    notes = [(when, e) for when, e in sink.sent if e.type == "note_on"]
    span = events[-1].t
    second = notes[len(notes) // 2][0] - notes[0][0]
    assert second == pytest.approx(span, abs=0.01)  # the second copy starts when the first ends


def test_jsonl_lines_parse_in_time_order(tmp_path, good_corpus):
    out = tmp_path / "events.jsonl"
    playing = Playing(tempo_scale=16.0, count_in_beats=2)
    stats = perform(good_corpus / "march" / "march0.mid", outputs=Outputs(jsonl=str(out)), playing=playing)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert stats.events > 0 and len(rows) >= stats.events
    times = [r["t"] for r in rows]
    assert times == sorted(times), "time ran backwards (the release events included)"
    assert rows[0] == {"t": 0.0, "type": "note_on", "pitch": 37, "velocity": 110, "channel": 9}
    assert {r["type"] for r in rows} == {"note_on", "note_off", "control_change"}
    last_note = rows[stats.events - 1]["t"]
    releases = rows[stats.events :]
    assert {(r["control"], r["channel"]) for r in releases} == {(64, 0), (64, 9), (123, 0), (123, 9)}
    assert all(last_note <= r["t"] < last_note + 0.5 for r in releases), "stamped with the time they are sent"


def test_pieces_played_back_to_back_carry_performance_time(good_corpus):
    events, _ = file_events(good_corpus / "march" / "march0.mid", tempo_scale=16.0)
    sink = RecordingSink()
    play(iter([events, events]), sink, lead_s=0.0)
    stamps = [e.t for _, e in sink.sent]
    assert stamps == sorted(stamps)
    assert stamps[len(events)] == pytest.approx(events[-1].t + events[0].t)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1"])
def test_non_finite_or_non_positive_tempo_scale_is_refused(tmp_path, good_corpus, value):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "etude",
            "perform",
            str(good_corpus / "march" / "march0.mid"),
            "--jsonl",
            str(tmp_path / "e.jsonl"),
            f"--tempo-scale={value}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--tempo-scale must be a finite number above 0" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "e.jsonl").exists()


def test_generation_ahead_never_runs_dry(tmp_path):
    """The shipped cpu-preset model generates faster than real time: 3 pieces of 4 s, played at
    double speed, follow each other with no wait."""
    from etude.generation.generate import Ask
    from etude.perform.stream import _generated

    pieces = _generated("pretrained:builtin", Ask("irish", 3, "4s"), Playing(tempo_scale=2.0))
    sink = RecordingSink()
    stats = play(iter(pieces), sink, lead_s=0.5)
    assert stats.stopped == "end" and stats.underruns == 0
    assert _balanced([e for _, e in sink.sent]) == set()


def test_generator_errors_reach_the_player():
    def broken(k):
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        list(GeneratedPieces(broken, count=2))


def test_cli_sigterm_releases_notes(tmp_path, good_corpus):
    out = tmp_path / "e.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etude",
            "perform",
            str(good_corpus / "march" / "march1.mid"),
            "--jsonl",
            str(out),
            "--loop",
        ],
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and out.stat().st_size > 200):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"terminated" in err and b"Traceback" not in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    sounding = set()
    for r in rows:
        if r["type"] == "note_on":
            sounding.add(r["pitch"])
        elif r["type"] == "note_off":
            sounding.discard(r["pitch"])
    assert sounding == set() and rows[-1]["control"] == 123


def test_cli_errors(tmp_path, capsys, good_corpus):
    assert main(["perform", str(tmp_path / "none.mid"), "--jsonl", "-"]) == 2
    assert "none.mid: not found" in capsys.readouterr().err
    assert main(["perform", str(good_corpus / "march" / "march0.mid")]) == 2
    assert "choose an output" in capsys.readouterr().err
    assert main(["perform", str(good_corpus / "march" / "march0.mid"), "--port", "Nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("no MIDI" in err[0])
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    assert main(["perform", str(bad), "--jsonl", "-"]) == 2
    assert "unreadable or corrupt" in capsys.readouterr().err
