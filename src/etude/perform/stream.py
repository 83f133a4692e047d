"""`etude perform`: stream a piece in real time to a MIDI port or as JSON lines.

Every event is sent at an absolute deadline measured from one monotonic start time (never by
sleeping relative amounts), so errors do not add up over a long piece. Stopping for any reason
(end of stream, Ctrl-C, SIGTERM, a failing sink) sends a note-off for every sounding note and
then all-notes-off (CC 123) and sustain-off (CC 64 = 0) on every channel used: no stuck notes.
With a run folder, pieces are generated in a background thread ahead of playback.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from symusic import Score

from etude.data.midi import read_piece
from etude.errors import InputError
from etude.paths import check_finite
from etude.perform.events import Event, Sink, SinkClosed
from etude.perform.outputs import Outputs
from etude.robot.adapt import adapt_notes
from etude.robot.hands import assign_hands
from etude.robot.notes import Note, score_notes
from etude.robot.profile import RobotProfile

if TYPE_CHECKING:  # generation (and torch) is imported only when a run is performed
    from etude.generation.generate import Ask

log = logging.getLogger(__name__)
SPIN_S = 0.0015  # the last stretch before a deadline is busy-waited, not slept


def score_events(
    score: Score, tempo_scale: float = 1.0, transpose: int = 0, channel: int = 0, robot: RobotProfile | None = None
) -> list[Event]:
    """A score's notes as time-ordered events; at equal times note-offs come first, so a
    re-struck key sounds again. Notes moved off the 0..127 range are dropped. With `robot`, the
    notes (transposed and at the played tempo) are made playable by it (etude.robot.adapt: a
    piece generated under the profile needs no change) and carry the hand (and finger) that
    plays them."""
    check_finite("--tempo-scale", tempo_scale, low=0)
    notes = [
        Note(
            n.start / tempo_scale, (n.start + max(n.end - n.start, 1e-3)) / tempo_scale, n.pitch + transpose, n.velocity
        )
        for n in score_notes(score)
        if 0 <= n.pitch + transpose <= 127
    ]
    hands: list[tuple[int | None, int | None]] = [(None, None)] * len(notes)
    if robot is not None:
        adapted = adapt_notes(robot, notes)
        if adapted.changes:
            log.info("adapted to robot %s: %s", robot.name, adapted.report(len(notes)))
        notes = sorted(adapted.notes, key=lambda n: (n.start, n.pitch))
        hands = assign_hands(robot, notes)
    events = []
    for n, (hand, finger) in zip(notes, hands):
        events.append(Event(n.start, "note_on", n.pitch, max(1, n.velocity), channel, hand, finger))
        events.append(Event(n.end, "note_off", n.pitch, 0, channel, hand, finger))
    return sorted(events, key=lambda e: (e.t, e.type != "note_off", e.pitch))


def count_in(beats: int, qpm: float, tempo_scale: float = 1.0) -> list[Event]:
    """`beats` metronome clicks (side stick on the drum channel), the first one accented."""
    beat = 60.0 / qpm / tempo_scale
    clicks = []
    for k in range(beats):
        clicks.append(Event(k * beat, "note_on", 37, 110 if k == 0 else 80, 9))
        clicks.append(Event(k * beat + beat / 4, "note_off", 37, 0, 9))
    return clicks


def shifted(events: Iterable[Event], offset: float) -> list[Event]:
    return [replace(e, t=e.t + offset) for e in events]


class _Terminate(Exception):
    """Raised in the main thread by SIGTERM so that playback stops through its clean-up path."""


class _Signals:
    """SIGINT and SIGTERM while playing, raised in the main thread as KeyboardInterrupt and
    _Terminate, so that playback stops through its clean-up path; but never inside a sink's send.
    A signal that arrives while an event is being sent is held until the send returns: raised in
    the middle of a queue's or a lock's `with` (a Condition's __enter__), the exception can leave
    that lock held, and the final note-offs then wait on it for ever (an `etude perform --serve`
    hung so after Ctrl-C). SIGINT is taken over only where Python's own handler has it (a job
    started with SIGINT ignored keeps ignoring it); nothing is taken over outside the main thread."""

    def __init__(self):
        self.sending = False
        self.held: int | None = None  # a signal that came during a send
        self.old: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self.old[signal.SIGINT] = signal.signal(signal.SIGINT, self._handler)
            self.old[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.old.items():
            signal.signal(signum, handler)

    def _handler(self, signum: int, frame) -> None:
        if self.sending:
            self.held = signum
        else:
            _raise_for(signum)

    def send(self, sink: Sink, event: Event) -> None:
        """sink.send(event), holding any signal that comes during it (raise_held raises it)."""
        self.sending = True
        try:
            sink.send(event)
        finally:
            self.sending = False

    def raise_held(self) -> None:
        """Raise the signal held during the last send, if one was (call once the sent event is
        accounted for: a note-on sent must be known to be sounding)."""
        if self.held is not None:
            signum, self.held = self.held, None
            _raise_for(signum)


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise _Terminate()


class _Stopped(Exception):
    """Raised when a play()'s `stop` event is set: playback ends through its clean-up path."""


def wait_until(
    deadline: float, clock: Callable[[], float] = time.perf_counter, stop: threading.Event | None = None
) -> None:
    """Sleep until just before `deadline`, then spin to it; with `stop`, look at it at least
    every 50 ms and raise _Stopped once it is set."""
    while True:
        if stop is not None and stop.is_set():
            raise _Stopped
        left = deadline - clock()
        if left <= 0:
            return
        if left > SPIN_S:
            time.sleep(min(left - SPIN_S, 0.05) if stop is not None else left - SPIN_S)


@dataclass
class PlayStats:
    events: int = 0
    underruns: int = 0  # times playback had to wait for the next generated piece
    stopped: str = "end"  # end | interrupted | terminated | output closed | stopped (play's `stop` set)


def play(
    pieces: Iterator[list[Event]],
    sink: Sink,
    clock: Callable[[], float] = time.perf_counter,
    lead_s: float = 0.05,
    stop: threading.Event | None = None,
) -> PlayStats:
    """Send the events of each piece, back to back, at their absolute deadlines.

    `pieces` yields lists of events with times from each piece's start; the next piece starts
    when the last event of the previous one is due. The sink gets each event stamped with its
    time from the start of the performance, so stamps never run backwards, from piece to piece
    or at the stop. Whatever stops playback, every sounding note is released and all-notes-off
    sent before returning, stamped with the time they are sent.
    """
    stats = PlayStats()
    sounding: set[tuple[int, int]] = set()
    channels: set[int] = set()
    start = clock() + lead_s
    offset = 0.0
    try:
        with _Signals() as signals:
            for k, events in enumerate(pieces):
                if k == 0:  # the clock starts when the first piece is there (it may be generated first)
                    start = clock() + lead_s
                elif clock() > start + offset + 0.01:
                    stats.underruns += 1  # this piece was not ready when the one before it ended
                    start = clock() - offset
                for e in events:
                    wait_until(start + offset + e.t, clock, stop)
                    signals.send(sink, replace(e, t=offset + e.t))
                    stats.events += 1
                    channels.add(e.channel)
                    if e.type == "note_on" and e.velocity > 0:
                        sounding.add((e.channel, e.pitch))
                    elif e.type in ("note_on", "note_off"):
                        sounding.discard((e.channel, e.pitch))
                    signals.raise_held()
                offset += events[-1].t if events else 0.0
    except KeyboardInterrupt:
        stats.stopped = "interrupted"
    except _Terminate:
        stats.stopped = "terminated"
    except SinkClosed:
        stats.stopped = "output closed"
    except _Stopped:
        stats.stopped = "stopped"
    finally:
        try:
            for channel, pitch in sorted(sounding):
                sink.send(Event(_now(clock, start), "note_off", pitch, 0, channel))
            for channel in sorted(channels or {0}):
                sink.send(Event(_now(clock, start), "control_change", 64, 0, channel))
                sink.send(Event(_now(clock, start), "control_change", 123, 0, channel))
        except SinkClosed:
            pass
        finally:
            sink.close()
    return stats


def _now(clock: Callable[[], float], start: float) -> float:
    """Seconds since the performance began (0 before it did)."""
    return max(0.0, clock() - start)


# ----------------------------------------------------------------------------- sources
def file_events(
    path: Path, tempo_scale: float = 1.0, transpose: int = 0, robot: RobotProfile | None = None
) -> tuple[list[Event], float]:
    """A MIDI file's events (made playable by `robot`) and its first tempo (qpm)."""
    score = read_piece(Path(path))
    qpm = score.tempos[0].qpm if len(score.tempos) else 120.0
    return score_events(score, tempo_scale, transpose, robot=robot), qpm


class GeneratedPieces:
    """Pieces generated by a background thread while earlier ones play.

    Holds at most `ahead` finished pieces; `count` pieces in all (None: until stopped).
    """

    def __init__(
        self,
        make_piece: Callable[[int], Score],
        count: int | None,
        ahead: int = 2,
        tempo_scale: float = 1.0,
        transpose: int = 0,
        robot: RobotProfile | None = None,
    ):
        self.queue: queue.Queue = queue.Queue(maxsize=ahead)
        self.count, self.tempo_scale, self.transpose, self.robot = count, tempo_scale, transpose, robot
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, args=(make_piece,), daemon=True)
        self.thread.start()

    def _work(self, make_piece: Callable[[int], Score]) -> None:
        k = 0
        try:
            while not self.stop.is_set() and (self.count is None or k < self.count):
                events = score_events(make_piece(k), self.tempo_scale, self.transpose, robot=self.robot)
                while not self.stop.is_set():
                    try:
                        self.queue.put(events, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                k += 1
        except BaseException as exc:  # handed to the player's thread
            self.error = exc
        finally:
            self.queue.put(None)

    def __iter__(self) -> Iterator[list[Event]]:
        try:
            while True:
                events = self.queue.get()
                if events is None:
                    if self.error is not None:
                        raise self.error
                    return
                yield events
        finally:
            self.stop.set()


@dataclass(frozen=True)
class Playing:
    """How a performance plays: `tempo_scale` (2: twice as fast), `transpose` in semitones,
    `loop` (the file, or new pieces, until stopped), and a count-in of `count_in_beats` clicks."""

    tempo_scale: float = 1.0
    transpose: int = 0
    loop: bool = False
    count_in_beats: int = 0

    def __post_init__(self) -> None:
        check_finite("--tempo-scale", self.tempo_scale, low=0)
        if self.count_in_beats < 0:
            raise InputError(f"--count-in takes 0 or more beats, not {self.count_in_beats}")


def perform(
    source: Path | None = None,
    run: Path | None = None,
    outputs: Outputs = Outputs(),
    playing: Playing = Playing(),
    ask: Ask | None = None,
) -> PlayStats:
    """Play a MIDI file, or the pieces `ask` describes (default: one of 30 s) generated from a
    run (or the shipped model), to `outputs` (a MIDI port, JSON lines, OSC, a TCP server of JSON
    lines). With ask.robot, pieces are generated under its limits (a file is adapted to them) and
    events carry the hand and finger that play each note."""
    if (source is None) == (run is None):
        raise InputError("give a MIDI FILE or --run RUN_DIR (not both)")
    ask = ask or _default_ask()
    if source is not None:
        events, qpm = file_events(source, playing.tempo_scale, playing.transpose, ask.robot)
        stream: Iterable[list[Event]] = _repeat(events) if playing.loop else [events]
    else:
        stream = _generated(run, ask, playing)
        qpm = 120.0
    sink = outputs.open()
    if playing.count_in_beats:
        beats, scale = playing.count_in_beats, playing.tempo_scale
        stream = _prepend(count_in(beats, qpm, scale), beats * 60.0 / qpm / scale, stream)
    return play(iter(stream), sink)


def _default_ask() -> Ask:
    from etude.generation.generate import Ask

    return Ask(length="30s")


def _repeat(events: list[Event]) -> Iterator[list[Event]]:
    while True:
        yield events


def _prepend(clicks: list[Event], span: float, stream: Iterable[list[Event]]) -> Iterator[list[Event]]:
    it = iter(stream)
    first = next(it, [])
    yield clicks + shifted(first, span)
    yield from it


def _generated(run: Path | None, ask: Ask, playing: Playing) -> GeneratedPieces:
    """ask.n pieces (endless with playing.loop) from a run (or `pretrained`), piece k from seed
    ask.seed + k, each generated in the background while the one before plays."""
    from etude.generation.generate import check_genre, sample_scores
    from etude.models.checkpoint import load_checkpoint
    from etude.models.pretrained import model_path

    ckpt = load_checkpoint(model_path(run))
    ask = replace(ask, genre=check_genre(ckpt, ask.genre), n=1)
    ask.sampling.check(ckpt.model)
    count = None if playing.loop else ask.n

    def make_piece(k: int) -> Score:
        return sample_scores(ckpt, replace(ask, seed=ask.seed + k))[0]

    return GeneratedPieces(
        make_piece, count, tempo_scale=playing.tempo_scale, transpose=playing.transpose, robot=ask.robot
    )
