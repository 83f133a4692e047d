"""The studio under load (issue 17): concurrent generate requests and a page that stays live.

Starts `etude studio` (uvicorn) on a free loopback port, sends 20 generate requests of short
pieces 20 ms apart from 20 threads, and meanwhile asks /api/models every 100 ms. Reports that
all requests completed, in the order they were sent (the studio's queue is first in, first
out), their wall times, and the /api/models latency while they ran (target: every answer within
200 ms). Then the end-to-end time of one 30 s piece (MIDI, WAV and PNG written) on its own.

    python benchmarks/studio_load.py [--requests 20] [--length 4]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_generate(base: str, fields: dict) -> dict:
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(base + "/api/generate", data=data), timeout=600) as r:
        return json.loads(r.read())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--length", type=float, default=4.0, help="seconds of music per request (default 4)")
    a = ap.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "etude", "studio", "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/api/models", timeout=5).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        done: dict[int, tuple[float, str]] = {}
        sent: dict[int, float] = {}

        def one(k: int) -> None:
            sent[k] = time.perf_counter()
            r = post_generate(base, {"genre": "jazz", "length": a.length, "seed": k})
            done[k] = (time.perf_counter(), r["takes"][0]["id"])

        threads = []
        for k in range(a.requests):
            threads.append(threading.Thread(target=one, args=(k,)))
            threads[-1].start()
            time.sleep(0.02)
        latencies = []
        while any(t.is_alive() for t in threads):
            t0 = time.perf_counter()
            urllib.request.urlopen(base + "/api/models", timeout=30).read()
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.1)
        for t in threads:
            t.join()
        order = sorted(done, key=lambda k: done[k][0])
        walls = [done[k][0] - sent[k] for k in range(a.requests)]
        lat = np.array(latencies) * 1000
        print(
            f"{len(done)}/{a.requests} requests of {a.length:g} s completed; in sending order: {order == sorted(order)}"
        )
        print(f"request wall time: first {walls[0]:.2f} s, last {walls[-1]:.2f} s (queued behind the others)")
        print(
            f"/api/models while loaded: {len(lat)} calls, median {np.median(lat):.0f} ms, max {lat.max():.0f} ms "
            f"= {lat.max() / 200:.3f} x target 200 ms"
        )
        t0 = time.perf_counter()
        r = post_generate(base, {"genre": "jazz", "length": 30, "seed": 99})
        take = r["takes"][0]
        print(
            f"one 30 s piece end to end (request to MIDI, WAV and PNG written): {time.perf_counter() - t0:.2f} s "
            f"({take['seconds']} s of music, {take['notes']} notes)"
        )
        ok = len(done) == a.requests and order == sorted(order) and lat.max() <= 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
