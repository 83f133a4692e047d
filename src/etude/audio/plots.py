"""Figures a musician can open: piano-roll PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from symusic import Score  # noqa: E402


def piano_roll_png(score: Score, path: Path, title: str = "") -> Path:
    """Notes as bars: time in seconds across, MIDI pitch up, velocity as shade."""
    notes = score.to("second").tracks[0].notes if score.tracks else []
    fig, ax = plt.subplots(figsize=(10, 3.5), dpi=100)
    for n in notes:
        ax.add_patch(
            plt.Rectangle((n.time, n.pitch - 0.4), max(n.duration, 0.02), 0.8, color=plt.cm.viridis(n.velocity / 127))
        )
    end = max((n.time + n.duration for n in notes), default=1.0)
    pitches = [n.pitch for n in notes] or [60]
    ax.set_xlim(0, end)
    ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
