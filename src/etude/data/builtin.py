"""`etude corpus builtin`: music21's shipped corpus exported to MIDI, one folder per style.

music21 is imported here only, inside the worker processes. Export is resumable: a source file
whose pieces were all written leaves a marker under `.done/`, and pieces already on disk are
skipped. Sources music21 cannot convert (badly formed repeats and the like) are skipped and
counted.
"""

from __future__ import annotations

import logging
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from etude.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Style:
    name: str  # genre folder name
    folder: str  # music21 corpus folder
    description: str
    opus: bool  # each source file holds many tunes


STYLES = (
    Style("bach", "bach", "J. S. Bach chorales, four voices", False),
    Style("palestrina", "palestrina", "Palestrina mass movements, four to six voices", False),
    Style("fiddle", "ryansMammoth", "Ryan's Mammoth Collection (1883), fiddle tunes", False),
    Style("folk", "essenFolksong", "Essen folk song collection, European folk melodies", True),
    Style("irish", "oneills1850", "O'Neill's Music of Ireland (1903), Irish dance tunes", True),
)


def etude_home() -> Path:
    """Where étude caches data: $ETUDE_HOME, default ~/.cache/etude."""
    return Path(os.environ.get("ETUDE_HOME", Path.home() / ".cache" / "etude"))


def default_dir() -> Path:
    return etude_home() / "corpus" / "builtin"


def _sources(style: Style) -> list[Path]:
    from music21 import corpus

    marker = f"/corpus/{style.folder}/"
    return sorted(Path(p) for p in corpus.getCorePaths() if marker in str(p).replace(os.sep, "/"))


def _export_source(style: Style, source: str, out: str, limit: int) -> tuple[int, int, bool]:
    """Write up to `limit` new pieces of one source; returns (written, failed, complete)."""
    warnings.filterwarnings("ignore")
    from music21 import converter

    folder = Path(out) / style.name
    stem = Path(source).stem
    try:
        parsed = converter.parse(source)
    except Exception:  # music21 raises many kinds on malformed sources
        return 0, 1, True
    scores = list(parsed.scores) if style.opus else [parsed]
    written = failed = 0
    for i, score in enumerate(scores):
        target = folder / (f"{stem}-{i:03d}.mid" if style.opus else f"{stem}.mid")
        if target.exists():
            continue
        if written >= limit:
            return written, failed, False
        tmp = target.with_suffix(".tmp")
        try:
            score.write("midi", fp=str(tmp))
            os.replace(tmp, target)
            written += 1
        except Exception:
            tmp.unlink(missing_ok=True)
            failed += 1
    return written, failed, True


def export_builtin(
    out: Path | None = None,
    per_genre: int = 200,
    styles: list[str] | None = None,
    workers: int | None = None,
) -> dict[str, int]:
    """Export at least `per_genre` pieces of each style (fewer only if music21 has no more).

    Returns pieces on disk per style.
    """
    out = Path(out) if out else default_dir()
    known = {s.name: s for s in STYLES}
    unknown = sorted(set(styles or []) - set(known))
    if unknown:
        raise InputError(f"unknown style(s) {', '.join(unknown)}; built-in styles: {', '.join(known)}")
    chosen = [known[n] for n in (styles or known)]
    if per_genre < 1:
        raise InputError("--per-genre must be at least 1")
    workers = workers or os.cpu_count() or 1
    todo: dict[str, list[Path]] = {}
    for style in chosen:
        (out / style.name).mkdir(parents=True, exist_ok=True)
        (out / ".done" / style.name).mkdir(parents=True, exist_ok=True)
        todo[style.name] = [p for p in _sources(style) if not (out / ".done" / style.name / p.name).exists()]
    counts = {s.name: len(list((out / s.name).glob("*.mid"))) for s in chosen}
    failed = 0
    bar = tqdm(
        desc="export built-in corpus",
        unit="piece",
        total=sum(max(0, per_genre - c) for c in counts.values()),
        disable=None,
    )
    with ProcessPoolExecutor(workers) as pool:
        while True:
            jobs = []
            for style in chosen:
                need = per_genre - counts[style.name]
                if need <= 0:
                    continue
                # A single-piece source gives at most one piece; an opus file gives hundreds.
                take = 1 if style.opus else need + 2
                for source in todo[style.name][:take]:
                    jobs.append((style, source, pool.submit(_export_source, style, str(source), str(out), need)))
                todo[style.name] = todo[style.name][take:]
            if not jobs:
                break
            for style, source, job in jobs:
                written, bad, complete = job.result()
                counts[style.name] += written
                failed += bad
                bar.update(min(written, bar.total - bar.n))
                if complete:
                    (out / ".done" / style.name / source.name).touch()
                else:
                    todo[style.name].insert(0, source)
    bar.close()
    if failed:
        log.info("%d source pieces could not be converted by music21 and were skipped", failed)
    return counts
