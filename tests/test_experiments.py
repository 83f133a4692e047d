import json
import shutil
import subprocess
import sys

import pytest

from etude.study.claims import closer_statistics, judge, mean_sd
from etude.study.plan import run_specs
from etude.study.run import train_seconds
from etude.study.scales import SCALES


def ms(mean, sd=0.0, n=3):
    return {"mean": mean, "sd": sd, "n": n}


def test_judge_by_hand():
    # the expected setting lowest, by a gap wider than the spreads (0.2 > 0.05 + 0.05)
    v = judge("lowest", {"0.5": ms(1.5, 0.05), "0.7": ms(1.3, 0.05), "0.9": ms(1.6, 0.05)}, "0.7")
    assert v["held"] is True and v["within_spread"] is False and v["note"] == "0.7 lowest"
    # lowest elsewhere; gap to the runner-up (1.3 vs 1.35) inside the spreads
    v = judge("lowest", {"0.5": ms(1.3, 0.04), "0.7": ms(1.35, 0.04)}, "0.7")
    assert v["held"] is False and v["within_spread"] is True and v["note"] == "lowest at 0.5"
    # error must fall at every step of the numeric setting, in numeric (not string) order
    assert judge("falls_with_setting", {"64": ms(3.0), "128": ms(2.0), "1024": ms(1.0), "256": ms(1.5)})["held"] is True
    v = judge("falls_with_setting", {"64": ms(3.0), "128": ms(2.0), "256": ms(2.1)})
    assert v["held"] is False and v["note"] == "lowest at 128"
    assert judge("lowest", {"lstm": ms(2.0), "rbm": ms(3.0)}, "lstm")["held"] is True
    assert judge("lowest", {"lstm": ms(None), "rbm": ms(3.0)}, "lstm")["held"] is None


def test_closer_statistics_by_hand():
    original = {"range": {"mean": 20.0}, "density": {"mean": 4.0}, "entropy": {"mean": 2.8}, "empty": {"mean": None}}
    lstm = {"range": {"mean": 23.0}, "density": {"mean": 2.0}, "entropy": {"mean": 2.9}, "empty": {"mean": 0.1}}
    rbm = {"range": {"mean": 30.0}, "density": {"mean": 5.0}, "entropy": {"mean": 3.2}, "empty": {"mean": 0.0}}
    # |23-20| < |30-20|; |2-4| > |5-4|; |2.9-2.8| < |3.2-2.8|; "empty" has no original mean
    assert closer_statistics(original, lstm, rbm) == (["range", "entropy"], 3)


def test_mean_sd():
    assert mean_sd([1.0, 3.0]) == {"mean": 2.0, "sd": pytest.approx(2**0.5), "n": 2}
    assert mean_sd([2.0, None, float("nan")]) == {"mean": 2.0, "sd": 0.0, "n": 1}
    assert mean_sd([]) == {"mean": None, "sd": None, "n": 0}


def test_train_seconds_adds_resumed_sessions(tmp_path):
    rows = ["iteration,split,loss,perplexity,accuracy,lr,tokens_per_s,elapsed_s"]
    rows += [f"{i},train,1,1,1,1,1,{t}" for i, t in [(10, 1.0), (20, 2.0), (30, 3.0), (40, 0.5), (50, 1.5)]]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    assert train_seconds(tmp_path / "m.csv") == pytest.approx(3.0 + 1.5)


def test_runs_share_the_base_configuration():
    specs = run_specs(SCALES["cpu"], seeds=2)
    # base + 2 other keep probabilities + 3 other widths + 3 other depths + rbm + rnn-rbm, per seed
    assert len(specs) == 2 * 11 and len({s.name for s in specs}) == len(specs)
    base = [s for s in specs if s.base]
    assert [s.name for s in base] == ["lstm-h128-l2-k0.7-seed0", "lstm-h128-l2-k0.7-seed1"]
    assert all("train.keep_every=300" in s.overrides for s in base)
    assert not any("train.keep_every=300" in s.overrides for s in specs if not s.base)


def _study(data, out, *extra):
    cmd = [
        sys.executable,
        "-m",
        "etude",
        "-q",
        "experiment",
        "study",
        "--data",
        str(data),
        "--scale",
        "tiny",
        "--out",
        str(out),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_tiny_study_runs_resumes_and_judges_every_claim(real_data, tmp_path):
    out = tmp_path / "study"
    res = _study(real_data, out, "--seeds", "2", "--workers", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "estimated training time" in res.stdout
    report = json.loads((out / "study.json").read_text())
    assert len(report["claims"]) == 6
    assert all(c["held"] in (True, False) for c in report["claims"]), report["claims"]
    assert len(report["runs"]) == 22 and all(r["trained_now"] for r in report["runs"].values())
    r = report["results"]
    assert set(r["dropout"]) == {"0.5", "0.7", "0.9"} and all(
        v["final_valid_nll"]["n"] == 2 for v in r["dropout"].values()
    )
    assert list(r["iterations"]) == ["20", "40"] and r["iterations"]["40"]["spectral_distance_db"]["n"] == 2
    assert all(v["test_nll"]["n"] == 2 and v["train_seconds"]["mean"] > 0 for v in r["hidden"].values())
    assert {"lstm", "rbm", "rnn-rbm", "original"} <= set(r["models"])
    for name in ("dropout", "iterations", "hidden", "layers", "spectra", "depth_spectrograms"):
        assert (out / f"study_{name}.png").stat().st_size > 5000
    page = (out / "study.html").read_text()
    assert page.count("data:image/png;base64") == 6 and "<h2>Claims</h2>" in page

    # again: every run is skipped; then a run folder removed is the only one trained
    stamp = (out / "runs" / "rbm-seed0" / "checkpoints" / "last" / "model.safetensors").stat().st_mtime_ns
    assert _study(real_data, out, "--seeds", "2").returncode == 0
    again = json.loads((out / "study.json").read_text())
    assert not any(v["trained_now"] for v in again["runs"].values())
    assert again["claims"] == report["claims"]
    assert (out / "runs" / "rbm-seed0" / "checkpoints" / "last" / "model.safetensors").stat().st_mtime_ns == stamp
    shutil.rmtree(out / "runs" / "lstm-h24-l3-k0.7-seed1")
    assert _study(real_data, out, "--seeds", "2").returncode == 0
    third = json.loads((out / "study.json").read_text())
    assert [k for k, v in third["runs"].items() if v["trained_now"]] == ["lstm-h24-l3-k0.7-seed1"]

    # a study killed half way through a run: the run folder holds its settings and a checkpoint
    # at half its iterations; the next study resumes it from there instead of starting it again
    from etude.study.plan import run_config
    from etude.training.loop import train

    name = "lstm-h24-l3-k0.7-seed1"
    spec = next(s for s in run_specs(SCALES["tiny"], 2) if s.name == name)
    cfg = run_config(spec, SCALES["tiny"], real_data, out / "data-pianoroll")
    full = cfg.train.iterations
    cfg.train.iterations = full // 2
    shutil.rmtree(out / "runs" / name)
    train(cfg, out / "runs" / name, progress=False)
    assert _study(real_data, out, "--seeds", "2").returncode == 0
    fourth = json.loads((out / "study.json").read_text())
    assert [k for k, v in fourth["runs"].items() if v["trained_now"]] == [name]
    rows = (out / "runs" / name / "metrics.csv").read_text().splitlines()[1:]
    done = [int(r.split(",")[0]) for r in rows if ",train," in r]
    assert done == sorted(set(done)) and max(done) == full  # one history, no restart from 0
    state = json.loads((out / "runs" / name / "checkpoints" / "last" / "state.json").read_text())
    assert state["iteration"] == full


def test_study_refuses_bad_input_with_one_line(real_data, tmp_path):
    res = _study(tmp_path / "missing", tmp_path / "out")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "etude: error:" in res.stderr
    res = _study(real_data, tmp_path / "out", "--seeds", "0")
    assert res.returncode == 2 and "--seeds" in res.stderr
