"""A piece's beat grid, found from its notes, and the piece re-timed onto it.

REMI's bars and positions come from a file's own beat grid (its tempo map and time signature).
Where that grid is not the music's (piano-roll transcriptions, unquantised performances, a grid
shifted off the beat), the beats are found from the notes and the piece is re-timed so that each
found beat falls on a beat of the file it becomes.

A file whose onsets sit on the sixteenths of its own grid moved by a constant (POP909: its tempo
is right, its beat is not; `grid_shift`) keeps its tempo map: its beats are its own quarters
moved by that constant, on whichever of the four sixteenths carries the most accent (notes'
velocity, weight in the bass and length: `accent_weights`, `shifted_beats`). Any other file's
beats come from the tracker.

The tracker (Ellis 2007, "Beat tracking by dynamic programming", J. New Music Research 36(1)):
1. an onset-strength signal at `FPS` frames per second from note onsets (chord size and velocity
   weighted, the lowest notes counted more), smoothed;
2. the beat period from its autocorrelation, weighted by a log-normal tempo prior one octave
   wide, centred on IOI_BEATS median inter-onset intervals; the file's own tempo (or twice or
   half it) is kept where it scores nearly as well (POP909's tempos are right, its phase is not);
3. beats by dynamic programming: each beat's score is the onset strength there plus the best
   earlier beat's score less `TIGHTNESS * log(interval / period)^2`, so the tempo may drift;
4. the beats moved onto the onsets' sixteenth and triplet grid (`refine`), and split in two where
   that puts FINER_GAIN more of the onsets on it (`split_if_finer`);
5. downbeats: the metre (bars of 2, 3 or 4 beats) from how the evidence for a bar start (bass, a
   chord change, strong onsets on the beat) repeats, then a Viterbi path over the position in
   the bar rewarding bar starts on beats with that evidence, where a bar of another length
   costs BAR_CHANGE_COST.

Grid fit (`grid_fit`): the share of onsets within `FIT_TOLERANCE` beats of a sixteenth or a triplet
eighth of the grid; notes placed at random score about 0.36 (6 grid points per beat x 0.06).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import next_fast_len
from symusic import Score, Tempo, TimeSignature, Track
from symusic.core import NoteTickList

from etude.data.midi import ticks_to_seconds

FPS = 50  # onset-strength frames per second
PRIOR_S = 0.55  # centre of the tempo prior: seconds per beat (~110 bpm)
MIN_PERIOD_S, MAX_PERIOD_S = 0.25, 1.5  # 40-240 beats per minute
TIGHTNESS = 80.0  # how strongly the tracker holds the tempo (Ellis's alpha)
FIT_TOLERANCE = 0.03  # beats either side of a grid point that count as on it
SHIFT_FIT = 0.7  # a file fitting its own sixteenths this well once moved by a constant keeps its tempo
PHASE_TOLERANCE = 0.06  # beats either side of a candidate beat within which an onset counts for it
KEEP_FIT = 0.75  # a file whose own grid fits at least this well is left as it is
IOI_BEATS = 2.5  # the tempo prior's centre in median inter-onset intervals
PRIOR_RANGE_S = (0.35, 0.8)  # ... kept within these seconds per beat
HARMONICS = (0.5, 0.5)  # weight of the autocorrelation at twice and at half a candidate period
FILE_TEMPO_SHARE = 0.8  # the file's own tempo is kept when it scores this share of the best
TEMPO_TOLERANCE_S = 0.03  # a new tempo is written before any beat strays further from its time
FINER_GAIN = 0.05  # grid fit that beats split in two must gain to be taken
BAR_CHANGE_COST = 8.0  # downbeat evidence (in units of its mean) a bar of another length must earn
DUPLE_SHARE = 1.2  # how much more the evidence must repeat every 2 beats than every 4 for bars of 2


@dataclass(frozen=True)
class BeatGrid:
    """Beat times and bar starts of a piece, in seconds."""

    beats: np.ndarray  # (B,) seconds, increasing
    bar_starts: np.ndarray  # (D,) indices into beats of the beats that start bars, increasing

    @property
    def downbeats(self) -> np.ndarray:
        return self.beats[self.bar_starts]


# ----------------------------------------------------------------------------- grid fit
def grid_fit(onsets_in_beats: np.ndarray) -> float:
    """Share of onsets (in beats) within FIT_TOLERANCE beats of a sixteenth or a triplet eighth:
    mean over onsets of [min(|4b - round(4b)| / 4, |3b - round(3b)| / 3) <= FIT_TOLERANCE];
    nan for no onsets."""
    b = np.asarray(onsets_in_beats, dtype=np.float64)
    if b.size == 0:
        return float("nan")
    _, off = nearest_grid_point(b)
    return float(np.mean(off <= FIT_TOLERANCE + 1e-9))


def nearest_grid_point(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For positions in beats, (N,): the nearest sixteenth or triplet eighth, and the distance
    to it, both in beats, (N,) each."""
    to16, to12 = np.round(4 * b) / 4, np.round(3 * b) / 3
    nearest = np.where(np.abs(b - to16) <= np.abs(b - to12), to16, to12)
    return nearest, np.abs(b - nearest)


def own_grid_fit(score: Score) -> float:
    """grid_fit of a one-track score's onsets on the file's own beats (its ticks per quarter)."""
    n = score.tracks[0].notes.numpy() if score.tracks else {"time": np.zeros(0)}
    return grid_fit(n["time"] / score.ticks_per_quarter)


def grid_shift(score: Score) -> tuple[float, float]:
    """(shift, fit) of a one-track score on its own grid moved by a constant: the shift in beats,
    in [0, 1/4), that puts the most onsets within FIT_TOLERANCE beats of a sixteenth once added
    to their positions on the file's own beats (searched by steps of 1/200, then moved to the
    median of those onsets' offsets), and that share of the distinct onset times (nan for none)."""
    n = score.tracks[0].notes.numpy() if score.tracks else {"time": np.zeros(0)}
    b = np.unique(n["time"]) / score.ticks_per_quarter
    if b.size == 0:
        return 0.0, float("nan")
    shifts = np.arange(0.0, 0.25, 0.005)
    x = 4 * (b[None, :] + shifts[:, None])  # (shifts, onsets) in sixteenths
    on = np.abs(x - np.round(x)) <= 4 * FIT_TOLERANCE + 1e-9
    k = int(np.argmax(on.mean(axis=1)))
    centred = shifts[k] + float(np.median((np.round(x[k]) - x[k])[on[k]])) / 4  # the onsets' middle
    return centred % 0.25, float(on[k].mean())


def accent_weights(pitches: np.ndarray, velocities: np.ndarray, durations: np.ndarray | None = None) -> np.ndarray:
    """How strongly each note marks a beat, (N,): velocity / 127, doubled for notes in the lowest
    third of the piece's pitches, and with `durations` times the square root of each note's
    duration over the median (clipped to 1/4..4): a beat is where the bass and long notes fall."""
    weight = (
        np.asarray(velocities, dtype=np.float64) / 127.0 * np.where(pitches <= np.quantile(pitches, 0.33), 2.0, 1.0)
    )
    if durations is None:
        return weight
    return weight * np.sqrt(np.clip(durations / max(float(np.median(durations)), 1e-9), 0.25, 4.0))


def shifted_beats(score: Score, shift: float) -> np.ndarray:
    """Beat times (s), (B,), of a one-track score whose grid is its own moved by `shift` beats
    (`grid_shift`): of the four sixteenths that could be the beat, the one whose onsets (within
    PHASE_TOLERANCE beats) carry the most `accent_weights`; from there a beat every quarter of
    the file's own grid, timed by its tempo map."""
    tpq = score.ticks_per_quarter
    n = score.tracks[0].notes.numpy()
    position = n["time"] / tpq + shift
    accents = accent_weights(n["pitch"].astype(np.int64), n["velocity"], n["duration"].astype(np.float64))
    gains = [np.sum(accents[np.abs((position - k / 4 + 0.5) % 1 - 0.5) < PHASE_TOLERANCE]) for k in range(4)]
    offset = int(np.argmax(gains)) / 4 - shift  # the first beat's position on the file's own beats, mod 1
    last = (score.end() / tpq) + 1
    quarters = np.arange(offset % 1.0, last, 1.0)
    return ticks_to_seconds(score, quarters * tpq)


# ----------------------------------------------------------------------------- tracking
def onset_strength(onsets: np.ndarray, pitches: np.ndarray, velocities: np.ndarray) -> np.ndarray:
    """Onset strength at FPS frames per second, shape (frames,): per onset frame the log of
    1 + its notes' `accent_weights` (velocity and bass, not length), smoothed with a 20 ms
    Gaussian."""
    frames = np.round(np.asarray(onsets) * FPS).astype(np.int64)
    if frames.size == 0:
        return np.zeros(1)
    env = np.bincount(frames, weights=accent_weights(pitches, velocities), minlength=frames.max() + 2 * FPS)
    env = np.log1p(env)
    sigma = 0.02 * FPS  # 20 ms in frames
    kernel = np.exp(-0.5 * (np.arange(-3 * int(np.ceil(sigma)), 3 * int(np.ceil(sigma)) + 1) / sigma) ** 2)
    return np.convolve(env, kernel / kernel.sum(), mode="same")


def beat_period(env: np.ndarray, file_period: float | None = None, centre: float = PRIOR_S) -> float:
    """Beat period in frames: the lag maximising the onset autocorrelation (with half the
    autocorrelation at twice and at half the lag: a beat is also felt there) times a log-normal
    prior centred on `centre` seconds, one octave wide, refined by a parabola through the peak.
    `file_period` (frames), the file's own beat, is taken when its score is near the best."""
    x = env - env.mean()
    n = len(x)
    size = next_fast_len(2 * n)  # a length of small prime factors: an FFT of a prime length is slow
    spectrum = np.fft.rfft(x, size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    lo, hi = int(MIN_PERIOD_S * FPS), min(int(MAX_PERIOD_S * FPS), n // 2 - 1)
    if hi <= lo + 2:
        return file_period or PRIOR_S * FPS
    lags = np.arange(lo, hi + 1)

    def strength(lag: np.ndarray) -> np.ndarray:
        at = lambda x: np.interp(x, np.arange(n), ac)  # noqa: E731
        return at(lag) + HARMONICS[0] * at(2 * lag) + HARMONICS[1] * at(lag / 2)

    prior = lambda lag: np.exp(-0.5 * np.log2(lag / (centre * FPS)) ** 2)  # noqa: E731
    score = prior(lags) * strength(lags)
    k = int(np.argmax(score))
    if file_period is not None and lo <= file_period <= hi:
        for level in (file_period, file_period * 2, file_period / 2):
            if lo <= level <= hi and prior(level) * strength(np.array([level]))[0] >= FILE_TEMPO_SHARE * score[k]:
                return float(level)
    if 0 < k < len(lags) - 1:
        a, b, c = score[k - 1], score[k], score[k + 1]
        denominator = a - 2 * b + c
        shift = 0.5 * (a - c) / denominator if denominator != 0 else 0.0
        return float(lags[k] + np.clip(shift, -0.5, 0.5))
    return float(lags[k])


def track_beats(env: np.ndarray, period: float) -> np.ndarray:
    """Beat frames by dynamic programming (Ellis 2007); `period` in frames. Returns (B,) frames.

    A beat's predecessors lie between 2 and 1/2 periods before it, so the frames of a block
    shorter than half a period never depend on each other: each block is one vectorised step."""
    n = len(env)
    local = env / (env.std() + 1e-9)
    steps = np.arange(-int(round(2 * period)), -int(round(period / 2)) + 1)  # candidate previous beats
    penalty = -TIGHTNESS * np.log(-steps / period) ** 2
    score = local.copy()
    back = np.full(n, -1, dtype=np.int64)
    block = -int(steps[-1])
    for i0 in range(block, n, block):
        rows = np.arange(i0, min(i0 + block, n))
        prev = rows[:, None] + steps[None, :]  # (L, S)
        cand = np.where(prev >= 0, score[np.maximum(prev, 0)] + penalty, -np.inf)
        j = np.argmax(cand, axis=1)
        best = cand[np.arange(len(rows)), j]
        take = best > 0
        score[rows[take]] += best[take]
        back[rows[take]] = prev[np.arange(len(rows)), j][take]
    # the last beat: the best-scoring frame in the last period
    tail = max(0, n - int(round(period)) - 1)
    i = tail + int(np.argmax(score[tail:]))
    beats = [i]
    while back[beats[-1]] >= 0:
        beats.append(int(back[beats[-1]]))
    return np.array(beats[::-1], dtype=np.int64)


def _beat_features(beats_s: np.ndarray, onsets, pitches, velocities) -> np.ndarray:
    """Per beat: how low its lowest note at the beat is (semitones below the piece's median
    pitch, 0 if above), chord change (1 - cosine of the pitch-class histograms of this beat and
    the one before, over the lower half of the pitches: harmony, not the tune), and the
    velocity-weighted count of notes at the beat; each scaled to unit mean. Shape (B, 3)."""
    edges = np.r_[beats_s - 0.05, np.inf]
    which = np.searchsorted(edges, onsets, side="right") - 1
    ok = which >= 0
    b = len(beats_s)
    weight = np.asarray(velocities, dtype=np.float64)[ok] / 127.0
    w, p = which[ok], pitches[ok]
    middle = np.median(pitches)
    near = np.abs(onsets[ok] - beats_s[w]) < 0.07  # at the beat itself
    lowest = np.full(b, middle)
    np.minimum.at(lowest, w[near], p[near])
    bass = middle - lowest
    strength = np.bincount(w, weights=weight * near, minlength=b)[:b]
    pcs = np.zeros((b, 12))
    harmony = p <= middle
    np.add.at(pcs, (w[harmony], p[harmony] % 12), weight[harmony])
    norm = np.linalg.norm(pcs, axis=1) + 1e-9
    change = np.r_[0.0, 1.0 - np.sum(pcs[1:] * pcs[:-1], axis=1) / (norm[1:] * norm[:-1])]
    feats = np.stack([bass, change, strength], axis=1)
    return feats / (feats.mean(axis=0) + 1e-9)


def metre_of(evidence: np.ndarray) -> int:
    """Beats in a bar from the downbeat evidence per beat (mean 0), (B,): 3 where it repeats more
    strongly every 3 beats than every 2 or 4, else 2 where every 2 beats repeats DUPLE_SHARE
    times as strongly as every 4, else 4. Repeats = the evidence's autocorrelation at that lag."""
    if len(evidence) < 16:
        return 4
    ac = {lag: float(np.dot(evidence[:-lag], evidence[lag:])) / (len(evidence) - lag) for lag in (2, 3, 4)}
    if ac[3] > max(ac[2], ac[4]):
        return 3
    return 2 if ac[2] > DUPLE_SHARE * ac[4] else 4


def find_downbeats(beats_s: np.ndarray, onsets, pitches, velocities, metre: int | None = None) -> np.ndarray:
    """Indices of the beats that start bars: a Viterbi path over the position in the bar (0 to
    metre - 1; by `metre_of` where not given) from beat to beat, each beat moving one position on,
    or starting a new bar early or late at a cost of BAR_CHANGE_COST; a beat at position 0 earns
    its downbeat evidence (the sum of `_beat_features`, less its mean). Returns (D,) indices,
    increasing."""
    if len(beats_s) < 8:
        return np.arange(0, len(beats_s), metre or 4)
    evidence = _beat_features(beats_s, onsets, pitches, velocities).sum(axis=1)
    evidence = evidence - evidence.mean()
    metre = metre or metre_of(evidence)
    b = len(beats_s)
    # cost of moving from position i to j: 0 for j = i + 1 (mod metre), else BAR_CHANGE_COST
    step = np.full((metre, metre), -BAR_CHANGE_COST)
    step[np.arange(metre), (np.arange(metre) + 1) % metre] = 0.0
    score = np.zeros(metre)
    score[0] = evidence[0]
    back = np.zeros((b, metre), dtype=np.int64)
    for k in range(1, b):
        total = score[:, None] + step  # (from, to)
        back[k] = np.argmax(total, axis=0)
        score = total[back[k], np.arange(metre)]
        score[0] += evidence[k]
    pos = np.empty(b, dtype=np.int64)
    pos[-1] = int(np.argmax(score))
    for k in range(b - 1, 0, -1):
        pos[k - 1] = back[k, pos[k]]
    return np.flatnonzero(pos == 0)


def find_grid(score: Score) -> BeatGrid:
    """The beat grid of a one-track score's notes (see the module docstring): its own grid
    moved by a constant where that fits (SHIFT_FIT), else the tracker's."""
    onsets, pitches, velocities = _onsets(score)
    shift, fit = grid_shift(score)
    if fit >= SHIFT_FIT:
        beats = shifted_beats(score, shift)
    else:
        env = onset_strength(onsets, pitches, velocities)
        frames = track_beats(env, beat_period(env, _file_period(score), prior_centre(onsets)))
        beats = split_if_finer(refine(frames / FPS, onsets), onsets)
    return BeatGrid(beats, find_downbeats(beats, onsets, pitches, velocities))


def prior_centre(onsets: np.ndarray) -> float:
    """Centre of the tempo prior in seconds per beat: IOI_BEATS times the median interval between
    distinct onsets (within 30 ms), kept within PRIOR_RANGE_S: most notated music moves in notes
    of a half or a quarter of its beat."""
    times = np.unique(np.round(np.sort(onsets) / 0.03))
    if len(times) < 8:
        return PRIOR_S
    return float(np.clip(IOI_BEATS * np.median(np.diff(times)) * 0.03, *PRIOR_RANGE_S))


def refine(beats: np.ndarray, onsets: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Beats moved onto the onsets' grid: each round, every onset near a sixteenth or triplet
    eighth (within 0.12 beats) says how far off that grid point it is; each beat moves by the
    median of what the onsets of the half beat either side of it say (in seconds), and the
    beats are kept in order. For piano rolls this removes the tracker's frame-size jitter; for
    performances it follows the player's timing from beat to beat."""
    beats = np.asarray(beats, dtype=np.float64).copy()
    if len(beats) < 3:
        return beats
    for _ in range(rounds):
        pos = seconds_to_beats(beats, onsets)
        target, near = nearest_grid_point(pos)
        use = near <= 0.12
        k = np.clip(np.round(target[use]).astype(np.int64), 0, len(beats) - 1)
        period = np.gradient(beats)[k]
        error = (pos[use] - target[use]) * period  # seconds late (+) or early (-)
        order = np.lexsort((error, k))  # by beat, then by error: each beat's median is in its middle
        k, error = k[order], error[order]
        first = np.searchsorted(k, np.arange(len(beats)))
        count = np.searchsorted(k, np.arange(len(beats)), side="right") - first
        low = np.minimum(first + (count - 1) // 2, len(error) - 1)
        high = np.minimum(first + count // 2, len(error) - 1)
        shift = np.where(count > 0, (error[low] + error[high]) / 2, 0.0) if len(error) else np.zeros(len(beats))
        moved = beats + shift
        if np.all(np.diff(moved) > 0):
            beats = moved
    return beats


def split_if_finer(beats: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """The beats (s), (B,), or each split in two, (2B - 1,), where that raises the onsets' grid fit
    by FINER_GAIN or more although the fit's tolerance then shrinks to half as many seconds:
    onsets on a beat's odd thirty-seconds are the sixteenths of a beat twice as fast (a piano
    roll's half notes found where the rag's pulse is the quarter). Never faster than
    MIN_PERIOD_S a beat (median)."""
    if len(beats) < 3 or np.median(np.diff(beats)) / 2 < MIN_PERIOD_S:
        return beats
    halves = np.r_[np.stack([beats[:-1], (beats[:-1] + beats[1:]) / 2], axis=1).ravel(), beats[-1]]
    gain = grid_fit(seconds_to_beats(halves, onsets)) - grid_fit(seconds_to_beats(beats, onsets))
    return halves if gain >= FINER_GAIN else beats


def _file_period(score: Score) -> float | None:
    """The file's own beat period in frames: its most used tempo (time-weighted), or None when it
    has no tempo events (the default 120 qpm means nothing then)."""
    if not len(score.tempos):
        return None
    ticks = np.array([t.time for t in score.tempos] + [score.end()], dtype=np.float64)
    qpm = np.array([t.qpm for t in score.tempos])
    span = np.maximum(np.diff(ticks), 0)
    main = qpm[int(np.argmax(span))] if span.sum() > 0 else qpm[0]
    return 60.0 / main * FPS


def fit_to_grid(score: Score, mode: str = "auto") -> tuple[Score, float, float]:
    """(score, grid fit before, grid fit after): with mode "auto", a one-track score whose own
    grid fits under KEEP_FIT is re-timed onto the grid found from its notes, when that fits
    better; one whose grid fits but whose bars are a beat long gets bars found from its notes
    (`with_found_bars`); otherwise (or with mode "off") the score as it is."""
    before = own_grid_fit(score)
    if mode == "off" or score.note_num() < 8 or np.isnan(before):
        return score, before, before
    if before >= KEEP_FIT:
        return (with_found_bars(score) if one_beat_bars(score) else score), before, before
    grid = find_grid(score)
    if len(grid.beats) < 4:
        return score, before, before
    new = retime(score, grid)
    after = own_grid_fit(new)
    return (new, before, after) if after > before else (score, before, before)


def one_beat_bars(score: Score) -> bool:
    """Whether a score's own time signatures make bars of a quarter note or less over most of its
    length: a bar token every beat, no metre (617 of POP909's 909 files are written in 1/4)."""
    sigs = score.time_signatures
    if not len(sigs):
        return False
    ticks = np.array([s.time for s in sigs] + [score.end()], dtype=np.float64)
    span = np.maximum(np.diff(ticks), 0)
    short = np.array([4 * s.numerator / s.denominator <= 1 for s in sigs])
    return bool(span[short].sum() > span.sum() / 2)


def with_found_bars(score: Score) -> Score:
    """A one-track score on its own beats (its quarter notes), its bars those `find_downbeats`
    finds from its notes: the notes keep their places in beats (re-written at `retime`'s ticks per
    quarter) and their times to within TEMPO_TOLERANCE_S."""
    tpq = score.ticks_per_quarter
    beats = ticks_to_seconds(score, np.arange(0, score.end() + tpq, tpq))
    return retime(score, BeatGrid(beats, find_downbeats(beats, *_onsets(score))))


def _onsets(score: Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A one-track score's note onsets (s, float64), pitches (int64) and velocities, (N,) each."""
    n = score.to("second").tracks[0].notes.numpy()
    return n["time"].astype(np.float64), n["pitch"].astype(np.int64), n["velocity"]


# ----------------------------------------------------------------------------- re-timing
def seconds_to_beats(beats: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Positions in beats (beat k at k) of times in seconds, linear between beats and at the first
    and last beat periods beyond them."""
    beats = np.asarray(beats, dtype=np.float64)
    k = np.arange(len(beats), dtype=np.float64)
    seconds = np.asarray(seconds, dtype=np.float64)
    out = np.interp(seconds, beats, k)
    first, last = beats[1] - beats[0], beats[-1] - beats[-2]
    out = np.where(seconds < beats[0], (seconds - beats[0]) / first, out)
    return np.where(seconds > beats[-1], k[-1] + (seconds - beats[-1]) / last, out)


def bar_lengths(bar_starts: np.ndarray, n_beats: int, longest: int = 6) -> list[tuple[int, int]]:
    """(first beat, beats) of each bar, covering beats 0 to n_beats - 1: a pickup before the first
    bar start, bars between starts, the last to the end; a bar longer than `longest` beats (x/4
    metres up to 6/4 are written) is cut into bars of 4 and the rest."""
    edges = sorted({0, *map(int, bar_starts), n_beats})
    bars = []
    for a, b in zip(edges[:-1], edges[1:]):
        while b - a > longest:
            bars.append((a, 4))
            a += 4
        bars.append((a, b - a))
    return bars


def retime(score: Score, grid: BeatGrid, tpq: int = 480) -> Score:
    """The piece with the grid's beats on the beats of a new tick grid (tpq ticks per quarter
    note), its bars starting at the grid's bar starts (time signatures x/4 where a bar's length
    changes), tempo written so that no beat is further than TEMPO_TOLERANCE_S from its time. Notes before the
    first found beat get beats of their own before it. Notes keep pitch and velocity; their times
    in seconds are kept to within TEMPO_TOLERANCE_S (the first found beat is at 0 s, or a whole
    number of beats later where notes come before it)."""
    notes = score.to("second").tracks[0].notes.numpy()
    on = seconds_to_beats(grid.beats, notes["time"])
    off = seconds_to_beats(grid.beats, notes["time"] + notes["duration"])
    pre = int(np.ceil(max(0.0, -float(on.min(initial=0.0)))))  # whole beats added before beat 0
    beats = np.r_[grid.beats[0] - (grid.beats[1] - grid.beats[0]) * np.arange(pre, 0, -1), grid.beats]
    on, off = (on + pre) * tpq, (off + pre) * tpq
    n_beats = max(len(beats), int(np.ceil(off.max(initial=0) / tpq)))
    out = Score(tpq)
    last = None
    for first, length in bar_lengths(grid.bar_starts + pre, n_beats):
        if length != last:
            out.time_signatures.append(TimeSignature(first * tpq, length, 4))
            last = length
    for tick, qpm in _tempo_changes(beats, tpq):
        out.tempos.append(Tempo(int(tick), float(qpm)))
    on_ticks = np.round(on).astype(np.int64)
    track = Track(name="Piano", program=0, is_drum=False)
    track.notes = NoteTickList.from_numpy(
        on_ticks.astype(np.int32),
        np.maximum(np.round(off).astype(np.int64) - on_ticks, 1).astype(np.int32),
        notes["pitch"].astype(np.int8),
        notes["velocity"].astype(np.int8),
    )
    out.tracks.append(track)
    return out


def _tempo_changes(beats: np.ndarray, tpq: int) -> list[tuple[int, float]]:
    """(tick, qpm) where the tempo is set, beat k sitting at tick k * tpq: each tempo holds from
    one beat for as long as a constant tempo keeps every beat within TEMPO_TOLERANCE_S of its
    time, so timing never drifts further than that however long the piece."""
    changes = []
    start = 0
    while start < len(beats) - 1:
        end = start + 1
        while end + 1 < len(beats):
            k = np.arange(start, end + 2)
            line = beats[start] + (k - start) * (beats[end + 1] - beats[start]) / (end + 1 - start)
            if np.abs(beats[k] - line).max() > TEMPO_TOLERANCE_S:
                break
            end += 1
        period = (beats[end] - beats[start]) / (end - start)
        if not changes or abs(60.0 / period - changes[-1][1]) > 1e-6:
            changes.append((start * tpq, 60.0 / period))
        start = end
    return changes or [(0, 120.0)]
