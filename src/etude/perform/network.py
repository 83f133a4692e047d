"""Outputs over the network: OSC messages over UDP, and a TCP server of JSON lines.

OSC (python-osc): one message per event, sent when due, to HOST:PORT:
  /etude/note_on   t pitch velocity channel hand finger
  /etude/note_off  t pitch velocity channel hand finger
  /etude/control_change  t control value channel
with t the performance time in seconds (float), the rest integers; hand and finger are -1 when
no robot profile assigns them.

TCP: a server on HOST:PORT; every connected client receives every event as one JSON line (the
same objects as --jsonl). Each client has its own queue and writer thread, so a slow client
never delays the clock, and one that disconnects is dropped without stopping the others.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time

from etude.errors import InputError
from etude.perform.events import Event

log = logging.getLogger(__name__)


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """HOST:PORT or PORT -> (host, port); InputError when it is neither."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"{text!r} is not HOST:PORT or PORT (a port is 0..65535)")
    return host or default_host, int(port)


class OscSink:
    """Events as OSC messages over UDP."""

    def __init__(self, address: str):
        try:
            from pythonosc.udp_client import SimpleUDPClient
        except ImportError:
            raise InputError("OSC output needs python-osc: pip install 'etude[robot]'") from None
        host, port = parse_address(address)
        try:
            self.client = SimpleUDPClient(host, port)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot send OSC to {host}:{port}: {exc}") from None

    def send(self, event: Event) -> None:
        if event.type == "control_change":
            args = [float(event.t), event.pitch, event.velocity, event.channel]
        else:
            hand = -1 if event.hand is None else event.hand
            finger = -1 if event.finger is None else event.finger
            args = [float(event.t), event.pitch, event.velocity, event.channel, hand, finger]
        try:
            self.client.send_message(f"/etude/{event.type}", args)
        except OSError as exc:  # UDP has no connection to lose; a local error is worth a word
            log.warning("OSC send failed: %s", exc)

    def close(self) -> None:
        pass


class _Client:
    def __init__(self, conn: socket.socket, peer: str):
        self.conn, self.peer = conn, peer
        self.queue: queue.Queue[bytes | None] = queue.Queue()
        self.alive = True
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.thread.start()

    def _write(self) -> None:
        while (line := self.queue.get()) is not None:
            try:
                self.conn.sendall(line)
            except OSError:
                self.alive = False
                log.info("client %s disconnected", self.peer)
                break
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


class TcpServerSink:
    """A TCP server streaming JSON lines to every connected client."""

    def __init__(self, address: str, wait_for: int = 0, timeout_s: float = 60.0):
        host, port = parse_address(address)
        try:
            self.server = socket.create_server((host, port), reuse_port=False)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.address = self.server.getsockname()[:2]
        self.clients: list[_Client] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()
        log.info("serving JSON lines on %s:%d", *self.address)
        deadline = time.monotonic() + timeout_s
        while self.connected() < wait_for:
            if time.monotonic() > deadline:
                self.close()
                raise InputError(f"no {wait_for} client(s) connected to {host}:{port} within {timeout_s:g} s")
            time.sleep(0.01)

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, peer = self.server.accept()
            except OSError:
                return  # the server was closed
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.clients.append(_Client(conn, f"{peer[0]}:{peer[1]}"))

    def connected(self) -> int:
        with self.lock:
            return sum(c.alive for c in self.clients)

    def send(self, event: Event) -> None:
        line = (json.dumps(event.as_dict()) + "\n").encode()
        with self.lock:
            self.clients = [c for c in self.clients if c.alive]
            for c in self.clients:
                c.queue.put(line)

    def close(self) -> None:
        """Deliver what is queued (the final note-offs included), then close every connection."""
        self.closed.set()
        self.server.close()
        with self.lock:
            clients = list(self.clients)
        for c in clients:
            c.queue.put(None)
        for c in clients:
            c.thread.join(timeout=2.0)
