import shutil

import pytest
import torch

from etude.errors import CheckpointError
from etude.models.checkpoint import load_checkpoint, resolve


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


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after the point where it is raised runs."""


def _kill_on_call(n: int):
    """A function that raises _Killed on its n-th call (1-based) and passes through before."""
    calls = []

    def wrap(real):
        def fn(*args, **kwargs):
            calls.append(1)
            if len(calls) == n:
                raise _Killed
            return real(*args, **kwargs)

        return fn

    return wrap


@pytest.mark.parametrize(
    "where",
    [
        ("save_file", 1),  # while the weights are written into the temporary folder
        ("os.replace", 1),  # the folder is complete, just before it is renamed into place
        ("os.replace", 2),  # the folder is in place, just before `last` is switched to it
    ],
)
def test_a_write_killed_midway_leaves_the_last_checkpoint_loadable(tiny_run, tmp_path, monkeypatch, where):
    """The production writer (train.save_run_checkpoint: write_checkpoint, then point) killed at
    each stage: `last` still loads, as the old checkpoint or the new one, never half of one; the
    next write after the kill succeeds."""
    import etude.models.checkpoint as C
    from etude.training.checkpoints import save_run_checkpoint

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    old = load_checkpoint(run / "checkpoints" / "last")
    opt = torch.optim.Adam(old.model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    def save(it: int) -> None:
        state = {**old.state, "iteration": it}
        rng = [torch.get_rng_state()]
        save_run_checkpoint(run / "checkpoints", it, old.model, opt, sched, old.config, old.encoding, state, False, rng)

    name, n = where
    target = (C.os, "replace") if name == "os.replace" else (C, name)
    monkeypatch.setattr(*target, _kill_on_call(n)(getattr(*target)))
    with pytest.raises(_Killed):
        save(160)
    monkeypatch.undo()
    assert load_checkpoint(run / "checkpoints" / "last").state["iteration"] == old.state["iteration"]
    save(200)
    assert load_checkpoint(run / "checkpoints" / "last").state["iteration"] == 200
