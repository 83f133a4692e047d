"""Call and response: a player's phrases (JSON-lines events, in real time) answered with
continuations within a robot profile, in process and through `etude perform --respond`."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time

from etude.generation.generate import Ask
from etude.models.checkpoint import load_checkpoint
from etude.models.pretrained import pretrained_path
from etude.perform.outputs import RecordingSink
from etude.perform.respond import EOF_MARK, Phrase, answer, respond
from etude.robot.check import violations
from etude.robot.notes import Note
from etude.robot.profile import load_profile

PHRASE = [(62, 0.0), (64, 0.12), (66, 0.24), (67, 0.36), (69, 0.48), (71, 0.6)]  # (key, onset s), 0.1 s each


def test_a_phrase_becomes_a_score_in_seconds():
    p = Phrase()
    for key, t in PHRASE:
        p.add(10 + t, "note_on", key, 70)
        p.add(10 + t + 0.1, "note_off", key, 0)
    p.add(11.0, "note_on", 74, 90)  # still down: ends where the score is cut
    notes = p.score(now=11.5).to("second").tracks[0].notes
    assert [n.pitch for n in notes] == [k for k, _ in PHRASE] + [74]
    assert abs(notes[1].time - 0.12) < 0.002 and abs(notes[1].duration - 0.1) < 0.002
    assert abs(notes[-1].duration - 0.5) < 0.002 and notes[-1].velocity == 90


def _player(events: queue.Queue, phrases: int, gap: float) -> None:
    """Plays PHRASE `phrases` times, `gap` seconds of silence after each, then ends."""
    for _ in range(phrases):
        t0 = time.perf_counter()
        for key, t in PHRASE:
            while time.perf_counter() < t0 + t:
                time.sleep(0.002)
            events.put((time.perf_counter(), "note_on", key, 70))
            events.put((time.perf_counter() + 0.1, "note_off", key, 0))
        time.sleep(gap)
    events.put(EOF_MARK)


def test_each_phrase_is_answered_within_the_robot_after_the_pause():
    ckpt = load_checkpoint(pretrained_path("builtin"))
    robot = load_profile("toy-25")

    def make_answer(score, k):
        return answer(ckpt, score, Ask("irish", length="1.5s", seed=k, robot=robot))

    events: queue.Queue = queue.Queue()
    threading.Thread(target=_player, args=(events, 2, 3.5), daemon=True).start()
    sink = RecordingSink()
    exchanges = respond(make_answer, events, sink, wait=0.4, robot=robot)
    assert len(exchanges) == 2
    assert all(e.phrase_notes == len(PHRASE) and e.answer_notes > 0 for e in exchanges)
    assert all(e.first_event_at is not None and e.first_event_at >= e.pause_at for e in exchanges)
    sent = [e for _, e in sink.sent]
    starts: dict[int, float] = {}
    notes = []
    offset = 0.0
    for e in sent:  # each answer is stamped from its own start: lay them end to end
        if e.type == "note_on":
            starts[e.pitch] = offset + e.t
        elif e.type == "note_off" and e.pitch in starts:
            notes.append(Note(starts[e.pitch], offset + e.t, e.pitch, 80))
            del starts[e.pitch]
        elif e.type == "control_change" and e.pitch == 123:
            offset += e.t + 10.0
    assert not starts  # every note released
    assert violations(robot, sorted(notes, key=lambda n: (n.start, n.pitch))) == []


def test_cli_answers_json_lines_on_stdin(tmp_path):
    out = tmp_path / "answer.jsonl"
    cmd = [sys.executable, "-m", "etude", "perform", "--respond", "--run", "pretrained:builtin", "--genre", "irish"]
    cmd += ["--wait", "0.4", "--length", "2s", "--robot", "two-hand-robot", "--jsonl", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for key, t in PHRASE:
        proc.stdin.write(json.dumps({"type": "note_on", "pitch": key, "velocity": 70}) + "\n")
        proc.stdin.write("not json\n" if key == 66 else "")
        proc.stdin.flush()
        time.sleep(0.05)
        proc.stdin.write(json.dumps({"type": "note_off", "pitch": key, "velocity": 0}) + "\n")
        proc.stdin.flush()
    time.sleep(3.0)  # the pause, and time to play the answer
    proc.stdin.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert "phrase 1: 6 notes, answered with" in err and "Traceback" not in err
    assert any(r["type"] == "note_on" and "hand" in r for r in rows) and rows[-1]["control"] == 123
