"""Settings as dataclasses: saved as JSON with every output, overridden by dotted `key=value`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, TypeVar

from etude.errors import ConfigError

T = TypeVar("T")

ENCODINGS = ("remi", "midilike", "tsd", "pianoroll")


@dataclass(frozen=True)
class Rule:
    """The valid values of one setting: a test and the words that describe it to a user."""

    ok: Callable[[Any], bool]
    text: str


def at_least(low: float) -> Rule:
    return Rule(lambda v: v >= low, f">= {low}")


def between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Rule:
    """low..high, each end open or closed, written as interval notation in messages."""

    def ok(v: Any) -> bool:
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    return Rule(ok, f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")


def one_of(*options: str) -> Rule:
    return Rule(lambda v: v in options, f"one of {', '.join(options)}")


def validate(cfg: Any, prefix: str = "") -> None:
    """Check every setting of a (nested) config dataclass once, before any work starts.

    Each field must have its default's type (an int is accepted for a float), floats must be
    finite (unless the class lists the field in INFINITE_OK), and the class's RULES must hold.
    Raises ConfigError naming the first bad setting and its valid range.
    """
    rules: dict[str, Rule] = getattr(cfg, "RULES", {})
    infinite_ok: tuple[str, ...] = getattr(cfg, "INFINITE_OK", ())
    defaults = type(cfg)()
    for f in dataclasses.fields(cfg):
        key, value, default = prefix + f.name, getattr(cfg, f.name), getattr(defaults, f.name)
        if dataclasses.is_dataclass(default):
            if not dataclasses.is_dataclass(value):
                raise ConfigError(f"{key} must be a section of settings, not {value!r}")
            validate(value, key + ".")
            continue
        kind = type(default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            setattr(cfg, f.name, value)
        if type(value) is not kind:
            raise ConfigError(f"{key} takes a {kind.__name__}, not {value!r}")
        if kind is float and not math.isfinite(value) and not (f.name in infinite_ok and value == math.inf):
            raise ConfigError(f"{key}={value!r}: a finite number is needed")
        rule = rules.get(f.name)
        if rule is not None and not rule.ok(value):
            raise ConfigError(f"{key}={value!r} is out of range: valid values are {rule.text}")


@dataclass
class DataConfig:
    """How MIDI files become pieces and how pieces are split."""

    min_seconds: float = 5.0  # pieces shorter than this are rejected (seconds)
    max_seconds: float = 300.0  # longer pieces are cut into clips or rejected (seconds)
    long_pieces: str = "clip"  # "clip": cut into clips of at most max_seconds; "reject"
    test_frac: float = 0.1  # share of each genre held out for testing
    valid_frac: float = 0.1  # share of each genre's training part held out for validation
    seed: int = 0  # seeds the split
    transpose: int = 0  # augment training pieces by every shift in ±1..transpose semitones
    retime: str = "auto"  # "auto": a piece whose own beat grid does not fit its notes is re-timed
    # onto the grid found from them (etude.data.beats); "off": every file's grid as it is

    RULES: ClassVar[dict[str, Rule]] = {
        "min_seconds": at_least(0),
        "max_seconds": Rule(lambda v: v > 0, "> 0 (inf: no limit)"),
        "long_pieces": one_of("clip", "reject"),
        "test_frac": between(0, 1, high_open=True),
        "valid_frac": between(0, 1, high_open=True),
        "seed": at_least(0),
        "transpose": between(0, 12),
        "retime": one_of("auto", "off"),
    }
    INFINITE_OK: ClassVar[tuple[str, ...]] = ("max_seconds",)


@dataclass
class EncodingConfig:
    """How a piece becomes an array: event tokens (MidiTok) or a piano roll."""

    name: str = "remi"  # remi | midilike | tsd | pianoroll
    beat_res: int = 8  # event grid: positions per beat for the first 4 beats of a duration
    velocities: int = 32  # event velocity bins
    tempos: bool = True  # event tokens carry tempo changes
    time_signatures: bool = True  # event tokens carry time signatures (REMI and TSD)
    frames_per_beat: int = 4  # piano-roll frames per quarter note

    RULES: ClassVar[dict[str, Rule]] = {
        "name": one_of(*ENCODINGS),
        "beat_res": between(1, 64),
        "velocities": between(1, 127),
        "frames_per_beat": between(1, 96),
    }


EVENT_MODELS = ("lstm", "lstm-memory")  # models of event tokens
PIANOROLL_MODELS = ("lstm", "lstm-nade", "rbm", "rnn-rbm")  # models of piano rolls
MODELS = tuple(dict.fromkeys(EVENT_MODELS + PIANOROLL_MODELS))  # every model name, once


@dataclass
class ModelConfig:
    """The generator. Event tokens: `lstm` (embedding -> stacked LSTM -> dropout -> linear head).
    Event tokens also `lstm-memory` (the same with a learned memory of the piece: a neural cache
    over its own past outputs, etude.models.memory). Piano rolls: `lstm` (independent Bernoulli
    per key), `lstm-nade` (keys of a frame one after another), `rnn-rbm` (an LSTM sets each
    frame's RBM biases), `rbm` (frames in windows)."""

    name: str = "lstm"  # lstm | lstm-memory (event tokens only) | lstm-nade | rbm | rnn-rbm (piano rolls only)
    embed: int = 128  # token embedding size (event tokens)
    genre_embed: int = 16  # learned genre embedding, concatenated to every input step (0: none)
    hidden: int = 256  # units per LSTM layer
    layers: int = 2  # stacked LSTM layers
    # Probability of KEEPING a unit (the study's "dropout coefficient"): the Bernoulli mask is 1
    # with probability keep_prob, so PyTorch's dropout is 1 - keep_prob. The study's best: 0.7.
    keep_prob: float = 0.7
    input_keep: float = 1.0  # piano rolls: probability of keeping each key of the input frames (input dropout)
    head_hidden: int = 150  # hidden units of the NADE or RBM output (lstm-nade, rnn-rbm, rbm)
    head_orders: int = 1  # lstm-nade: NADEs in the output's mixture, each with its own key order (1: one, low to high)
    window: int = 1  # rbm: frames per visible window (window x 88 visible units)
    cd_k: int = 10  # rbm, rnn-rbm: Gibbs steps of contrastive divergence
    persistent: bool = False  # rbm: persistent CD (chains carried across batches)
    memory_size: int = 4096  # lstm-memory: past positions of the piece it remembers
    # lstm-memory: the starting sharpness of its look-up and weight of what it recalls (both
    # learned); the best fixed pair on the piano corpus's validation pieces (docs/training.md)
    memory_theta: float = 1.0
    memory_lambda: float = 0.3

    RULES: ClassVar[dict[str, Rule]] = {
        "name": one_of(*MODELS),
        "embed": at_least(1),
        "genre_embed": at_least(0),
        "hidden": at_least(1),
        "layers": at_least(1),
        "keep_prob": between(0, 1, low_open=True),
        "input_keep": between(0, 1, low_open=True),
        "head_hidden": at_least(1),
        "head_orders": at_least(1),
        "window": at_least(1),
        "cd_k": at_least(1),
        "memory_size": at_least(2),
        "memory_theta": between(0, math.inf, low_open=True),
        "memory_lambda": between(0, 1, low_open=True, high_open=True),
    }

    def describe(self) -> str:
        """One line naming the architecture, e.g. for the training log."""
        if self.name == "rbm":
            cd = "persistent CD" if self.persistent else "CD"
            return f"rbm: {self.window} frame(s) x 88 keys visible, {self.head_hidden} hidden units, {cd}-{self.cd_k}"
        dropout = f"keep_prob {self.keep_prob:.2f} (dropout {1 - self.keep_prob:.2f})"
        lstm = f"{self.layers} layers x {self.hidden} units, {dropout}"
        head = {
            "lstm-nade": f"; NADE output, {self.head_hidden} hidden units"
            + (f", a mixture of {self.head_orders} key orders" if self.head_orders > 1 else ""),
            "rnn-rbm": f"; RBM output, {self.head_hidden} hidden units, CD-{self.cd_k}",
            "lstm-memory": f"; a memory of the piece's last {self.memory_size} positions",
        }
        return f"{self.name}: {lstm}{head.get(self.name, '')}"


@dataclass
class TrainConfig:
    """The training loop; the study counts iterations (mini-batch updates), not epochs."""

    iterations: int = 2000  # optimiser steps
    batch_size: int = 32  # windows per step
    seq_len: int = 128  # tokens per window
    optimizer: str = "adam"  # adam | sgd
    lr: float = 3e-3  # peak learning rate
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    warmup: int = 50  # linear warm-up steps, then cosine decay to min_lr_frac * lr
    min_lr_frac: float = 0.05
    grad_clip: float = 1.0  # max global gradient norm (0: off)
    eval_every: int = 250  # validation every this many steps (and at the end)
    patience: int = 0  # stop when validation has not improved for this many eval_every intervals (0: never)
    keep_every: int = 0  # also validate at and keep the checkpoint of every this many steps (0: only last and best)
    eval_batches: int = 16  # validation windows = eval_batches * batch_size
    log_every: int = 25  # CSV/TensorBoard training-loss rows
    precision: str = "auto"  # auto: bf16 autocast on CUDA devices that support it, else fp32 | fp32 | bf16
    compile: bool = False  # torch.compile the model for training (minutes of compiling first)
    # decay of a moving average of the weights (e.g. 0.99), validated and saved in place of the raw weights (0: off)
    average: float = 0.0
    roll_transpose: int = 0  # piano rolls: shift each training window by a random -K..K keys (augmentation; 0: off)
    # share of training windows that begin where their piece begins (else anywhere inside it), so
    # the model learns how pieces open: generation always starts there
    start_share: float = 0.0
    # truncated back-propagation through time (event LSTMs): each of the batch's lanes reads whole
    # pieces window after window in order, the LSTM state carried (not back-propagated) from one
    # iteration's window to the next and reset where a piece begins; start_share is then unused
    carry_state: bool = False
    eval_len: int = 0  # event models: tokens per validation window (0: seq_len); longer hears more context
    max_minutes: float = 0.0  # stop (with a checkpoint) after this much training time; 0: no limit
    # iterations the learning-rate schedule is planned for (0: `iterations`). With max_minutes,
    # training sets it from the speed of its first iterations to the iterations the budget
    # reaches, so a short run still ends at a low learning rate; saved with the run
    schedule_iterations: int = 0
    ais_temps: int = 100  # rbm, rnn-rbm validation NLL: AIS inverse temperatures
    ais_runs: int = 10  # ... and AIS runs per frame (small, for checkpoint selection only)
    eval_frames: int = (
        0  # piano rolls: validate on whole pieces of at most this many frames in all (0: the whole split)
    )

    RULES: ClassVar[dict[str, Rule]] = {
        "iterations": at_least(1),
        "batch_size": at_least(1),
        "seq_len": at_least(1),
        "optimizer": one_of("adam", "sgd"),
        "lr": at_least(0),
        "momentum": between(0, 1, high_open=True),
        "weight_decay": at_least(0),
        "warmup": at_least(0),
        "min_lr_frac": between(0, 1),
        "grad_clip": at_least(0),
        "eval_every": at_least(1),
        "patience": at_least(0),
        "keep_every": at_least(0),
        "eval_batches": at_least(1),
        "log_every": at_least(1),
        "precision": one_of("auto", "fp32", "bf16"),
        "average": between(0, 1, high_open=True),
        "roll_transpose": between(0, 87),
        "start_share": between(0, 1),
        "eval_len": at_least(0),
        "max_minutes": at_least(0),
        "schedule_iterations": at_least(0),
        "ais_temps": at_least(2),
        "ais_runs": at_least(1),
        "eval_frames": at_least(0),
    }


@dataclass
class RunConfig:
    """Everything a training run needs; saved as config.json in the run and its checkpoints."""

    data: str = ""  # prepared data folder (etude data prepare)
    seed: int = 0  # seeds Python, NumPy and torch
    device: str = "auto"  # auto | cpu | cuda
    # a trained model's checkpoint folder to start from (fine-tuning): its model settings and
    # weights, with a fresh optimiser and schedule; "" starts from random weights
    init: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    RULES: ClassVar[dict[str, Rule]] = {"seed": at_least(0), "device": one_of("auto", "cpu", "cuda")}


@dataclass
class AIS:
    """Annealed importance sampling settings for an RBM-family likelihood (etude.models.rbm)."""

    # JSB's 4725 test frames x 10 runs x 500 temperatures take about 2 minutes on 2 CPU cores
    temps: int = 500  # inverse temperatures from 0 to 1
    runs: int = 10  # independent runs (chains) per partition function
    seed: int = 0
    max_chains: int = 200_000  # frames x runs annealed at once (memory)


PRESETS = ("tiny", "cpu", "piano", "paper")


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_preset(name: str, model: str = "lstm", pianoroll: bool = False) -> RunConfig:
    """A preset from etude/configs/NAME.json (tiny: seconds; cpu: the default; paper: 4 x 1024).

    The preset's section for the model, `pianoroll.MODEL` for piano-roll data (the roll models'
    settings, chosen on the benchmark's validation sets) or `events.MODEL` for event tokens (the
    memory LSTM's longer windows), is laid over its top level."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    check_model(model, pianoroll)
    data = json.loads((resources.files("etude") / "configs" / f"{name}.json").read_text())
    sections = {"pianoroll": data.pop("pianoroll", {}), "events": data.pop("events", {})}
    data = _merge(data, sections["pianoroll" if pianoroll else "events"].get(model, {}))
    data.setdefault("model", {})["name"] = model
    return from_dict(RunConfig, data)


def check_model(name: str, pianoroll: bool) -> str:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if name not in PIANOROLL_MODELS and pianoroll:
        raise ConfigError(f"model {name} works on event tokens: prepare the data with --encoding remi, midilike or tsd")
    if name not in EVENT_MODELS and not pianoroll:
        raise ConfigError(f"model {name} works on piano rolls: prepare the data with --encoding pianoroll")
    return name


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) dataclass."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass `cls` from a dict, nested dataclasses included; unknown keys fail."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)} for {cls.__name__}; valid: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        kind = hints[key]
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            value = from_dict(kind, value)
        kwargs[key] = value
    return cls(**kwargs)


def settings_hash(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable settings."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def valid_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a (nested) dataclass instance."""
    keys = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            keys += valid_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def _parse_value(text: str, current: Any, key: str) -> Any:
    if isinstance(current, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} takes true or false, not {text!r}")
    try:
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except ValueError:
        raise ConfigError(f"{key} takes a {type(current).__name__}, not {text!r}") from None
    if isinstance(current, (list, tuple)):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = [v for v in text.split(",") if v]
        return type(current)(value)
    return text


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Set dotted `key=value` pairs on a nested dataclass in place; unknown keys fail.

    Values are parsed by the type of the current value (int, float, bool, str, list).
    """
    for item in overrides:
        key, sep, text = item.lstrip("-").partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        target: Any = cfg
        *path, last = key.split(".")
        for part in path:
            if not dataclasses.is_dataclass(target) or not hasattr(target, part):
                target = None
                break
            target = getattr(target, part)
        if target is None or not dataclasses.is_dataclass(target) or not hasattr(target, last):
            raise ConfigError(f"unknown setting {key!r}; valid: {', '.join(valid_keys(cfg))}")
        setattr(target, last, _parse_value(text, getattr(target, last), key))
    return cfg


def check_encoding(name: str) -> str:
    if name not in ENCODINGS:
        raise ConfigError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")
    return name


__all__ = [
    "DataConfig",
    "EncodingConfig",
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "PRESETS",
    "MODELS",
    "EVENT_MODELS",
    "PIANOROLL_MODELS",
    "check_model",
    "load_preset",
    "ENCODINGS",
    "apply_overrides",
    "from_dict",
    "to_dict",
    "settings_hash",
    "valid_keys",
    "validate",
]
