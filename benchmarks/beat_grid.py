"""The beat grid found at ingest (etude.data.beats), against references and against its cost.

1. POP909's own beat and downbeat annotations (../shared/data/annotations/pop909): beat and
   downbeat F-measure (mir_eval, +-70 ms) of the beats found from the notes, and of the file's
   own grid beside them; where the found and annotated downbeats disagree, how often a bass note
   is struck at each (the annotations are made by a program too).
2. Held-out pieces whose grid is good (classical, folk, videogame files of the test and
   validation splits of the corpus prepared in 3, or of --data with --no-prepare; all files
   with neither; a grid fit >= 0.85), re-timed
   at random as a performance would be (tempo x0.7-1.4, a shift of 0-1 s, a slow tempo drift of up
   to 8 %, +-20 ms onset jitter, written at 120 qpm): F-measure of the beats found against the
   file's own beats moved the same way (dotted quarters in compound metres).
3. `etude data prepare` of the piano corpus with --retime auto and off, one after the other on
   this machine: the wall-time ratio (target <= 2), and the median grid fit per genre before and
   after (target >= 0.9 in every genre).
   Beside them AMLt, which also counts beats found at twice or half the score's tempo or on its
   off-beat: how much of the miss is the metrical level rather than the pulse.
Targets (issue 29): beat F >= 0.9 on both 1 and 2, downbeat F >= 0.8.

    python benchmarks/beat_grid.py [--pop 909] [--retimed 60] [--data PREPARED] [--no-prepare]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import mir_eval
import numpy as np
from symusic import Score, Tempo, Track
from symusic.core import NoteTickList

from etude.config import DataConfig
from etude.data import beats as B
from etude.data import prepare
from etude.data.corpus import load_split
from etude.data.midi import read_score, reduce_to_piano, seconds_to_ticks

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BASS_BACKED = 0.6  # annotated downbeats with a bass note struck, for a song's annotation to count as backed


def f_measure(reference: np.ndarray, found: np.ndarray) -> float:
    return mir_eval.beat.f_measure(mir_eval.beat.trim_beats(reference), mir_eval.beat.trim_beats(found))


def any_level(reference: np.ndarray, found: np.ndarray) -> float:
    """AMLt (mir_eval.beat.continuity): the share of beats on a continuously correct stretch when
    twice, half the tempo and the off-beat also count: on the music's pulse, at whatever level."""
    return mir_eval.beat.continuity(mir_eval.beat.trim_beats(reference), mir_eval.beat.trim_beats(found))[3]


def own_beats(score: Score) -> tuple[np.ndarray, np.ndarray]:
    """The file's own beats and bar starts in seconds (a dotted quarter a beat in x/8 metres)."""
    tpq, end = score.ticks_per_quarter, score.end()
    seconds = np.linspace(0, score.to("second").end() + 2, 20000)
    ticks = seconds_to_ticks(score, seconds)
    sig = score.time_signatures[0] if len(score.time_signatures) else None
    compound = sig is not None and sig.denominator == 8 and sig.numerator % 3 == 0
    bar = sig.numerator * 4 / sig.denominator * tpq if sig else 4 * tpq
    beats = np.interp(np.arange(0, end, 1.5 * tpq if compound else tpq), ticks, seconds)
    return beats, np.interp(np.arange(0, end, bar), ticks, seconds)


def bass_onsets(score: Score) -> np.ndarray:
    """Sorted onset times (s) of a one-track score's bass notes: those at least a fifth (7
    semitones) below the piece's median pitch. Most bars of pop start with one."""
    notes = score.to("second").tracks[0].notes.numpy()
    return np.sort(notes["time"][notes["pitch"] <= np.median(notes["pitch"]) - 7])


def bass_share(times: np.ndarray, bass: np.ndarray) -> float:
    """The share of `times` (s) with one of the sorted `bass` onsets (s) within 70 ms."""
    if len(times) == 0 or len(bass) == 0:
        return 0.0
    i = np.searchsorted(bass, times)
    before, after = bass[np.maximum(i - 1, 0)], bass[np.minimum(i, len(bass) - 1)]
    return float(np.mean(np.minimum(np.abs(times - before), np.abs(after - times)) < 0.07))


def pop909(n: int) -> dict:
    """Beat and downbeat F-measure against POP909's annotations, which a program made too: beside
    them, how often a bass note is struck at the annotated downbeats and at those found (where the
    two disagree, F < 0.3, and elsewhere), and the downbeat F over the songs whose annotated
    downbeats mostly (BASS_BACKED) carry one."""
    folder = SHARED / "annotations" / "pop909"
    songs = sorted(p.name.split(".")[0] for p in folder.glob("*.beat_midi.txt"))[:n]
    rows: dict[str, list[float]] = {
        k: [] for k in ("beat", "downbeat", "file_beat", "seconds", "bass_ref", "bass_found")
    }
    for song in songs:
        ref = np.loadtxt(folder / f"{song}.beat_midi.txt")
        score = reduce_to_piano(read_score(SHARED / "piano" / "pop" / f"{song}.mid"))
        t0 = time.perf_counter()
        grid = B.find_grid(score)
        rows["seconds"].append(time.perf_counter() - t0)
        ref_down, bass = ref[ref[:, 2] == 1, 0], bass_onsets(score)
        rows["beat"].append(f_measure(ref[:, 0], grid.beats))
        rows["downbeat"].append(f_measure(ref_down, grid.downbeats))
        rows["file_beat"].append(f_measure(ref[:, 0], own_beats(score)[0]))
        rows["bass_ref"].append(bass_share(ref_down, bass))
        rows["bass_found"].append(bass_share(grid.downbeats, bass))
    r = {k: np.array(v) for k, v in rows.items()}
    apart, backed = r["downbeat"] < 0.3, r["bass_ref"] >= BASS_BACKED
    return {k: float(np.mean(v)) for k, v in r.items()} | {
        "songs": len(songs),
        "apart": {"songs": int(apart.sum())} | {k: float(np.mean(r[k][apart])) for k in ("bass_ref", "bass_found")},
        "together": {k: float(np.mean(r[k][~apart])) for k in ("bass_ref", "bass_found")},
        "bass_backed": {"songs": int(backed.sum()), "downbeat": float(np.mean(r["downbeat"][backed]))},
    }


def performed(score: Score, rng: np.random.Generator):
    """The score played as a performance: its notes at warped times, written at 120 qpm."""
    notes = score.to("second").tracks[0].notes.numpy()
    x, shift, depth, period = rng.uniform(0.7, 1.4), rng.uniform(0, 1), rng.uniform(0, 0.08), rng.uniform(20, 60)

    def warp(t):
        return shift + (t + depth * period / (2 * np.pi) * np.sin(2 * np.pi * t / period)) / x

    on = np.maximum(warp(notes["time"]) + rng.uniform(-0.02, 0.02, len(notes["time"])), 0)
    off = warp(notes["time"] + notes["duration"])
    out = Score(480)
    out.tempos.append(Tempo(0, 120.0))
    track = Track(name="Piano", program=0)
    track.notes = NoteTickList.from_numpy(
        np.round(on * 960).astype(np.int32),
        np.maximum(np.round((off - on) * 960), 1).astype(np.int32),
        notes["pitch"].astype(np.int8),
        notes["velocity"].astype(np.int8),
    )
    out.tracks.append(track)
    return out, warp


def candidates(genre: str, split: dict[str, str] | None) -> list[Path]:
    """The genre's files; with the corpus's split, only those of its test and validation splits:
    the tracker's settings were chosen on the training split's pieces."""
    files = sorted((SHARED / "piano" / genre).glob("*.mid"))
    if split is None:
        return files
    return [f for f in files if split.get(f"{genre}/{f.name}", "train") != "train"]


def retimed(per_genre: int, split: dict[str, str] | None) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for genre in ("classical", "folk", "videogame"):
        files = candidates(genre, split)
        random.Random(0).shuffle(files)
        beat, down, level = [], [], []
        for path in files:
            score = reduce_to_piano(read_score(path))
            if B.own_grid_fit(score) < 0.85:
                continue
            beats, bars = own_beats(score)
            played, warp = performed(score, rng)
            grid = B.find_grid(played)
            beat.append(f_measure(warp(beats), grid.beats))
            down.append(f_measure(warp(bars), grid.downbeats))
            level.append(any_level(warp(beats), grid.beats))
            if len(beat) == per_genre:
                break
        on_level = np.array(beat) >= 0.9  # the beats found at the score's own level
        out[genre] = {
            "beat": float(np.mean(beat)),
            "downbeat": float(np.mean(down)),
            "any_level": float(np.mean(level)),
            "pieces": len(beat),
            "on_level": int(on_level.sum()),
            "downbeat_on_level": float(np.mean(np.array(down)[on_level])) if on_level.any() else float("nan"),
        }
    return out


def prepare_both() -> tuple[dict, dict[str, str]]:
    """Times and grid fits of the corpus prepared without and with re-timing, and its split."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("off", "auto"):
            t0 = time.perf_counter()
            meta = prepare(SHARED / "piano", Path(tmp) / mode, DataConfig(retime=mode), workers=2)
            out[mode] = {"seconds": round(time.perf_counter() - t0, 1), "grid": meta["grid"]["genres"]}
        split = load_split(Path(tmp) / "auto" / "split.json")
    out["ratio"] = out["auto"]["seconds"] / out["off"]["seconds"]
    return out, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pop", type=int, default=909, help="POP909 songs (default all 909)")
    parser.add_argument("--retimed", type=int, default=60, help="re-timed pieces per genre (default 60)")
    parser.add_argument("--data", type=Path, help="with --no-prepare: the corpus prepared, for its split")
    parser.add_argument("--no-prepare", action="store_true", help="skip the two preparations of the corpus")
    args = parser.parse_args()
    result: dict = {"pop909": pop909(args.pop)}
    p = result["pop909"]
    print(
        f"POP909 ({p['songs']} songs): beat F {p['beat']:.3f} (target 0.9; the file's own grid {p['file_beat']:.3f}), "
        f"downbeat F {p['downbeat']:.3f} (target 0.8); {1000 * p['seconds']:.0f} ms a song"
    )
    a, t, b = p["apart"], p["together"], p["bass_backed"]
    print(
        f"  a bass note struck at the annotated / found downbeats: {a['bass_ref']:.2f} / {a['bass_found']:.2f} in the "
        f"{a['songs']} songs where they disagree (F < 0.3), {t['bass_ref']:.2f} / {t['bass_found']:.2f} elsewhere; "
        f"downbeat F {b['downbeat']:.3f} over the {b['songs']} songs with one at >= {BASS_BACKED} of their "
        "annotated downbeats"
    )
    split = load_split(args.data / "split.json") if args.data else None
    if not args.no_prepare:
        prep, split = prepare_both()
        result["prepare"] = prep
        print(
            f"prepare: {prep['off']['seconds']} s without re-timing, {prep['auto']['seconds']} s with "
            f"(ratio {prep['ratio']:.2f}, target <= 2)"
        )
        for genre, g in prep["auto"]["grid"].items():
            fit = f"grid fit {g['fit_before']:.2f} -> {g['fit_after']:.2f}"
            print(f"  {genre:<10} {fit} ({g['retimed']} of {g['pieces']} re-timed)")
    result["retimed"] = retimed(args.retimed, split)
    for genre, r in result["retimed"].items():
        print(
            f"re-timed {genre} ({r['pieces']}{' held-out' if split else ''}): beat F {r['beat']:.3f}, "
            f"downbeat F {r['downbeat']:.3f}, AMLt {r['any_level']:.3f} (any metrical level); "
            f"downbeat F {r['downbeat_on_level']:.3f} in the {r['on_level']} with beat F >= 0.9"
        )
    Path("out").mkdir(exist_ok=True)
    Path("out/beat_grid.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
