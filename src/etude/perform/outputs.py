"""Where a performance goes: the sinks (JSON lines, MIDI ports, a recording for tests, several at
once) and `Outputs`, the one type perform, respond, the studio and the CLI name them with. OSC and
TCP sinks live in etude.perform.network."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from etude.errors import InputError
from etude.perform.events import Event, Sink, SinkClosed

log = logging.getLogger(__name__)


class JsonLinesSink:
    """One JSON object per event, flushed the moment it is due."""

    def __init__(self, target: str | Path):
        self.fh: IO[str] = sys.stdout if str(target) == "-" else open(target, "w")

    def send(self, event: Event) -> None:
        try:
            self.fh.write(json.dumps(event.as_dict()) + "\n")
            self.fh.flush()
        except BrokenPipeError:
            if self.fh is sys.stdout:  # the reader went away; keep Python's exit quiet
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SinkClosed("the JSON lines reader closed the stream") from None

    def close(self) -> None:
        if self.fh is not sys.stdout:
            self.fh.close()


class RecordingSink:
    """Keeps each event with the monotonic time it was actually sent (for tests and benchmarks)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock, self.sent = clock, []

    def send(self, event: Event) -> None:
        self.sent.append((self.clock(), event))

    def close(self) -> None:
        pass


@contextmanager
def _quiet_stderr():
    """Silence C libraries (ALSA) writing to file descriptor 2 while opening ports."""
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _mido():
    try:
        import mido
        import rtmidi  # noqa: F401  (the backend mido uses)
    except ImportError:
        raise InputError(
            "MIDI ports need the optional extra: pip install 'etude[robot]' (mido, python-rtmidi); or use --jsonl"
        ) from None
    return mido


def list_ports() -> list[str]:
    mido = _mido()
    try:
        with _quiet_stderr():
            return list(mido.get_output_names())
    except (SystemError, OSError, RuntimeError) as exc:
        raise InputError(f"no MIDI system available here ({str(exc).strip()[:120]}); use --jsonl") from None


class PortSink:
    """A hardware or software MIDI output through mido and python-rtmidi."""

    def __init__(self, name: str, virtual: bool = False):
        mido = _mido()
        self.Message = mido.Message
        if not virtual:
            names = list_ports()
            if name not in names:
                raise InputError(f"no MIDI output port named {name!r}; available: {', '.join(names) or 'none'}")
        try:
            with _quiet_stderr():
                self.port = mido.open_output(name, virtual=virtual)
        except (SystemError, OSError, RuntimeError, ValueError) as exc:
            raise InputError(
                f"cannot open MIDI port {name!r} (in use, or not supported here): {str(exc).strip()[:120]}"
            ) from None

    def send(self, event: Event) -> None:
        try:
            self._send(event)
        except (OSError, SystemError, RuntimeError) as exc:
            raise SinkClosed(f"MIDI port failed: {exc}") from None

    def _send(self, event: Event) -> None:
        if event.type == "control_change":
            msg = self.Message("control_change", control=event.pitch, value=event.velocity, channel=event.channel)
        else:
            msg = self.Message(event.type, note=event.pitch, velocity=event.velocity, channel=event.channel)
        self.port.send(msg)

    def close(self) -> None:
        self.port.close()


class FanOut:
    """Several outputs at once; one that closes is dropped, and playback stops (SinkClosed)
    only when none is left."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = list(sinks)

    def send(self, event: Event) -> None:
        for sink in list(self.sinks):
            try:
                sink.send(event)
            except SinkClosed as exc:
                log.warning("%s", exc)
                self.sinks.remove(sink)
                sink.close()
        if not self.sinks:
            raise SinkClosed("every output closed")

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


# ----------------------------------------------------------------------------- the player


@dataclass(frozen=True)
class Outputs:
    """Where a performance goes: one or more of these (perform, respond, the studio and the CLI
    all take this one type)."""

    jsonl: str | None = None  # JSON lines: a path, or - for stdout
    port: str | None = None  # a MIDI output port, by name
    virtual: str | None = None  # a virtual MIDI port to create, by name (where the platform allows)
    osc: str | None = None  # HOST:PORT: OSC over UDP
    serve: str | None = None  # [HOST:]PORT: a TCP server sending JSON lines to each client
    clients: int = 0  # with serve: clients to wait for (up to 60 s) before playing

    def __bool__(self) -> bool:
        return any(x is not None for x in (self.jsonl, self.port, self.virtual, self.osc, self.serve))

    def open(self) -> Sink:
        """The sinks asked for (one, or a FanOut of several), each opened or none left open."""
        from etude.perform.network import OscSink, TcpServerSink

        if self.port is not None and self.virtual is not None:
            raise InputError("choose --port NAME or --virtual NAME, not both")
        if not self:
            raise InputError(
                "choose an output: --port NAME, --virtual NAME, --jsonl PATH|-, --osc HOST:PORT or --serve PORT"
            )
        sinks: list[Sink] = []
        try:
            if self.jsonl is not None:
                sinks.append(JsonLinesSink(self.jsonl))
            if self.port is not None or self.virtual is not None:
                sinks.append(PortSink(self.port or self.virtual, virtual=self.virtual is not None))
            if self.osc is not None:
                sinks.append(OscSink(self.osc))
            if self.serve is not None:
                sinks.append(TcpServerSink(self.serve, wait_for=self.clients))
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        return sinks[0] if len(sinks) == 1 else FanOut(sinks)
