"""Two CPU processes with gloo, launched by torchrun, against one process with the same global batch."""

import csv
import os
import subprocess
import sys

import pytest


def _failure(out: subprocess.CompletedProcess) -> str:
    """What each process printed about its failure (torchrun's own summary comes last and hides it)."""
    lines = [
        ln for ln in out.stderr.splitlines() if any(k in ln for k in ("Error", "error", "terminate", "what()", "Abort"))
    ]
    return "\n".join(lines[:40]) or out.stderr[-2000:]


def _losses(run):
    with open(run / "metrics.csv") as fh:
        return [(int(r["iteration"]), r["split"], float(r["loss"])) for r in csv.DictReader(fh)]


@pytest.mark.parametrize("carry", [[], ["--train.carry_state=true"]], ids=["windows", "carried-state"])
def test_two_processes_match_one(real_data, tmp_path, carry):
    """Also with the state carried: each process its share of the lanes, each share's state
    saved and restored on resume."""
    common = [
        "--preset",
        "tiny",
        "--model.keep_prob=1.0",
        "--train.iterations=30",
        "--train.eval_every=10",
        "--train.log_every=2",
        *carry,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single"
    subprocess.run(
        [sys.executable, "-m", "etude", "-q", "train", str(real_data), "--out", str(single), *common],
        check=True,
        env=env,
        capture_output=True,
    )
    ddp = tmp_path / "ddp"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "etude",
            "train",
            str(real_data),
            "--out",
            str(ddp),
            *common,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, _failure(out)
    assert "2 process(es): global batch 8 windows x 32 tokens (4 per process)" in out.stderr
    a, b = _losses(single), _losses(ddp)
    assert [r[:2] for r in a] == [r[:2] for r in b]  # same rows: only rank 0 logs
    for (_, _, la), (_, _, lb) in zip(a, b):
        assert lb == pytest.approx(la, rel=1e-3)
    assert (ddp / "checkpoints" / "last" / "model.safetensors").exists()

    # resume works the same under torchrun: extend both runs by 10 iterations and compare again
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "etude"]
    extend = ["train", "--resume", "RUN", "--train.iterations=40"]
    subprocess.run(
        [sys.executable, "-m", "etude", "-q", *[str(single) if a == "RUN" else a for a in extend]],
        check=True,
        env=env,
        capture_output=True,
    )
    out = subprocess.run(
        [*launch, *[str(ddp) if a == "RUN" else a for a in extend]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, _failure(out)
    a, b = _losses(single), _losses(ddp)
    assert a[-1][:2] == b[-1][:2] == (40, "valid")
    assert b[-1][2] == pytest.approx(a[-1][2], rel=1e-3)


def test_batch_must_divide_among_processes(real_data, tmp_path, monkeypatch):
    from etude.config import load_preset
    from etude.errors import ConfigError
    from etude.training.distributed import Distributed
    from etude.training.loop import train

    monkeypatch.setattr(Distributed, "from_env", classmethod(lambda cls, cuda: cls(0, 3, 0)))
    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    with pytest.raises(ConfigError, match="must divide among 3"):
        train(cfg, tmp_path / "r")
