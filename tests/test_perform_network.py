"""OSC and TCP outputs on loopback: every event arrives, notes are balanced after an interrupt,
and a TCP client that disconnects never stops the others."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from etude.errors import InputError
from etude.perform.network import OscSink, TcpServerSink, parse_address
from etude.perform.outputs import FanOut, RecordingSink
from etude.perform.stream import Event, SinkClosed, play


def _piece(n: int = 12) -> list[Event]:
    """Notes 0.02 s apart, each held 0.05 s, with chords of two: a stream with notes overlapping."""
    events = []
    for k in range(n):
        for pitch in (60 + k % 5, 72 + k % 3):
            events += [Event(k * 0.02, "note_on", pitch, 80), Event(k * 0.02 + 0.05, "note_off", pitch, 0)]
    return sorted(events, key=lambda e: (e.t, e.type != "note_off", e.pitch))


class _InterruptAfter:
    """Wraps a sink; raises KeyboardInterrupt (Ctrl-C) once, before the n-th event."""

    def __init__(self, sink, n: int):
        self.sink, self.n, self.count = sink, n, 0

    def send(self, event):
        self.count += 1
        if self.count == self.n:
            raise KeyboardInterrupt
        self.sink.send(event)

    def close(self):
        self.sink.close()


def _balanced(rows) -> set:
    down = set()
    for r in rows:
        if r["type"] == "note_on":
            down.add(r["pitch"])
        elif r["type"] == "note_off":
            down.discard(r["pitch"])
    return down


def test_addresses_are_parsed_or_refused():
    assert parse_address("9000") == ("127.0.0.1", 9000)
    assert parse_address("robot.local:57120") == ("robot.local", 57120)
    for bad in ("", "host:", "host:port", "99999"):
        with pytest.raises(InputError):
            parse_address(bad)


def test_osc_messages_arrive_and_balance_after_an_interrupt():
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    got = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: got.append((address, args)))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        stats = play(iter([_piece()]), _InterruptAfter(OscSink(f"127.0.0.1:{port}"), 15))
        deadline = time.time() + 5
        while time.time() < deadline and not any(a == "/etude/control_change" and args[1] == 123 for a, args in got):
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    assert stats.stopped == "interrupted"
    rows = [{"type": a.rsplit("/", 1)[1], "pitch": args[1]} for a, args in got if a.endswith(("note_on", "note_off"))]
    assert len(rows) >= 14 and _balanced(rows) == set()
    note = next(args for a, args in got if a == "/etude/note_on")
    assert isinstance(note[0], float) and note[1:] == (60, 80, 0, -1, -1)
    assert ("/etude/control_change", 123) in [(a, args[1]) for a, args in got]


def _client(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _read_lines(sock: socket.socket) -> list[dict]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return [json.loads(line) for line in data.decode().splitlines()]


def test_tcp_clients_each_get_every_event_and_a_leaver_stops_no_one():
    sink = TcpServerSink("127.0.0.1:0")
    port = sink.address[1]
    stay, leave = _client(port), _client(port)
    while sink.connected() < 2:
        time.sleep(0.01)
    leave.close()  # gone before the music starts: its writes fail, the others go on
    events = _piece()
    stats = play(iter([events]), _InterruptAfter(sink, 20))
    rows = _read_lines(stay)
    assert stats.stopped == "interrupted"
    assert [r["type"] for r in rows[:19]] == [e.type for e in events[:19]]
    assert _balanced(rows) == set() and rows[-1]["control"] == 123


def test_a_full_stop_reaches_every_output_of_a_fan_out():
    a, b = RecordingSink(), RecordingSink()

    class Closing(RecordingSink):
        def send(self, event):
            raise SinkClosed("unplugged")

    stats = play(iter([_piece(4)]), FanOut([a, Closing(), b]))
    assert stats.stopped == "end"  # one output gone, two left
    assert [e for _, e in a.sent] == [e for _, e in b.sent]
    assert a.sent[-1][1].pitch == 123


def test_cli_serves_json_lines_until_sigint(tmp_path, good_corpus):
    """`etude perform --serve PORT --clients 2`: two clients; one leaves; Ctrl-C (SIGINT) ends
    the performance; the other has every note released and all-notes-off."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    cmd = [sys.executable, "-m", "etude", "perform", str(good_corpus / "march" / "march1.mid")]
    # a shell's background job starts with SIGINT ignored, and Python then keeps it ignored: undo that
    proc = subprocess.Popen(
        cmd + ["--serve", str(port), "--clients", "2", "--loop"],
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 60
        clients = []
        while len(clients) < 2 and time.time() < deadline:
            try:
                clients.append(_client(port))
            except OSError:
                time.sleep(0.05)
        stay, leave = clients
        first = leave.recv(100)  # the music has begun
        leave.close()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # a performance that ignored the signal would loop for ever
    rows = _read_lines(stay)
    assert first and proc.returncode == 130 and b"interrupted" in err and b"Traceback" not in err
    assert len(rows) > 4 and _balanced(rows) == set() and rows[-1]["control"] == 123
