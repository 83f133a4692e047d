"""End-to-end check of report.html in a real headless browser (run by `make e2e`).

Builds a small built-in corpus, evaluates the shipped model on it, opens the report in headless
Chromium, and passes when the page says every image and audio player decoded. Saves a
screenshot to out/e2e/report.png.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from etude.data import prepare
from etude.data.builtin import default_dir, export_builtin
from etude.evaluation.classifier import ListeningConfig
from etude.evaluation.compare import evaluate
from etude.models.pretrained import pretrained_path

OUT = Path("out/e2e")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    export_builtin(default_dir(), per_genre=20)
    prepare(default_dir(), OUT / "data")
    evaluate(
        pretrained_path("builtin"),
        OUT / "report",
        n=4,
        length="10s",
        data=OUT / "data",
        classifier_config=ListeningConfig(iterations=60),
        progress=False,
    )
    page = (OUT / "report" / "report.html").resolve().as_uri()
    profile = OUT / "chromium-profile"
    common = ["chromium", *FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    subprocess.run(
        [*common, "--window-size=1200,3000", f"--screenshot={(OUT / 'report.png').resolve()}", page],
        capture_output=True,
        timeout=120,
    )
    m = re.search(r"media check: (\d+)/(\d+) images and (\d+)/(\d+) audio players loaded", dom)
    if not m:
        print("e2e: the report's media check did not run in the browser", file=sys.stderr)
        return 1
    images, total_images, audio, total_audio = map(int, m.groups())
    print(f"e2e: {m.group(0)}; screenshot {OUT / 'report.png'}")
    return 0 if images == total_images > 0 and audio == total_audio > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
