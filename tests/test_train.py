import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from etude.config import load_preset
from etude.data.windows import Windows
from etude.errors import CheckpointError, ConfigError
from etude.training.loop import average_into, train
from etude.training.run import lr_factor
from runs import trained_and_resumed


def _rows(run, split=None):
    with open(run / "metrics.csv") as fh:
        return [r for r in csv.DictReader(fh) if split is None or r["split"] == split]


def test_training_on_real_music_beats_the_unigram_model(tiny_run):
    valid = _rows(tiny_run, "valid")
    assert [int(r["iteration"]) for r in valid] == [40, 80, 120]
    state = json.loads((tiny_run / "checkpoints" / "last" / "state.json").read_text())
    assert state["iteration"] == 120
    m = state["metrics"]
    assert m["perplexity"] < 0.8 * m["unigram_perplexity"]
    assert float(valid[-1]["loss"]) < float(valid[0]["loss"])
    assert (tiny_run / "tb").is_dir() and any((tiny_run / "tb").iterdir())
    best = (tiny_run / "checkpoints" / "best").resolve().name
    assert best == f"ckpt-{state['best']['iteration']:06d}"


def test_windows_stay_inside_pieces():
    import numpy as np

    rows = np.arange(1, 21, dtype=np.uint16)[:, None]
    index = np.array([[0, 5, 0], [5, 15, 1]])
    w = Windows(rows, index, seq_len=6, pad_id=0)
    for seed in range(20):
        x, y, g = w.random_batch(np.random.default_rng(seed), 4)
        for xi, yi, gi in zip(x.tolist(), y.tolist(), g.tolist()):
            tokens = [t for t in xi + yi[-1:] if t]
            assert all(b == a + 1 for a, b in zip(tokens, tokens[1:]))  # consecutive: one piece
            assert (tokens[0] <= 5) == (gi == 0)
    fixed = list(w.fixed_batches(batch_size=2, max_windows=100))
    covered = {t for x, y, _ in fixed for t in y.flatten().tolist() if t}
    assert covered == set(range(2, 6)) | set(range(7, 21))  # every target of every piece


def test_start_share_begins_windows_where_pieces_begin():
    import numpy as np

    rows = np.arange(1, 41, dtype=np.uint16)[:, None]
    index = np.array([[0, 20, 0], [20, 20, 1]])  # pieces open with tokens 1 and 21
    rng = np.random.default_rng(0)
    firsts = {
        share: Windows(rows, index, seq_len=4, pad_id=0, start_share=share).random_batch(rng, 400)[0][:, 0]
        for share in (0.0, 0.5, 1.0)
    }
    at_start = {share: np.isin(x.numpy(), [1, 21]).mean() for share, x in firsts.items()}
    assert at_start[1.0] == 1.0
    assert 0.4 < at_start[0.5] < 0.65  # half at the start, the rest anywhere (1 in 16 of them too)
    assert at_start[0.0] < 0.15


def test_init_fine_tunes_a_trained_model_and_refuses_a_mismatch(tiny_run, real_data, tmp_path):
    source = tiny_run / "checkpoints" / "best"
    run = tmp_path / "fine"
    done = subprocess.run(
        _etude(
            "train",
            str(real_data),
            "--out",
            str(run),
            "--preset",
            "tiny",
            "--init",
            str(source),
            "--train.iterations=2",
            "--train.lr=0",
            "--train.eval_every=2",
        ),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    saved = json.loads((run / "config.json").read_text())
    assert (
        saved["init"] == str(source)
        and saved["model"] == json.loads((source / "config.json").read_text())["run"]["model"]
    )
    before, after = (
        load_file(source / "model.safetensors"),
        load_file(run / "checkpoints" / "last" / "model.safetensors"),
    )
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # lr 0: unchanged
    first_valid = next(float(r["loss"]) for r in _rows(run) if r["split"] == "valid")
    best = json.loads((source / "state.json").read_text())["best"]["loss"]
    assert first_valid == pytest.approx(best, abs=0.05)  # it starts where the source model was, not from scratch

    bigger = subprocess.run(
        _etude(
            "train",
            str(real_data),
            "--out",
            str(tmp_path / "bad"),
            "--preset",
            "tiny",
            "--init",
            str(source),
            "--model.hidden=64",
        ),
        capture_output=True,
        text=True,
    )
    assert bigger.returncode == 2 and "cannot start from" in bigger.stderr and "Traceback" not in bigger.stderr


def test_lr_schedule():
    cfg = load_preset("tiny").train
    cfg.iterations, cfg.warmup, cfg.min_lr_frac = 100, 10, 0.1
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(100, cfg) == pytest.approx(0.1)
    assert 0.1 < lr_factor(50, cfg) < 1


def test_refuses_to_overwrite_and_checks_keys(real_data, tmp_path):
    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="--force"):
        train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="train.iterations"):
        train(cfg, tmp_path / "new", overrides=["train.iteration=5"])


def _etude(*args):
    return [sys.executable, "-m", "etude", "-q", *args]


def _losses(run):
    """(iteration, split, loss) of every row of a run's metrics.csv."""
    return [(r["iteration"], r["split"], r["loss"]) for r in _rows(run)]


def _assert_same_losses(full, cut) -> None:
    """The resumed run `cut` logged what the uninterrupted run `full` logged. metrics.csv keeps 5
    decimals: two runs a few float32 ulps apart (a CPU kernel may round differently in another
    process; seen once in CI, 2.680805 either side) can differ by one unit in the last place, never
    more. Resume defects move the losses far more (measured by breaking the resume: the schedule
    one step ahead 0.002, dropout's RNG not restored 0.04, Adam's state not restored 0.76)."""
    full_rows, cut_rows = _losses(full), _losses(cut)
    assert [r[:2] for r in full_rows] == [r[:2] for r in cut_rows]
    gaps = [abs(float(a[2]) - float(b[2])) for a, b in zip(full_rows, cut_rows)]
    assert max(gaps) <= 1.5e-5, max(gaps)
    assert sum(g > 0 for g in gaps) <= 2, gaps


def _checkpoint_iteration(run) -> int:
    return json.loads((run / "checkpoints" / "last" / "state.json").read_text())["iteration"]


def test_interrupted_and_resumed_run_matches_uninterrupted(real_data, tmp_path):
    common = ["--preset", "tiny", "--train.iterations=400", "--train.eval_every=100", "--train.log_every=10"]
    full = tmp_path / "full"
    subprocess.run(_etude("train", str(real_data), "--out", str(full), *common), check=True, capture_output=True)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        _etude("train", str(real_data), "--out", str(cut), *common), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((cut / "metrics.csv").exists() and len(_rows(cut)) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    stopped = _checkpoint_iteration(cut)
    assert 0 < stopped < 400, "the run finished before the signal: raise train.iterations"

    subprocess.run(_etude("train", "--resume", str(cut)), check=True, capture_output=True)
    _assert_same_losses(full, cut)


def test_sigterm_also_saves(real_data, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _etude("train", str(real_data), "--out", str(run), "--preset", "tiny", "--train.iterations=100000"),
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    # the handlers are installed before the run folder is made: its existence is the go signal
    while time.time() < deadline and not run.exists():
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert (run / "checkpoints" / "last" / "model.safetensors").exists()


def test_kill_9_loses_at_most_one_eval_interval_and_no_history(real_data, tmp_path):
    """kill -9 (no handler runs) during a run and again early in its resume: the log keeps every row
    up to the checkpoint, the checkpoint is at most one eval interval behind, and the resumed run
    ends with the losses of an uninterrupted one."""
    common = ["--preset", "tiny", "--train.iterations=300", "--train.eval_every=50", "--train.log_every=10"]
    full = tmp_path / "full"
    subprocess.run(_etude("train", str(real_data), "--out", str(full), *common), check=True, capture_output=True)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_etude("train", str(real_data), "--out", str(cut), *common), stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(_rows(cut, "valid") if (cut / "metrics.csv").exists() else []) < 2:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    logged = max(int(r["iteration"]) for r in _rows(cut))
    kept = _checkpoint_iteration(cut)
    assert 0 < kept < 300 and logged - kept <= 50  # at most one eval interval behind what was logged
    for wait in (0.0, 0.5, 1.0):  # killed while resuming, at several moments before its first rows
        proc = subprocess.Popen(_etude("train", "--resume", str(cut)), stderr=subprocess.DEVNULL)
        time.sleep(wait)
        proc.kill()
        proc.wait()
        iterations = [int(r["iteration"]) for r in _rows(cut, "train")]
        assert iterations[: kept // 10] == list(range(10, kept + 1, 10)), "history before the checkpoint was lost"
    subprocess.run(_etude("train", "--resume", str(cut)), check=True, capture_output=True)
    _assert_same_losses(full, cut)


def test_resume_never_runs_code_from_a_run_folder(tiny_run, tmp_path):
    """A pickle that calls os.system, planted as optimizer.pt, is refused with one clear error."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"optimizer": Payload()}, run / "checkpoints" / "last" / "optimizer.pt")
    with pytest.raises(CheckpointError, match="refusing .*optimizer.pt"):
        train(run_dir=run, resume=True, progress=False)
    assert not marker.exists()


def test_bf16_trains_where_the_cpu_can_and_falls_back_where_it_cannot(real_data, tmp_path, caplog):
    """On CPUs without native bf16 (AVX2-only), oneDNN has no bf16 LSTM: fp32 with a warning."""
    from etude.runtime import bf16_supported

    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    with caplog.at_level("INFO", logger="etude.training.loop"):
        result = train(
            cfg, tmp_path / "bf16", overrides=["train.precision=bf16", "train.iterations=20"], progress=False
        )
    assert (
        math.isfinite(result.metrics["loss"])
        and result.metrics["perplexity"] < result.metrics["unigram_perplexity"] * 2
    )
    said = caplog.text
    if bf16_supported("cpu"):
        assert "bf16 autocast on cpu" in said
    else:
        assert "cannot run an LSTM in bf16" in said and "training in fp32" in said
    with pytest.raises(ConfigError, match="precision"):
        train(cfg, tmp_path / "bad", overrides=["train.precision=fp8"], progress=False)


@pytest.mark.slow
def test_compiled_model_trains_like_eager(real_data, tmp_path):
    """torch.compile (inductor, a C++ compiler on CPU) gives the eager losses; slow: `make test-slow`."""
    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    common = ["train.iterations=10", "train.eval_every=10", "train.log_every=2", "model.keep_prob=1.0"]
    eager = train(cfg, tmp_path / "eager", overrides=common, progress=False)
    compiled = train(cfg, tmp_path / "compiled", overrides=[*common, "train.compile=true"], progress=False)
    assert compiled.metrics["loss"] == pytest.approx(eager.metrics["loss"], rel=1e-3)


_COMPILED_LOSS = """
import sys
from etude.config import load_preset
from etude.training.loop import train
cfg = load_preset("tiny")
cfg.data = sys.argv[1]
common = ["train.iterations=4", "train.eval_every=4", "model.keep_prob=1.0", "train.compile=true"]
print(train(cfg, sys.argv[2], overrides=common, progress=False).metrics["loss"])
"""


@pytest.mark.slow
def test_compiled_training_survives_a_change_of_cpu_capability(real_data, tmp_path):
    """Compiled on this CPU's own capability, then with ATEN_CPU_CAPABILITY=avx2 (how one checks a
    user's AVX2-only CPU here), both with one temporary folder: torch's inductor cache, not keyed by
    the capability, gave NaN losses the second time until compile_cache_for_this_cpu split it."""
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    env.pop("ATEN_CPU_CAPABILITY", None)
    losses = []
    for k, extra in enumerate([{}, {"ATEN_CPU_CAPABILITY": "avx2"}]):
        args = [sys.executable, "-c", _COMPILED_LOSS, str(real_data), str(tmp_path / f"run{k}")]
        done = subprocess.run(args, env={**env, **extra}, capture_output=True, text=True, check=True)
        losses.append(float(done.stdout.split()[-1]))
    assert math.isfinite(losses[1]) and losses[1] == pytest.approx(losses[0], rel=1e-3)


def test_compile_cache_is_kept_apart_per_cpu_capability(monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from etude.runtime import compile_cache_for_this_cpu

    default = os.path.abspath(default_cache_dir())
    capability = torch.backends.cpu.get_cpu_capability()
    for before in (None, default):  # unset, or set by torch itself to its default
        if before is None:
            monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
        else:
            monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", before)
        assert compile_cache_for_this_cpu() == os.path.join(default, capability)
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == os.path.join(default, capability)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/of/mine")  # the user's choice stands
    assert compile_cache_for_this_cpu() == "/somewhere/of/mine"


def test_keep_every_keeps_checkpoints_along_the_way(real_data, tmp_path):
    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    train(
        cfg,
        tmp_path / "run",
        overrides=["train.iterations=30", "train.eval_every=25", "train.keep_every=12"],
        progress=False,
    )
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("ckpt-*"))
    # kept at 12 and 24 (validated there too), the last at 30; 25 was neither kept nor best-and-last
    assert {"ckpt-000012", "ckpt-000024", "ckpt-000030"} <= set(names)
    assert [int(r["iteration"]) for r in _rows(tmp_path / "run", "valid")] == [12, 24, 25, 30]


def test_average_into_by_hand():
    avg, model = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        avg.weight.fill_(0.0), avg.bias.fill_(4.0), model.weight.fill_(4.0), model.bias.fill_(0.0)
    average_into(avg, model, 0.75)  # 0.75 * old + 0.25 * new
    assert avg.weight.tolist() == [[1.0, 1.0]] and avg.bias.tolist() == [3.0]


def test_weight_average_is_saved_and_resumes_exactly(real_data, tmp_path):
    whole, cut = trained_and_resumed(real_data, tmp_path, "train.average=0.9")

    def saved(run):
        last = run / "checkpoints" / "last"
        return load_file(str(last / "model.safetensors")), torch.load(last / "optimizer.pt", weights_only=True)[
            "training_weights"
        ]

    (avg_a, raw_a), (avg_b, raw_b) = saved(whole), saved(cut)
    for k in avg_a:
        torch.testing.assert_close(avg_b[k], avg_a[k])
        torch.testing.assert_close(raw_b[k], raw_a[k])
    assert any(not torch.equal(avg_a[k], raw_a[k].cpu()) for k in avg_a), (
        "the checkpoint holds the average, not the raw weights"
    )
    assert [r["loss"] for r in _rows(whole, "valid")] == [r["loss"] for r in _rows(cut, "valid")]


def test_patience_stops_a_run_that_no_longer_improves(real_data, tmp_path):
    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    run = tmp_path / "run"
    # lr 0: validation never beats the first one (at 10), so patience 2 x 10 runs out at 30
    result = train(
        cfg,
        run,
        overrides=["train.iterations=100", "train.eval_every=10", "train.patience=2", "train.lr=0"],
        progress=False,
    )
    assert result.iteration == 30 and result.best["iteration"] == 10
    assert [int(r["iteration"]) for r in _rows(run, "valid")] == [10, 20, 30]
    assert train(run_dir=run, resume=True, progress=False).iteration == 30  # a stopped run stays stopped
    assert train(run_dir=run, resume=True, overrides=["train.patience=0"], progress=False).iteration == 100


def test_progress_without_a_terminal_is_logged_as_lines(real_data, tmp_path, caplog, monkeypatch):
    """Under pytest stderr is no terminal, as in a log file or CI: tqdm draws nothing there."""
    from etude.training import loop

    monkeypatch.setattr(loop._Bar, "LOG_EVERY_S", 0.0)  # a line at every iteration
    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    with caplog.at_level("INFO", logger="etude.training.loop"):
        train(cfg, tmp_path / "run", overrides=["train.iterations=5", "train.eval_every=5"])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train: iteration")]
    assert [line.split(",")[0] for line in lines] == [f"train: iteration {k} of 5" for k in range(1, 6)]
    assert all("loss" in line and "tok_s" in line for line in lines)
    caplog.clear()
    with caplog.at_level("INFO", logger="etude.training.loop"):
        train(cfg, tmp_path / "quiet", overrides=["train.iterations=3", "train.eval_every=3"], progress=False)
    assert not [r for r in caplog.records if r.getMessage().startswith("train: iteration")]


def test_a_time_budget_fits_the_schedule_to_the_iterations_it_reaches(real_data, tmp_path, monkeypatch):
    """However fast or busy the machine, 12 seconds reach more than 3 iterations of the tiny model
    and far fewer than 10**6: the plan is set from the first 3 iterations' speed, saved for
    resume, and the schedule follows it."""
    from etude.training import loop

    monkeypatch.setattr(loop, "FIT_AFTER", 3)
    cfg = load_preset("tiny")
    cfg.data = str(real_data)
    run = tmp_path / "run"
    overrides = ["train.iterations=1000000", "train.eval_every=1000000", "train.max_minutes=0.2", "train.warmup=0"]
    overrides.append("train.log_every=1")  # a row for every iteration, however few the budget reaches
    result = train(cfg, run, overrides=overrides, progress=False)
    assert result.stopped_by == "budget"
    saved = json.loads((run / "config.json").read_text())["train"]
    plan = saved["schedule_iterations"]
    assert 4 <= plan < 1000000 and saved["iterations"] == 1000000
    tc = load_preset("tiny").train
    tc.iterations, tc.warmup, tc.schedule_iterations = 1000000, 0, plan
    assert lr_factor(plan, tc) == pytest.approx(tc.min_lr_frac) and lr_factor(10 * plan, tc) == pytest.approx(
        tc.min_lr_frac
    )
    middle = plan / 2  # half way to the plan: half way down the cosine
    assert lr_factor(middle, tc) == pytest.approx(tc.min_lr_frac + (1 - tc.min_lr_frac) / 2)
    # each row after the fit logs the rate its iteration trained at, the planned schedule's
    # (metrics.csv keeps 3 significant digits of the rate)
    rows = _rows(run, "train")
    assert len(rows) > loop.FIT_AFTER
    for row in rows[loop.FIT_AFTER :]:
        assert float(row["lr"]) == pytest.approx(cfg.train.lr * lr_factor(int(row["iteration"]) - 1, tc), rel=6e-3)
