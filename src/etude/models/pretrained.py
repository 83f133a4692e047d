"""The models shipped inside the package, and the one place that turns a model name into a path:
`pretrained` (the piano model), `pretrained:NAME`, or a run or checkpoint folder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from etude.errors import ConfigError

SHIPPED = {
    "piano": "the default: 2 x 256 LSTM trained on the six-genre piano corpus (MODEL_CARD.md)",
    "piano-memory": "2 x 256 LSTM with a memory of the piece, trained on the six-genre piano corpus (MODEL_CARD.md)",
    "builtin": "2 x 256 LSTM trained on the built-in corpus (chorales, Palestrina, folk, fiddle, Irish tunes)",
}


def pretrained_path(name: str = "piano") -> Path:
    """The folder of a model shipped inside the package (one of SHIPPED)."""
    if name not in SHIPPED:
        raise ConfigError(f"no shipped model {name!r}; shipped: " + ", ".join(f"pretrained:{n}" for n in SHIPPED))
    return Path(str(resources.files("etude") / "pretrained" / name))


def model_path(model: str | Path | None) -> Path:
    """A run or checkpoint path; None or `pretrained` name the shipped piano model, `pretrained:NAME`
    another shipped model (see SHIPPED)."""
    if model is None or str(model) == "pretrained":
        return pretrained_path()
    if str(model).startswith("pretrained:") and not Path(model).exists():
        return pretrained_path(str(model).partition(":")[2])
    return Path(model)
