"""Ingest speed and memory, against peers measured in the same run.

On the same MIDI files: our parse (symusic, framing checked), our parse + check + tokenise, the
end-to-end `etude data prepare` with 1 and 2 workers, and the parsing of music21 and pretty_midi.
Then the peak memory of preparing a synthetic 10,000-file corpus. Targets (issue 2): end to end
>= 300 files/s with 2 workers; our parsing >= 500x music21's; 10,000 files under 2 GB.

    python benchmarks/ingest.py [--corpus DIR] [--music21-files 40] [--synthetic-files 10000]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from etude.config import DataConfig, EncodingConfig  # noqa: E402
from etude.data import discover, make_encoding, prepare  # noqa: E402
from etude.data.builtin import default_dir, export_builtin  # noqa: E402
from etude.data.midi import load_pieces, read_score  # noqa: E402
from synthetic_corpus import write_corpus  # noqa: E402


def per_file(fn, paths, repeats: int = 1) -> float:
    """Seconds per file of fn over paths: the best of `repeats` passes (the first pass also
    warms the file cache and lazy imports)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for p in paths:
            fn(p)
        best = min(best, time.perf_counter() - t)
    return best / len(paths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="MIDI corpus (default: the built-in corpus, exported if needed)")
    ap.add_argument("--music21-files", type=int, default=40, help="files parsed by music21 (slow)")
    ap.add_argument("--synthetic-files", type=int, default=10000)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    corpus = a.corpus
    if corpus is None:
        corpus = default_dir()
        export_builtin(corpus, per_genre=40)
    files = discover(corpus)
    paths = [f.path for f in files]
    print(f"corpus: {corpus} ({len(paths)} files)")

    cfg = DataConfig()
    enc = make_encoding(EncodingConfig(), sorted({f.genre for f in files}))

    def ours_full(src):
        result = load_pieces(src.path, src.id, src.genre, cfg)
        if isinstance(result, list):
            for p in result:
                enc.encode(p.score, p.genre)

    import music21
    import pretty_midi

    ours_parse = per_file(read_score, paths, repeats=5)
    full = per_file(ours_full, files, repeats=3)
    pm = per_file(pretty_midi.PrettyMIDI, [str(p) for p in paths], repeats=3)
    m21 = per_file(music21.converter.parse, paths[: a.music21_files], repeats=2)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            t = time.perf_counter()
            prepare(corpus, Path(tmp) / f"w{workers}", workers=workers, force=True)
            rates[workers] = len(paths) / (time.perf_counter() - t)

    print(f"\n{'step':<46} {'ms/file':>9} {'files/s':>9}")
    for name, s in [
        ("our parse (symusic + framing check)", ours_parse),
        ("our parse + check + reduce + tokenise (1 proc)", full),
        ("pretty_midi parse", pm),
        (f"music21 parse ({a.music21_files} files)", m21),
    ]:
        print(f"{name:<46} {s * 1000:9.3f} {1 / s:9.0f}")
    for w, r in rates.items():
        print(f"{f'etude data prepare, {w} worker(s), end to end':<46} {1000 / r:9.3f} {r:9.0f}")
    print("\nratios")
    print(f"  our parse vs music21:      {m21 / ours_parse:8.0f}x faster  (target >= 500x)")
    print(f"  our parse vs pretty_midi:  {pm / ours_parse:8.0f}x faster")
    print(f"  end to end, 2 workers:     {rates[2]:8.0f} files/s = {rates[2] / 300:.2f} x target 300 files/s")
    print(f"  2 workers vs 1 worker:     {rates[2] / rates[1]:8.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        synth = write_corpus(Path(tmp) / "synthetic", a.synthetic_files)
        print(f"\nsynthetic corpus, {a.synthetic_files} files: etude data prepare in a fresh process")
        print(f"{'workers':>8} {'seconds':>8} {'files/s':>8} {'peak MB':>8} {'of 2 GB':>8}")
        for workers in (1, 2):
            wall, peak_mb = prepare_in_subprocess(synth, Path(tmp) / f"prep{workers}", workers)
            print(f"{workers:>8} {wall:8.1f} {a.synthetic_files / wall:8.0f} {peak_mb:8.0f} {peak_mb / 2048:8.2f}")
        print("(peak MB: the largest resident set of the main process or any one worker)")


_PREPARE = """
import json, resource, sys, time
from etude.cli import main
t = time.perf_counter()
code = main(["-q", "data", "prepare", sys.argv[1], "--out", sys.argv[2], "--workers", sys.argv[3]])
wall = time.perf_counter() - t
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"code": code, "wall": wall, "peak_kb": peak}), file=sys.stderr)
"""


def prepare_in_subprocess(corpus: Path, out: Path, workers: int) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one `etude data prepare` run in its own process."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", _PREPARE, str(corpus), str(out), str(workers)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    result = json.loads(done.stderr.strip().splitlines()[-1])
    return result["wall"], result["peak_kb"] / 1024


if __name__ == "__main__":
    main()
