import shutil

import pytest
import torch

from etude.checkpoint import load_checkpoint, resolve
from etude.errors import CheckpointError


def test_round_trip_needs_nothing_else(tiny_run, tmp_path):
    ckpt = load_checkpoint(tiny_run)
    assert ckpt.path == (tiny_run / "checkpoints" / "best").resolve()
    # a copied checkpoint folder loads on its own: no data folder, no run folder
    alone = tmp_path / "alone"
    shutil.copytree(ckpt.path, alone)
    again = load_checkpoint(alone)
    x = torch.randint(0, again.model.vocab_size, (2, 9))
    g = torch.tensor([0, 1])
    a, _, _ = ckpt.model(x, g)
    b, _, _ = again.model(x, g)
    assert torch.equal(a, b)
    assert again.encoding.vocab == ckpt.encoding.vocab
    assert again.config == ckpt.config


def test_corrupt_checkpoint_is_a_clear_error(tiny_run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(resolve(tiny_run), bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)


def test_a_write_killed_midway_leaves_the_last_checkpoint_loadable(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    # what a kill during the next write leaves behind: a half-written temporary folder and link
    half = run / "checkpoints" / ".tmp-ckpt-000160"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\0" * 10)
    (run / "checkpoints" / ".tmp-last").symlink_to(half.name)
    ckpt = load_checkpoint(run / "checkpoints" / "last")
    assert ckpt.state["iteration"] == 120
