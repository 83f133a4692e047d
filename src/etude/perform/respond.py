"""Call and response: listen to a player, and when they pause, answer with a continuation.

The player's notes come as events (JSON lines on stdin, {"type": "note_on"|"note_off", "pitch",
"velocity"}, timed by their arrival; or a MIDI input port). A pause is `wait` seconds without an
event (keys still held then end there). Once every key is up, or half the wait has passed, the
phrase so far is handed to the model as a primer and a continuation is generated in the
background (in the chosen genre, within the robot profile) while the silence lasts; an event
before the pause is complete makes it stale, and the phrase goes on. At the pause, the answer
(the continuation's notes, from its first note on) is played to the outputs, and listening
starts again with a new phrase. Events that arrive while the answer plays are not part of any
phrase.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from symusic import Note as SymNote
from symusic import Score, Tempo, Track

from etude.errors import InputError
from etude.perform.stream import Event, PlayStats, Sink, play, score_events
from etude.robot.profile import RobotProfile

if TYPE_CHECKING:  # generation (and torch) is imported only when a phrase is answered
    from etude.generation.generate import Ask

log = logging.getLogger(__name__)
TPQ = 480
QPM = 120.0  # a phrase is written at this tempo: a quarter note is 0.5 s
EOF_MARK = object()  # put in the event queue at the end of the input


@dataclass
class Phrase:
    """The notes of one phrase, in seconds from its first note."""

    start: float | None = None
    down: dict[int, tuple[float, int]] = field(default_factory=dict)  # key -> (start, velocity)
    notes: list[tuple[float, float, int, int]] = field(default_factory=list)  # (start, end, key, velocity)
    last: float = 0.0  # time of the last event

    def add(self, t: float, kind: str, pitch: int, velocity: int) -> None:
        if self.start is None:
            self.start = t
        self.last = t
        if kind == "note_on" and velocity > 0:
            if pitch in self.down:  # struck again while down: end the first
                self.add(t, "note_off", pitch, 0)
            self.down[pitch] = (t, velocity)
        elif kind in ("note_on", "note_off") and pitch in self.down:
            begun, vel = self.down.pop(pitch)
            self.notes.append((begun - self.start, max(t - self.start, begun - self.start + 0.01), pitch, vel))

    def score(self, now: float | None = None) -> Score:
        """The phrase as a one-track piano score at QPM; keys still down end at `now`."""
        notes = list(self.notes)
        for pitch, (begun, vel) in self.down.items():
            end = max((now or self.last) - self.start, begun - self.start + 0.01)
            notes.append((begun - self.start, end, pitch, vel))
        score = Score(TPQ)
        score.tempos.append(Tempo(0, QPM))
        track = Track(name="Piano", program=0)
        ticks = TPQ * QPM / 60.0  # per second
        for start, end, pitch, velocity in sorted(notes):
            on = int(round(start * ticks))
            track.notes.append(SymNote(on, max(1, int(round(end * ticks)) - on), pitch, velocity))
        score.tracks.append(track)
        return score


def answer(ckpt, phrase: Score, ask: Ask) -> Score:
    """The model's continuation of `phrase` in ask.genre, ask.length long: only the new notes,
    the first at time 0."""
    from etude.generation.generate import sample_tokens

    enc = ckpt.encoding
    prefix = enc.encode(phrase, ask.genre).tolist()[:-1]
    ids = sample_tokens(ckpt, ask, prefix)[0]
    before = {(n.time, n.pitch) for n in enc.decode(np.array(prefix + [enc.eos_id])).tracks[0].notes}
    full = enc.decode(np.array(ids))
    new = [n for n in full.tracks[0].notes if (n.time, n.pitch) not in before]
    out = Score(full.ticks_per_quarter)
    out.tempos = full.tempos
    track = Track(name="Piano", program=0)
    first = min((n.time for n in new), default=0)
    for n in new:
        track.notes.append(SymNote(n.time - first, n.duration, n.pitch, n.velocity))
    out.tracks.append(track)
    return out


def json_lines(stream: IO[str], out: queue.Queue, clock: Callable[[], float]) -> None:
    """Read note events as JSON lines into `out` as (arrival time, type, pitch, velocity); EOF_MARK at the end."""
    try:
        for line in stream:
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                out.put((clock(), str(e["type"]), int(e.get("pitch", 0)), int(e.get("velocity", 0))))
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("skipping a line that is not a note event: %s", line.strip()[:80])
    finally:
        out.put(EOF_MARK)


def midi_input(name: str, out: queue.Queue, clock: Callable[[], float]):
    """Note events from a MIDI input port (mido, python-rtmidi) into `out`; returns the open port."""
    from etude.perform.outputs import _mido

    mido = _mido()
    try:
        port = mido.open_input(name)
    except (OSError, SystemError, RuntimeError, ValueError) as exc:
        raise InputError(f"cannot open MIDI input {name!r}: {str(exc).strip()[:120]}") from None
    port.callback = lambda m: out.put((clock(), m.type, getattr(m, "note", 0), getattr(m, "velocity", 0)))
    return port


class _AnswerSink:
    """The outputs as one answer sees them: the clock time of its first event is kept, and
    close() is ignored (each answer ends with play()'s all-notes-off; the outputs stay open for
    the next)."""

    def __init__(self, sink: Sink, clock: Callable[[], float]):
        self.sink, self.clock = sink, clock
        self.first: float | None = None

    def send(self, event: Event) -> None:
        if self.first is None:
            self.first = self.clock()
        self.sink.send(event)

    def close(self) -> None:
        pass


@dataclass
class Exchange:
    phrase_notes: int
    pause_at: float  # clock time the pause reached `wait`
    first_event_at: float | None  # clock time the answer's first event was sent
    answer_notes: int
    stats: PlayStats | None = None

    @property
    def latency(self) -> float | None:
        return None if self.first_event_at is None else self.first_event_at - self.pause_at


def respond(
    make_answer: Callable[[Score, int], Score],
    events: queue.Queue,
    sink: Sink,
    wait: float = 1.0,
    robot: RobotProfile | None = None,
    clock: Callable[[], float] = time.perf_counter,
    on_exchange: Callable[[Exchange], None] | None = None,
) -> list[Exchange]:
    """Listen on `events` (see json_lines) and answer every phrase; returns the exchanges. Ends
    at the input's end (answering a last phrase first) or Ctrl-C; closes `sink`."""
    exchanges: list[Exchange] = []
    phrase, pending = Phrase(), None
    pool = ThreadPoolExecutor(1)
    try:
        for item in _with_ticks(events):
            now = clock()
            if item is EOF_MARK:
                if phrase.start is not None:
                    job = pending or pool.submit(make_answer, phrase.score(now), len(exchanges))
                    exchanges.append(_answer_now(phrase, job, sink, robot, clock, now))
                break
            if item is not None:
                t, kind, pitch, velocity = item
                phrase.add(t, kind, pitch, velocity)
                pending = None  # the phrase goes on: any answer begun is stale
                continue
            if phrase.start is None or not (phrase.notes or phrase.down):
                continue
            if pending is None and (not phrase.down or now - phrase.last >= wait / 2):
                pending = pool.submit(make_answer, phrase.score(phrase.last + wait), len(exchanges))
            if now - phrase.last >= wait:
                exchanges.append(_answer_now(phrase, pending, sink, robot, clock, phrase.last + wait))
                if on_exchange:
                    on_exchange(exchanges[-1])
                if exchanges[-1].stats.stopped != "end":  # Ctrl-C, SIGTERM or the outputs gone
                    break
                _drain(events)
                phrase, pending = Phrase(), None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        sink.close()
    return exchanges


def _with_ticks(events: queue.Queue, tick_s: float = 0.01) -> Iterator:
    """Items of `events`, and None every `tick_s` when nothing came (to look at the clock)."""
    while True:
        try:
            yield events.get(timeout=tick_s)
        except queue.Empty:
            yield None


def _drain(events: queue.Queue) -> None:
    """Drop what the player played during the answer, keeping the end-of-input mark."""
    while True:
        try:
            item = events.get_nowait()
        except queue.Empty:
            return
        if item is EOF_MARK:
            events.put(EOF_MARK)
            return


def _answer_now(phrase: Phrase, pending: Future, sink: Sink, robot, clock, pause_at: float) -> Exchange:
    reply = pending.result()
    events = score_events(reply, robot=robot)
    out = _AnswerSink(sink, clock)
    stats = play(iter([events]), out, clock=clock, lead_s=0.0)
    exchange = Exchange(len(phrase.notes) + len(phrase.down), pause_at, out.first, len(events) // 2, stats)
    log.info("answered a phrase of %d notes with %d notes", exchange.phrase_notes, exchange.answer_notes)
    return exchange


def call_and_response(
    run: Path | str | None, sink: Sink, listen: str = "-", wait: float = 1.0, ask: Ask | None = None
) -> list[Exchange]:
    """`etude perform --respond`: answer the player on `listen` (- for JSON lines on stdin, or a
    MIDI input port's name) after `wait` seconds of silence, with continuations from `run` (or
    the shipped model) as `ask` describes them (default: 8 s in the model's first genre; answer k
    from seed ask.seed + k)."""
    from etude.generation.generate import Ask, check_genre
    from etude.models.checkpoint import load_checkpoint
    from etude.models.pretrained import model_path
    from etude.paths import check_finite

    check_finite("--wait", wait, low=0)
    ckpt = load_checkpoint(model_path(run))
    if ckpt.model.unit != "token":
        raise InputError("--respond continues a phrase: it needs an event-token model")
    ask = ask or Ask(length="8s")
    ask = replace(ask, genre=check_genre(ckpt, ask.genre), n=1)
    ask.sampling.check(ckpt.model)
    clock = time.perf_counter
    events: queue.Queue = queue.Queue()
    if listen == "-":
        threading.Thread(target=json_lines, args=(sys.stdin, events, clock), daemon=True).start()
        port = None
    else:
        port = midi_input(listen, events, clock)

    def make_answer(phrase: Score, k: int) -> Score:
        return answer(ckpt, phrase, replace(ask, seed=ask.seed + k))

    try:
        return respond(make_answer, events, sink, wait, ask.robot, clock)
    finally:
        if port is not None:
            port.close()
