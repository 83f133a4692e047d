import subprocess
import sys

import pytest

from etude import __version__
from etude.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out


@pytest.mark.parametrize("command", [["corpus", "builtin"], ["data", "prepare"], ["data", "info"], ["data", "roll2midi"]])
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
    code = main(["-q", "data", "prepare", str(corrupt_dir), "--genre", "x", "--out", str(tmp_path / "o"), "--workers", "1", "--long-pieces", "reject"])
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
    assert main(["-q", "data", "prepare", str(good_corpus), "--out", str(out), "--min-seconds", "1", "--workers", "1"]) == 0
    assert "march" in capsys.readouterr().out
    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "remi encoding" in text and "waltz" in text


def test_roll2midi(jsb_mat, tmp_path, capsys):
    assert main(["data", "roll2midi", str(jsb_mat), "--split", "valid", "--index", "2", "--out", str(tmp_path / "x.mid")]) == 0
    assert (tmp_path / "x.mid").stat().st_size > 0


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "etude", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "corpus" in out.stdout
