"""End-to-end check of the studio in a real headless browser (run by `make e2e`).

Starts `etude studio --token` on a free loopback port and opens the address it prints (with its
token, as a user would), drives headless Chromium over its DevTools protocol: waits for the
models, checks that the form-plan field is hidden for the default model and shown for the model
that remembers the piece, chooses that model, the folk genre, 10 s, the plan AABA and a key hold
of 2, presses Generate, and waits until the new take's piano-roll image has decoded, its audio
element reports a duration and its title names the plan and the hold. Then reloads the page
(the token has left the address; the page keeps it) and passes when the take is listed again with
its roll and audio. Saves screenshots at a desktop's and a phone's width to out/e2e/studio*.png.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import websockets

from etude.generation.generate import Sampling

OUT = Path("out/e2e")
CHECK = """(() => {
  const li = document.querySelector('#takes li');
  if (!li) return JSON.stringify({ready: false, error: document.getElementById('error').textContent});
  const img = li.querySelector('img'), audio = li.querySelector('audio');
  return JSON.stringify({ready: img.complete && img.naturalWidth > 0 && audio.duration > 0,
    width: img.naturalWidth, duration: audio.duration, title: li.querySelector('h3').textContent,
    status: document.getElementById('status').textContent});
})()"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float) -> str:
    deadline = time.time() + seconds
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


class DevTools:
    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def eval(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    async def screenshot(self, path: Path, width: int, height: int, mobile: bool) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
        )
        await asyncio.sleep(0.5)
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


async def wait_for_take(tools: DevTools, tries: int) -> dict:
    state = {}
    for _ in range(tries):  # 0.1 s each
        state = json.loads(await tools.eval(CHECK))
        if state.get("ready") or state.get("error"):
            break
        await asyncio.sleep(0.1)
    return state


async def drive(studio_url: str, debug_port: int) -> dict:
    targets = json.loads(wait_http(f"http://127.0.0.1:{debug_port}/json/list", 30))
    page = next(t for t in targets if t["type"] == "page")
    async with websockets.connect(page["webSocketDebuggerUrl"], max_size=50_000_000) as ws:
        tools = DevTools(ws)
        await tools.call("Page.enable")
        await tools.call("Page.navigate", url=studio_url)
        for _ in range(300):  # the models are listed
            if await tools.eval("document.getElementById('genre').options.length"):
                break
            await asyncio.sleep(0.1)
        shown = await tools.eval("document.getElementById('top_p-out').textContent")
        if shown != str(Sampling().top_p):
            return {"error": f"the top-p slider shows {shown!r}, not the house setting {Sampling().top_p}"}
        if not await tools.eval("document.getElementById('form-field').offsetParent === null"):
            return {"error": "the form-plan field shows for a model without a memory of the piece"}
        await tools.eval(
            "const m = document.getElementById('model'); m.value = 'pretrained:piano-memory';"
            "m.dispatchEvent(new Event('change')); true"
        )
        if await tools.eval("document.getElementById('form-field').offsetParent === null"):
            return {"error": "the form-plan field is hidden for the model that remembers the piece"}
        await tools.eval(
            "const g = document.getElementById('genre'); g.value = 'folk'; g.dispatchEvent(new Event('change'));"
            "const l = document.getElementById('length'); l.value = '10'; l.dispatchEvent(new Event('input'));"
            "document.getElementById('form').value = 'AABA';"
            "document.getElementById('section_bars').value = '2';"
            "const k = document.getElementById('key_hold'); k.value = '2'; k.dispatchEvent(new Event('input'));"
            "document.getElementById('go').click(); true"
        )
        state = await wait_for_take(tools, 1200)  # up to 120 s
        if not state.get("ready"):
            return state
        if "form AABA (2 bars a section) · key hold 2" not in state.get("title", ""):
            return {**state, "ready": False, "error": "the take's title does not name its form plan and key hold"}
        state["address after load"] = await tools.eval("location.href")
        await tools.call("Page.reload")
        await asyncio.sleep(0.5)
        again = await wait_for_take(tools, 300)
        state["after reload"] = again
        state["ready"] = bool(again.get("ready")) and "token" not in state["address after load"]
        await tools.screenshot(OUT / "studio.png", 1200, 1100, mobile=False)
        await tools.screenshot(OUT / "studio-phone.png", 390, 900, mobile=True)
        return state


def start_studio(port: int) -> tuple[subprocess.Popen, str]:
    """`etude studio --token` and the address it prints (with the token)."""
    studio = subprocess.Popen(
        [sys.executable, "-m", "etude", "studio", "--port", str(port), "--token"], stderr=subprocess.PIPE, text=True
    )
    for line in studio.stderr:
        found = re.search(r"(http://\S+token=\S+)", line)
        if found:
            threading.Thread(target=studio.stderr.read, daemon=True).start()  # the pipe never fills
            return studio, found.group(1)
    raise RuntimeError(f"etude studio printed no address with a token (exit status {studio.wait()})")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    port, debug_port = free_port(), free_port()
    studio, url = start_studio(port)
    browser = subprocess.Popen(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            f"--remote-debugging-port={debug_port}",
            f"--user-data-dir={(OUT / 'chromium-studio').resolve()}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(url.replace("/?", "/api/models?"), 120)
        t0 = time.perf_counter()
        state = asyncio.run(drive(url, debug_port))
        seconds = time.perf_counter() - t0
    finally:
        browser.terminate()
        studio.terminate()
        browser.wait(timeout=30)
        studio.wait(timeout=30)
    print(f"e2e studio: {json.dumps(state)} after {seconds:.1f} s; screenshots in {OUT}/studio*.png")
    return 0 if state.get("ready") else 1


if __name__ == "__main__":
    sys.exit(main())
