"""The studio's settings: what `etude studio` (or a Python caller) starts it with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from etude.perform.outputs import Outputs
from etude.studio.access import Access

# Where Perform plays: fields of etude.perform.stream.Outputs, and the flag of `etude studio`
# that sets each with its help.
OUTPUT_FLAGS = {
    "jsonl": ("--jsonl", "JSON lines (PATH, or - for stdout)"),
    "port": ("--midi-port", "a MIDI output port (NAME)"),
    "osc": ("--osc", "OSC over UDP (HOST:PORT)"),
    "serve": ("--serve", "a TCP server of JSON lines ([HOST:]PORT)"),
}


@dataclass
class StudioConfig:
    model: str = "pretrained"  # the default model
    runs: Path | None = None  # a folder whose run folders are offered too
    folder: Path | None = None  # where takes are written (default: a temporary folder)
    outputs: Outputs = Outputs()  # where Perform plays (none: Perform answers 409)
    max_waiting: int = 32  # generate requests queued at most
    access: Access = field(default_factory=Access)  # who may call (default: loopback names, no token)
