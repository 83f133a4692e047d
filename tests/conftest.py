from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "polyphonic"


@pytest.fixture
def good_corpus() -> Path:
    """Two genres (march, waltz) of tiny valid pieces, one with pedal and drums."""
    return DATA / "good"


@pytest.fixture
def corrupt_dir() -> Path:
    return DATA / "corrupt"


@pytest.fixture
def jsb_mat() -> Path:
    path = SHARED / "JSB_Chorales.mat"
    if not path.exists():  # the benchmark data ships beside the checkout, in ../shared
        pytest.fail(f"benchmark data missing: {path}")
    return path
