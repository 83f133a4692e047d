"""The sizes of the hyper-parameter study (`etude experiment study --scale`): light to import,
so that `etude --help` can list them without importing the study itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Sizes of one study scale; the base run is (base_hidden, base_layers, base_keep)."""

    name: str
    preset: str  # etude preset for every setting not listed here
    train: tuple[str, ...]  # overrides for every LSTM run (iterations, batch, window, validation)
    keep_every: int  # checkpoint spacing along the base run (training-length sweep)
    keep_probs: tuple[float, ...]
    hidden: tuple[int, ...]
    layers: tuple[int, ...]
    base_hidden: int
    base_layers: int
    base_keep: float
    roll: tuple[str, ...]  # overrides for the RBM and RNN-RBM runs on top of the preset's piano-roll sections
    pieces: int  # generated pieces per run (and original test pieces) for spectra and statistics
    length: str  # length of each generated piece

    @property
    def iterations(self) -> int:
        return int(dict(o.split("=") for o in self.train)["train.iterations"])


# Roll runs validate once, at the end, with a cheap AIS on at most 4096 frames: the study
# compares them by spectra and statistics.
_ROLL_VALID = ("train.ais_temps=50", "train.ais_runs=2", "train.eval_frames=4096")
SCALES = {
    "tiny": Scale(
        "tiny",
        "tiny",
        ("train.iterations=40", "train.eval_every=10", "train.log_every=5", "model.embed=16"),
        keep_every=20,
        keep_probs=(0.5, 0.7, 0.9),
        hidden=(16, 24, 32, 48),
        layers=(1, 2, 3, 4),
        base_hidden=24,
        base_layers=2,
        base_keep=0.7,
        roll=(
            "train.iterations=30",
            "train.eval_every=30",
            "train.batch_size=4",
            "train.seq_len=32",
            "model.hidden=24",
            "model.head_hidden=16",
            "model.cd_k=2",
            *_ROLL_VALID,
        ),
        pieces=3,
        length="6s",
    ),
    "cpu": Scale(
        "cpu",
        "cpu",
        (
            "train.iterations=1200",
            "train.batch_size=16",
            "train.seq_len=64",
            "train.eval_every=150",
            "train.eval_batches=8",
            "train.warmup=50",
            "train.log_every=25",
        ),
        keep_every=300,
        keep_probs=(0.5, 0.7, 0.9),
        hidden=(64, 128, 256, 512),
        layers=(1, 2, 3, 4),
        base_hidden=128,
        base_layers=2,
        base_keep=0.7,
        roll=("train.eval_every=100000", *_ROLL_VALID),
        pieces=10,
        length="20s",
    ),
    "paper": Scale(
        "paper",
        "paper",
        ("train.iterations=6000", "train.eval_every=500"),
        keep_every=1000,
        keep_probs=(0.5, 0.7, 0.9),
        hidden=(128, 256, 512, 1024),
        layers=(1, 2, 3, 4),
        base_hidden=1024,
        base_layers=4,
        base_keep=0.7,
        roll=("train.eval_every=100000", *_ROLL_VALID),
        pieces=20,
        length="30s",
    ),
}
