"""`etude data info`: a prepared folder summarised as text, from its meta.json and pieces.csv."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from etude.data.corpus import SPLITS
from etude.data.store import PieceRecord, read_meta, read_pieces


def info(data_dir: Path) -> str:
    """A plain-text summary of a prepared folder: pieces, tokens and seconds per genre and split,
    durations, and rejections by reason."""
    meta = read_meta(data_dir)
    enc = meta["settings"]["encoding"]["name"]
    unit = "frames" if enc == "pianoroll" else "tokens"
    lines = [
        f"{data_dir}: {enc} encoding, vocabulary {meta['vocab_size']}, {meta['files']} files, genres: "
        f"{', '.join(meta['genres'])}",
        "",
        f"{'split':<6} {'genre':<16} {'pieces':>7} {'augmented':>9} {unit:>10} {'minutes':>8}",
    ]
    for split in SPLITS:
        for genre, c in meta["counts"][split].items():
            lines.append(
                f"{split:<6} {genre:<16} {c.get('pieces', 0):>7} {c.get('augmented', 0):>9} "
                f"{c.get('tokens', 0):>10} {c.get('seconds', 0) / 60:>8.1f}"
            )
    durations: dict[str, list[float]] = defaultdict(list)
    for r in map(PieceRecord.of, read_pieces(Path(data_dir) / "pieces.csv")):
        if r.transpose == 0:
            durations[r.split].append(r.seconds)
    lines += ["", "durations (seconds): split  min  median  max"]
    for split in SPLITS:
        d = durations.get(split)
        if d:
            lines.append(f"  {split:<6} {min(d):6.1f} {float(np.median(d)):7.1f} {max(d):6.1f}")
    reduction = meta.get("reduction")
    if reduction:
        lines += [
            "",
            f"piano part: {reduction['rule']}",
            f"  {'genre':<16} {'files':>6} {'tracks merged':>14} {'drums dropped':>14}",
        ]
        for genre, c in reduction["genres"].items():
            lines.append(
                f"  {genre:<16} {c.get('files', 0):>6} {c.get('merged', 0):>14} {c.get('drums_dropped', 0):>14}"
            )
    grid = meta.get("grid")
    if grid:
        lines += [
            "",
            f"beat grid: {grid['rule']}",
            f"  {'genre':<16} {'pieces':>6} {'re-timed':>9} {'fit before':>11} {'after':>6}",
        ]
        for genre, c in grid["genres"].items():
            lines.append(
                f"  {genre:<16} {c['pieces']:>6} {c['retimed']:>9} {c['fit_before']:>11.2f} {c['fit_after']:>6.2f}"
            )
    rejected = meta["rejection_counts"]
    lines += ["", f"rejected: {sum(rejected.values())}"]
    lines += [f"  {n:>5}  {reason}" for reason, n in rejected.items()]
    return "\n".join(lines)
