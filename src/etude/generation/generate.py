"""`etude generate`: sample pieces from a trained generator and write MIDI, WAV and PNG.

The n pieces of one call are sampled as one batch. For event tokens, before each step the
grammar masks the tokens the encoding forbids there, so every output decodes to valid MIDI;
sampling stops at the asked musical length (seconds, "60s") or token count ("512t"). Piano-roll
models sample frame by frame ("512t" then counts frames).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from symusic import Score

from etude.data.encoding import EventEncoding
from etude.data.midi import first_seconds, read_piece
from etude.errors import ConfigError, InputError
from etude.generation.constraints import EventGuard, FrameGuard
from etude.generation.grammar import Cursor, Grammar
from etude.generation.key_hold import KeyHold
from etude.models.base import Model
from etude.models.checkpoint import Checkpoint, load_checkpoint
from etude.models.form_plan import FormPlan
from etude.models.pretrained import model_path
from etude.paths import check_finite, ensure_dir, genre_file_stem
from etude.robot.adapt import adapt_score
from etude.robot.profile import RobotProfile
from etude.runtime import pick_device

log = logging.getLogger(__name__)
# A runaway sequence (notes piling up without time moving on) stops at CAP_FACTOR x the densest
# training music's tokens per second (99th percentile over pieces, kept in the checkpoint's
# state as tokens_per_second), per asked second; checkpoints without that figure use the fallback.
CAP_FACTOR = 4
FALLBACK_TOKENS_PER_SECOND = 100
ROLL_QPM = 120.0  # piano rolls keep no tempo: they are generated and played at this one


@dataclass(frozen=True)
class Length:
    """A musical length: seconds of music, or a number of new tokens."""

    value: float
    unit: str  # "s" or "t"

    @classmethod
    def parse(cls, text: str) -> Length:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([st]?)\s*", str(text))
        if not m or float(m.group(1)) <= 0:
            raise ConfigError(f"length {text!r}: give seconds like 60s or tokens like 512t")
        return cls(float(m.group(1)), m.group(2) or "s")

    def max_tokens(self, tokens_per_second: float | None = None) -> int:
        """The token budget: the asked tokens, or seconds x CAP_FACTOR x the training music's density."""
        if self.unit == "t":
            return int(self.value)
        return int(self.value * CAP_FACTOR * (tokens_per_second or FALLBACK_TOKENS_PER_SECOND)) + 256

    def frames(self, frames_per_beat: int, qpm: float = ROLL_QPM) -> int:
        """Piano-roll frames: seconds at `qpm` quarter notes a minute, or "t" read as frames."""
        return max(1, int(self.value) if self.unit == "t" else round(self.value * qpm / 60 * frames_per_beat))


_MEMORY = ("recall", "phrasing", "form", "section_bars")  # Sampling's settings for a memory of the piece


@dataclass(frozen=True)
class Sampling:
    """How tokens are drawn. The defaults are the house settings, the same for the Python API,
    the CLI, the studio, perform, respond and evaluate: this class is their one home."""

    temperature: float = 1.0
    top_k: int = 0  # keep the k most likely tokens (0: all)
    top_p: float = 0.95  # keep the smallest set of tokens whose probability reaches p (1: all)
    # token kinds (REMI/TSD types) that top-k and top-p leave whole: a note's length is drawn from
    # its full distribution, since cutting that tail shortens notes piece-wide (on the piano
    # corpus's validation split, sparing durations raised jazz's overlapped area 0.85 -> 0.88)
    spare: tuple[str, ...] = ("Duration",)
    # an event model's pull toward the key its first section (4 x section_bars beats, a primer's
    # included) sets: each note's logit gets key_hold x ln(its Krumhansl-Kessler rating / the
    # tonic's) (etude.generation.key_hold); 0: no pull
    key_hold: float = 0.0
    # a model with a memory of the piece (lstm-memory), at generation only (`check` refuses them
    # for other models): `recall` is added to its copy gate's log-odds (how much it copies what it
    # has heard), `phrasing` multiplies its bar-distance bias (how much it returns to passages 4,
    # 8, 16 bars back). As trained, 0 and 1; higher values bring back themes, key and phrase shape
    # at a cost in variety and genre likeness (docs/generation.md has the trade-off)
    recall: float = 0.0
    phrasing: float = 1.0
    # ...and a plan of sections of `section_bars` bars, one letter each ("AABA"): a section whose
    # letter came before copies that earlier section (etude.models.form_plan); "": no plan
    form: str = ""
    section_bars: int = 4

    def check(self, model: Model | None = None) -> None:
        """ConfigError for a value out of range, or for settings `model` (when given) cannot use:
        recall, phrasing and form steer a model that remembers the piece, and no other; the key
        hold an event model."""
        check_finite("--temperature", self.temperature, low=0)
        check_finite("--recall", self.recall)
        check_finite("--phrasing", self.phrasing)
        if check_finite("--key-hold", self.key_hold) < 0:
            raise ConfigError(f"--key-hold must be 0 (no pull) or more, not {self.key_hold:g}", option="--key-hold")
        if model is not None and self.key_hold and model.unit != "token":
            raise ConfigError(
                "--key-hold: this model writes piano-roll frames; the key hold steers event models", option="--key-hold"
            )
        self.plan()
        if self.top_k < 0:
            raise ConfigError(f"--top-k must be 0 (all tokens) or more, not {self.top_k}", option="--top-k")
        if not 0 < self.top_p <= 1:  # false for nan too
            raise ConfigError(f"--top-p must be in (0, 1], not {self.top_p!r}", option="--top-p")
        steering = self.memory_settings()
        if model is not None and steering and not model.remembers_piece:
            raise ConfigError(
                f"{' '.join(steering)}: this model has no memory of the piece to steer; "
                "use one that has, such as pretrained:piano-memory",
                option=steering[0].split()[0],
            )

    def memory_settings(self) -> list[str]:
        """The settings for a model's memory of the piece that differ from the house's, as
        command-line options ("--form AABA"); [] when none does."""
        house = Sampling()
        return [f"--{n.replace('_', '-')} {getattr(self, n)}" for n in _MEMORY if getattr(self, n) != getattr(house, n)]

    @classmethod
    def of(cls, source: object) -> Sampling:
        """The settings `source` (a command line's parsed arguments, a studio request) holds as
        attributes named like these fields; the house values for those it lacks."""
        return cls(**{f.name: getattr(source, f.name) for f in fields(cls) if hasattr(source, f.name)})

    def without_memory(self) -> Sampling:
        """These settings with the memory's at the house values (for a model without one)."""
        house = Sampling()
        return replace(self, **{n: getattr(house, n) for n in _MEMORY})

    def plan(self) -> FormPlan | None:
        """The form plan (None without one); ConfigError for a malformed one."""
        return FormPlan(self.form, self.section_bars) if self.form else None


@dataclass(frozen=True)
class Ask:
    """What to sample: `n` pieces of `genre` (None: the model's first), each `length` long
    ("60s": seconds of music, "512t": new tokens), drawn with `sampling` from `seed`, continuing
    `primer` (FILE.mid[:SECONDS]) when given, and playable by `robot` when given."""

    genre: str | None = None
    n: int = 1
    length: str = "60s"
    sampling: Sampling = Sampling()
    seed: int = 0
    primer: str | None = None
    robot: RobotProfile | None = None
    # int8 weights for the event model's steps (CPU): a quarter of the bytes read per step, the
    # logits a little off fp32's (docs/generation.md has the NLL cost); fp32 repeats a seed exactly
    int8: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"--n must be at least 1, not {self.n}")
        self.span  # a length that does not parse is refused here, before any work

    @property
    def span(self) -> Length:
        return Length.parse(self.length)


@dataclass(frozen=True)
class PieceFiles:
    """What `generate` writes beside each piece's MIDI: a WAV rendered with `soundfont` (None:
    the shipped one) by `renderer` at `sample_rate` Hz, and a piano-roll PNG. Files already there
    are replaced only with `force`."""

    audio: bool = True
    image: bool = True
    soundfont: Path | None = None
    sample_rate: int = 44100
    renderer: str = "sampler"
    force: bool = False


def check_genre(ckpt: Checkpoint, genre: str | None) -> str:
    """`genre`, or the model's first when None; an unknown one lists the known."""
    genre = genre or ckpt.encoding.genres[0]
    if genre not in ckpt.encoding.genres:
        raise ConfigError(f"unknown genre {genre!r}; this model knows: {', '.join(ckpt.encoding.genres)}")
    return genre


def filter_logits(logits: torch.Tensor, s: Sampling, spare: torch.Tensor | None = None) -> torch.Tensor:
    """Temperature, top-k and top-p applied to logits (B, V); removed entries become -inf, except
    those where the boolean mask `spare` (V,) is true, which only the temperature touches.

    The logits are shifted so that each row's largest is 0 before dividing by the temperature:
    a tiny temperature then gives -inf to all but the likeliest tokens (greedy), never inf - inf = nan."""
    logits = scaled = (logits - logits.max(-1, keepdim=True).values.clamp(min=-1e30)) / s.temperature
    if s.top_k > 0:
        kth = torch.topk(logits, min(s.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop = probs.cumsum(-1) - probs >= s.top_p  # tokens after the p mass is reached
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits if spare is None else torch.where(spare, scaled, logits)


def primer_tokens(
    ckpt: Checkpoint, spec: str, genre: str, robot: RobotProfile | None = None
) -> tuple[list[int], Score]:
    """Tokens of `FILE.mid[:SECONDS]` (its first SECONDS, default all), without EOS; with
    `robot`, the primer is first made playable by it (etude.robot.adapt)."""
    path_text, _, secs = spec.rpartition(":") if re.search(r":\d+(\.\d+)?$", spec) else (spec, "", "")
    path = Path(path_text)
    if not path.exists():
        raise InputError(f"primer not found: {path}")
    try:
        score = read_piece(path, genre)
    except InputError as exc:
        raise InputError(f"primer {exc}") from None
    if secs:
        score = first_seconds(score, float(secs))
    if robot is not None:
        score, adapted, before = adapt_score(robot, score)
        log.info("primer adapted to robot %s: %s", robot.name, adapted.report(before))
    ids = ckpt.encoding.encode(score, genre).tolist()
    return ids[:-1], score


@torch.no_grad()
def sample_tokens(ckpt: Checkpoint, ask: Ask, prefix: list[int] | None = None, device: str = "cpu") -> list[list[int]]:
    """ask.n token sequences (`prefix` included; ask.primer is not read here), each valid under
    the encoding's grammar and, with ask.robot, playable by it (etude.generation.constraints; the
    prefix is taken as played)."""
    enc, model = ckpt.encoding, ckpt.model.to(device).eval()
    genre, n, length, sampling, robot = check_genre(ckpt, ask.genre), ask.n, ask.span, ask.sampling, ask.robot
    sampling.check(model)
    grammar = Grammar(enc)
    spare = grammar.of_types(*sampling.spare)
    hold = KeyHold(grammar, n, sampling.key_hold, 4.0 * sampling.section_bars) if sampling.key_hold else None
    guard = EventGuard(robot, grammar, enc) if robot is not None else None
    gen = torch.Generator(device="cpu").manual_seed(ask.seed)
    prefix = prefix or [enc.genre_id(genre)]
    cursors = [Cursor() for _ in range(n)]
    keyboards = [guard.start() for _ in range(n)] if guard else []
    for i, c in enumerate(cursors):
        for tok in prefix[1:]:
            if guard:
                guard.advance(c, keyboards[i], tok)
            grammar.advance(c, tok)
            if hold is not None:
                hold.advance(i, c, tok)
    start_seconds = cursors[0].seconds
    seqs = [list(prefix) for _ in range(n)]
    done = [False] * n
    g = torch.full((n,), enc.genres.index(genre), dtype=torch.long, device=device)
    x = torch.tensor([prefix] * n, dtype=torch.long, device=device)
    # the fused path (etude.models.base.Stepper)
    stepper = model.stepper(g, ask.int8, sampling.recall, sampling.phrasing, sampling.plan())
    logits = stepper.prime(x)  # (n, V)
    q = torch.empty(logits.shape)  # the draw's exponential noise, refilled each step (_draw)
    cap = length.max_tokens(ckpt.state.get("tokens_per_second"))
    for step in range(cap):
        # the grammar's (and robot's) allowed tokens first, so that top-k and top-p choose among them
        allowed = [
            _allowed(grammar, guard, c, keyboards[i] if guard else None, length, start_seconds)
            for i, c in enumerate(cursors)
        ]
        z = logits.float().cpu().numpy()
        tokens, scores = _draw(z if hold is None else hold.apply(z), allowed, sampling, spare, q, gen)
        if guard:  # positions the robot cannot start a note at are rejected and drawn again
            tokens = [
                tok
                if done[i]
                else _confirmed(grammar, guard, cursors[i], keyboards[i], allowed[i], scores[i], tok, gen)
                for i, tok in enumerate(tokens)
            ]
        for i, tok in enumerate(tokens):
            if done[i]:
                continue
            c = cursors[i]
            if tok == enc.eos_id:
                done[i] = True
                continue
            if guard:
                guard.advance(c, keyboards[i], tok)
            grammar.advance(c, tok)
            if hold is not None:
                hold.advance(i, c, tok)
            seqs[i].append(tok)
            if length.unit == "s" and grammar.is_time_step(tok) and c.seconds - start_seconds >= length.value:
                done[i] = True
        if all(done):
            break
        logits = stepper.step(torch.tensor(tokens, device=device))
    else:
        if length.unit == "s":
            log.warning("stopped at the token cap (%d) before reaching %g s", cap, length.value)
    velocity = guard.closing_velocity() if guard else None
    return [s + grammar.closing(c, velocity) + [enc.eos_id] for s, c in zip(seqs, cursors)]


_NEG_INF = np.float32(-np.inf)


def _draw(
    logits: np.ndarray, allowed: list[np.ndarray], sampling: Sampling, spare: np.ndarray, q: torch.Tensor, gen
) -> tuple[list[int], list[np.ndarray]]:
    """One token per row of logits (B, V) float32 among its `allowed` ids, filtered as
    filter_logits does; also each row's filtered scores over its allowed ids (k,).

    The draw is torch.multinomial's own for one sample: the argmax of p / q with q ~ Exp(1) drawn
    for every entry from `gen` (into the buffer q, (B, V)), so a seed gives the tokens multinomial
    over the masked full rows gives; but only the allowed entries (~5-90 of ~400) are worked on,
    in NumPy, with no per-step torch calls beyond the draw."""
    q = q.exponential_(1, generator=gen).numpy()
    tokens, scores = [], []
    for row, ids in enumerate(allowed):
        z = _filtered(logits[row, ids], sampling, spare[ids])
        p = np.exp(z)  # z's largest is 0: the likeliest token is never filtered out
        tokens.append(int(ids[int(np.argmax(p / p.sum() / q[row, ids]))]))
        scores.append(z)
    return tokens, scores


def _filtered(z: np.ndarray, s: Sampling, spare: np.ndarray) -> np.ndarray:
    """filter_logits on one row of allowed logits (k,) in NumPy (the same steps, float32; those
    that change nothing, a division by 1 or a shift by 0, left out)."""
    z = scaled = z - z.max()
    if s.temperature != 1.0:
        z = scaled = z / np.float32(s.temperature)
    if s.top_k > 0 and s.top_k < len(z):
        z = np.where(z < np.partition(z, -s.top_k)[-s.top_k], _NEG_INF, z)
    if s.top_p < 1.0:
        order = np.argsort(-z, kind="stable")
        e = np.exp(z[order])  # z[order[0]], the largest, is 0
        probs = e / e.sum()
        drop = np.empty(len(z), dtype=bool)
        drop[order] = np.cumsum(probs) - probs >= np.float32(s.top_p)
        z = np.where(drop, _NEG_INF, z)
    return np.where(spare, scaled, z) if spare.any() else z


def _confirmed(
    grammar: Grammar, guard: EventGuard, c: Cursor, keyboard, ids: np.ndarray, z: np.ndarray, tok: int, gen
) -> int:
    """`tok`, or, while the robot rejects the drawn token, another drawn without it (sampling
    from the distribution with the rejected tokens masked); a bar line when all are rejected.
    ids, z: the allowed ids and their filtered scores (_draw)."""
    scores = torch.full((grammar.size,), float("-inf")).index_copy_(0, torch.from_numpy(ids), torch.from_numpy(z))
    while not guard.confirm(c, keyboard, tok):
        scores[tok] = float("-inf")
        if torch.isinf(scores).all():
            steps = np.flatnonzero(grammar.time_steps(c))
            return int(steps[0]) if len(steps) else tok
        tok = int(torch.multinomial(torch.softmax(scores, -1), 1, generator=gen)[0])
    return tok


def _allowed(
    grammar: Grammar, guard: EventGuard | None, c: Cursor, keyboard, length: Length, start: float
) -> np.ndarray:
    """The ids (ascending) the grammar allows next, and-ed with the robot's mask; where the robot
    leaves nothing, a bar line may follow beyond the empty-bar cap."""
    may_end = length.unit == "t" or c.seconds - start >= length.value
    if guard is None:
        return grammar.allowed_ids(c, may_end)
    mask = grammar.allowed(c, may_end)
    both = mask & guard.allowed(c, keyboard)
    if not both.any():
        both = grammar.time_steps(c)
    if not both.any():
        log.warning("the robot's limits leave no token here; going on by the grammar alone")
        return np.flatnonzero(mask)
    return np.flatnonzero(both)


@torch.no_grad()
def sample_scores(ckpt: Checkpoint, ask: Ask, device: str = "cpu") -> list[Score]:
    """ask.n new pieces from any generator: event tokens through the grammar (sample_tokens),
    piano rolls frame by frame (or window by window) at the sampling temperature. With ask.robot,
    every piece is playable by it (a primer is first adapted to it)."""
    genre = check_genre(ckpt, ask.genre)
    ask = replace(ask, genre=genre)
    if isinstance(ckpt.encoding, EventEncoding):
        prefix = primer_tokens(ckpt, ask.primer, genre, ask.robot)[0] if ask.primer else None
        return [ckpt.encoding.decode(np.array(ids)) for ids in sample_tokens(ckpt, ask, prefix, device)]
    if ask.primer:
        raise ConfigError("--primer works with event-token models; this one generates piano rolls")
    sampling, robot = ask.sampling, ask.robot
    sampling.check(ckpt.model)
    house = Sampling()
    if (sampling.top_k, sampling.top_p) != (house.top_k, house.top_p) and (sampling.top_k or sampling.top_p < 1):
        log.warning("piano-roll models sample each key on or off: --top-k and --top-p are not used")
    model = ckpt.model.to(device).eval()
    g = torch.full((ask.n,), ckpt.encoding.genres.index(genre), dtype=torch.long, device=device)
    gen = torch.Generator().manual_seed(ask.seed)
    fpb = ckpt.encoding.cfg.frames_per_beat
    guard = FrameGuard(robot, ask.n, 60.0 / ROLL_QPM / fpb) if robot is not None else None
    rolls = model.sample(ask.n, ask.span.frames(fpb), g, sampling.temperature, gen, guard)
    velocity = round(sum(robot.velocity_range()) / 2) if robot is not None else 80
    return [ckpt.encoding.decode(r.cpu().numpy().astype(np.uint8), qpm=ROLL_QPM, velocity=velocity) for r in rolls]


@dataclass
class Generated:
    midi: Path
    wav: Path | None
    png: Path | None
    seconds: float
    notes: int


def generate(
    model: str | Path | None = None,
    ask: Ask = Ask(),
    out: Path = Path("generated"),
    files: PieceFiles = PieceFiles(),
    device: str = "cpu",
) -> list[Generated]:
    """Sample the pieces `ask` describes (genre "all": ask.n of every genre) from a run or
    checkpoint (default: the shipped model) and write `{genre}-{k}.mid` (+ `.wav`, `.png` as
    `files` says) into `out`, the genre made safe as a file name (etude.paths.genre_file_stem)."""
    from etude.audio.plots import piano_roll_png
    from etude.audio.render import render_wav

    device = str(pick_device(device))
    ckpt = load_checkpoint(model_path(model), device=device)
    if ask.genre == "all":
        return [r for g in ckpt.encoding.genres for r in generate(ckpt.path, replace(ask, genre=g), out, files, device)]
    genre = check_genre(ckpt, ask.genre)
    out = Path(out)
    stems = [out / f"{genre_file_stem(genre)}-{k:02d}" for k in range(ask.n)]
    targets = [s.with_suffix(ext) for s in stems for ext in (".mid", ".wav", ".png")]
    clash = [str(t) for t in targets if t.exists()]
    if clash and not files.force:
        raise InputError(
            f"{clash[0]} exists (and {len(clash) - 1} more); pass --force to overwrite or choose another --out"
        )
    scores = sample_scores(ckpt, replace(ask, genre=genre), device)
    ensure_dir(out)
    results = []
    for stem, score in zip(stems, scores):
        midi = stem.with_suffix(".mid")
        score.dump_midi(str(midi))
        seconds = float(score.to("second").end()) if score.note_num() else 0.0
        wav = None
        if files.audio:
            wav = render_wav(score, stem.with_suffix(".wav"), files.soundfont, files.sample_rate, files.renderer)
        png = piano_roll_png(score, stem.with_suffix(".png"), title=f"{stem.name} ({genre})") if files.image else None
        results.append(Generated(midi, wav, png, seconds, score.note_num()))
    return results
