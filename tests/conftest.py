from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "polyphonic"
PIANO = Path(__file__).resolve().parents[2] / "shared" / "data" / "piano"


@pytest.fixture
def good_corpus() -> Path:
    """Two genres (march, waltz) of tiny valid pieces, one with pedal and drums."""
    return DATA / "good"


@pytest.fixture
def corrupt_dir() -> Path:
    return DATA / "corrupt"


@pytest.fixture(scope="session")
def jsb_mat() -> Path:
    path = SHARED / "JSB_Chorales.mat"
    if not path.exists():  # the benchmark data ships beside the checkout, in ../shared
        pytest.fail(f"benchmark data missing: {path}")
    return path


@pytest.fixture(scope="session")
def piano_corpus() -> Path:
    """The real piano corpus of six genres (../shared/data/piano), read in place."""
    if not (PIANO / "ragtime").is_dir():  # it ships beside the checkout, in ../shared
        pytest.fail(f"piano corpus missing: {PIANO}")
    return PIANO


@pytest.fixture(scope="session")
def real_data(tmp_path_factory) -> Path:
    """A small real corpus (built-in Bach chorales and fiddle tunes), prepared as REMI tokens."""
    from etude.config import DataConfig
    from etude.data import prepare
    from etude.data.builtin import export_builtin

    root = tmp_path_factory.mktemp("real")
    export_builtin(root / "corpus", per_genre=12, styles=["bach", "fiddle"], workers=2)
    prepare(root / "corpus", root / "data", DataConfig(test_frac=0.15, valid_frac=0.15), workers=2)
    return root / "data"


@pytest.fixture(scope="session")
def tiny_run(real_data, tmp_path_factory) -> Path:
    """A tiny-preset run trained on `real_data`."""
    from etude.config import load_preset
    from etude.training.loop import train

    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    run = tmp_path_factory.mktemp("run") / "tiny"
    train(cfg, run, overrides=["train.iterations=120", "train.eval_every=40"], progress=False)
    return run


@pytest.fixture(scope="session")
def small_jsb(jsb_mat, tmp_path_factory) -> Path:
    """A slice of JSB (30 / 8 / 8 pieces) in the benchmark's pickle layout."""
    import pickle

    from etude.data.polyphonic import load_polyphonic

    rolls = load_polyphonic(jsb_mat)
    take = {"train": 30, "valid": 8, "test": 8}
    data = {s: [[[21 + int(k) for k in np.nonzero(f)[0]] for f in p] for p in rolls[s][:n]] for s, n in take.items()}
    path = tmp_path_factory.mktemp("jsb") / "JSB_small.pickle"
    path.write_bytes(pickle.dumps(data))
    return path


@pytest.fixture(scope="session")
def small_jsb_dir(small_jsb, tmp_path_factory) -> Path:
    from etude.data.polyphonic import prepare_rolls

    out = tmp_path_factory.mktemp("jsb_prepared")
    prepare_rolls(small_jsb, out)
    return out
