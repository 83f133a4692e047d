import subprocess
import sys

import pytest

from etude import __version__
from etude.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [
        ["corpus", "builtin"],
        ["data", "prepare"],
        ["data", "info"],
        ["data", "roll2midi"],
        ["perform"],
        ["evaluate"],
        ["classifier", "train"],
        ["classifier", "classify"],
        ["classifier", "leave-one-out"],
        ["generate"],
        ["train"],
        ["studio"],
        ["robot", "check"],
        ["experiment", "study"],
        ["polyphonic"],
        ["corpus", "download"],
    ],
)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0 and "usage: etude" in capsys.readouterr().out


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    return err[0]


def test_missing_path_is_one_line_exit_2(tmp_path, capsys):
    assert main(["data", "prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in _error_line(capsys)


def test_only_bad_files_is_one_line_exit_2(tmp_path, corrupt_dir, capsys):
    code = main(
        [
            "-q",
            "data",
            "prepare",
            str(corrupt_dir),
            "--genre",
            "x",
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "1",
            "--long-pieces",
            "reject",
        ]
    )
    assert code == 2
    assert "no usable piece" in _error_line(capsys)


def test_empty_corpus_and_not_prepared(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["data", "prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no .mid" in _error_line(capsys)
    assert main(["data", "info", str(tmp_path / "empty")]) == 2
    assert "etude data prepare" in _error_line(capsys)


def test_unknown_encoding_exits_2(tmp_path, good_corpus, capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "prepare", str(good_corpus), "--encoding", "abc", "--out", str(tmp_path)])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_prepare_and_info(tmp_path, good_corpus, capsys):
    out = tmp_path / "d"
    assert (
        main(["-q", "data", "prepare", str(good_corpus), "--out", str(out), "--min-seconds", "1", "--workers", "1"])
        == 0
    )
    assert "march" in capsys.readouterr().out
    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "remi encoding" in text and "waltz" in text


def test_roll2midi(jsb_mat, tmp_path, capsys):
    assert (
        main(["data", "roll2midi", str(jsb_mat), "--split", "valid", "--index", "2", "--out", str(tmp_path / "x.mid")])
        == 0
    )
    assert (tmp_path / "x.mid").stat().st_size > 0


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "etude", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "corpus" in out.stdout


@pytest.mark.parametrize("command", [["train"], ["generate"]])
def test_model_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "usage: etude" in out
    if command == ["train"]:
        assert "keep_prob" in out and "KEEPING" in out and "docs/training.md" in out
        assert "16 hours" not in out and "on one H100" not in out  # lab timings live in the docs


def test_unknown_override_lists_valid_keys(real_data, tmp_path, capsys):
    code = main(["train", str(real_data), "--out", str(tmp_path / "r"), "--preset", "tiny", "--train.iteratons=5"])
    assert code == 2
    line = _error_line(capsys)
    assert "unknown setting 'train.iteratons'" in line and "train.iterations" in line


def test_train_and_generate_errors(tiny_run, real_data, tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "not a run folder" in _error_line(capsys)
    assert main(["generate", str(tmp_path / "nope"), "--genre", "bach"]) == 2
    assert "not found" in _error_line(capsys)
    assert main(["generate", str(tiny_run), "--genre", "polka", "--out", str(tmp_path / "g")]) == 2
    assert "knows: bach, fiddle" in _error_line(capsys)
    assert main(["generate", str(tiny_run), "--length", "forever", "--out", str(tmp_path / "g")]) == 2
    assert "60s" in _error_line(capsys)


def test_corrupt_checkpoint_exit_2(tiny_run, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree((tiny_run / "checkpoints" / "best").resolve(), bad)
    (bad / "config.json").write_text("{not json")
    assert main(["generate", str(bad), "--out", str(tmp_path / "g")]) == 2
    assert "corrupt" in _error_line(capsys)


def test_vocabulary_mismatch_on_resume(tiny_run, tmp_path, good_corpus, capsys):
    import json
    import shutil

    from etude.config import DataConfig
    from etude.data import prepare

    other = tmp_path / "other"
    prepare(good_corpus, other, DataConfig(min_seconds=1, test_frac=0.34, valid_frac=0.5), workers=1)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"] = str(other)
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["train", "--resume", str(run)]) == 2
    assert "vocabulary does not match" in _error_line(capsys)


def test_generate_prints_paths(tiny_run, tmp_path, capsys):
    out = tmp_path / "g"
    assert (
        main(
            [
                "generate",
                str(tiny_run),
                "--genre",
                "fiddle",
                "--n",
                "2",
                "--length",
                "64t",
                "--out",
                str(out),
                "--no-audio",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and str(out / "fiddle-00.mid") in lines[0]
    assert (out / "fiddle-01.png").exists() and not (out / "fiddle-01.wav").exists()


@pytest.mark.parametrize("flags, spare", [([], ("Duration",)), (["--cut-durations"], ())])
def test_sampling_options_reach_the_sampler(flags, spare):
    from etude.cli import build_parser
    from etude.cli.common import sampling_of

    for command in (["generate"], ["perform", "--jsonl", "-"], ["evaluate", "pretrained", "--out", "report"]):
        args = build_parser().parse_args([*command, "--top-k", "3", "--top-p", "0.9", "--recall", "1.5", *flags])
        s = sampling_of(args)
        assert (s.top_k, s.top_p, s.temperature, s.spare, s.recall, s.phrasing) == (3, 0.9, 1.0, spare, 1.5, 1.0)


def test_the_cli_samples_as_the_python_api_does():
    """One home for the sampling defaults: `etude generate`, `etude perform`, `etude evaluate`, the
    studio and a Python caller's Sampling() are the same settings."""
    from etude.cli import build_parser
    from etude.cli.common import sampling_of
    from etude.generation.generate import Sampling
    from etude.studio.generate import GenerateRequest

    for command in (["generate"], ["perform", "--jsonl", "-"], ["evaluate", "pretrained", "--out", "report"]):
        assert sampling_of(build_parser().parse_args(command)) == Sampling()
    request = GenerateRequest()
    assert (request.temperature, request.top_k, request.top_p) == (
        Sampling().temperature,
        Sampling().top_k,
        Sampling().top_p,
    )


def test_help_imports_no_command_module_and_no_torch():
    """`etude --help` lists every command from COMMANDS without importing their modules."""
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io\n"
        "from etude.cli import COMMANDS, main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "text = out.getvalue()\n"
        "assert all(name in text for name in COMMANDS), text\n"
        "heavy = ('torch', 'miditok', 'symusic')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('etude.cli.') or m in heavy)\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_command_makes_openmp_wait_passively_unless_told(monkeypatch):
    """Beside a busy process, spinning OpenMP threads made training 10 x slower (see
    benchmarks/busy_neighbour.py): `etude` asks for passive waiting, keeping a user's choice."""
    import os

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
