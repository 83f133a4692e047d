import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from etude.cli import main
from etude.data.store import open_split
from etude.evaluation.classifier import ListeningConfig
from etude.evaluation.compare import evaluate, generated_set
from etude.generation.generate import Sampling
from etude.models.checkpoint import load_checkpoint


class _Media(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.audio = [], []

    def handle_starttag(self, tag, attrs):
        src = dict(attrs).get("src", "")
        if tag == "img":
            self.images.append(src)
        if tag == "audio":
            self.audio.append(src)


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = evaluate(
        tiny_run,
        out,
        baselines=[tmp_path_factory.mktemp("nobaseline")],
        n=4,
        length="8s",
        classifier_config=ListeningConfig(iterations=40),
        progress=False,
        sampling=Sampling(temperature=0.9, top_k=40),
    )
    return out, result


def test_report_files_and_numbers(report):
    out, result = report
    saved = json.loads((out / "report.json").read_text())
    assert saved["pieces_per_set"] == {"original": 4, "lstm": 4}
    assert (saved["sampling"]["temperature"], saved["sampling"]["top_k"]) == (0.9, 40)
    assert saved["split"] == "test"  # the default: the real pieces and likelihood of the test split
    for name in ("original", "lstm"):
        assert 0 <= saved["spectral"][name]["js_distance"] <= 1
    assert saved["spectral"]["original"]["log_spectral_distance_db"] == pytest.approx(0, abs=1e-9)
    assert 0 <= saved["set_comparison"]["lstm"]["pitch_class_entropy"]["overlap"] <= 1.0001
    assert saved["likelihood"]["lstm"]["test_perplexity"] > 1
    # by position: every test piece of 1,200 tokens or more, read whole
    _, index = open_split(Path(json.loads((Path(saved["run"]) / "config.json").read_text())["data"]), "test")
    positions = saved["likelihood_by_position"]
    assert positions["pieces"] == min(int((index[:, 1] >= 1200).sum()), 100)
    if positions["pieces"]:
        assert sum(b["tokens"] for b in positions["buckets"]) == sum(min(n, 8192) - 1 for n in index[:, 1] if n >= 1200)
        assert "By position in the piece" in (out / "report.html").read_text()
        same = positions["same_pieces"]
        assert same["pieces"] == int((index[:, 1] >= same["from"]).sum())  # under 100 pieces: none left out
    assert len(saved["spectral"]["lstm"]["per_piece"]["js_distance"]) == 4
    assert saved["histogram_js_distance"]["original"]["pitch_class_histogram"] == pytest.approx(0, abs=1e-9)
    assert 0 < saved["histogram_js_distance"]["lstm"]["note_length_histogram"] <= 1
    assert 0 <= saved["genre"]["test"]["accuracy"] <= 1 and len(saved["genre"]["test"]["confusion"]) == 2
    judge = saved["genre"]["test"]
    assert judge["kind"] == "listening" and judge["opening"]["pieces"] == judge["pieces"]
    page = (out / "report.html").read_text()
    assert f"test split, first 30 s ({judge['pieces']})" in page and "test split, whole pieces" in page
    assert len(saved["memorisation"]["lstm"]["longest_runs"]) == 4
    memo = saved["memorisation"]["lstm"]
    assert len(memo["longest_bars"]) == 4 and memo["max_bars"] == max(memo["longest_bars"]) >= 0
    assert memo["flagged_copies"] == sum(b >= memo["flag_at_bars"] for b in memo["longest_bars"])
    # per genre: both genres of the tiny corpus, adherence and overlapped areas in [0, 1]
    adherence = saved["genre"]["adherence"]["lstm"]
    assert set(adherence["by_genre"]) == set(adherence["labels"]) and len(adherence["by_genre"]) == 2
    share = sum(adherence["by_genre"][g] * adherence["labels"].count(g) for g in adherence["by_genre"]) / 4
    assert share == pytest.approx(adherence["share_as_labelled"])
    for genre, v in saved["set_comparison_by_genre"]["lstm"].items():
        assert v["mean_overlap"] is None or 0 <= v["mean_overlap"] <= 1.0001
    # the baseline folder holds no checkpoint: listed as a problem, the rest still written
    assert any("baseline" in p for p in saved["problems"])
    for png in ("spectra.png", "statistics.png", "confusion.png", "spectrogram_lstm.png", "lag_profile.png"):
        assert (out / png).stat().st_size > 5000
    # measures of form per set and genre, each as etude.evaluation.form computes it on the set's pieces
    form = saved["form"]
    assert set(form) == {"original", "lstm"} and set(form["lstm"]) == set(adherence["by_genre"])
    for by_genre in form.values():
        for values in by_genre.values():
            assert values["key_consistency"] is None or 0 <= values["key_consistency"] <= 1
            assert values["bar_repetition"] is None or 0 <= values["bar_repetition"] <= 1
            assert len(values["lag_profile"]) == 8
            assert values["last_30s_same_key"] is None  # 8 s pieces: too short for long form


def test_the_generated_set_samples_as_asked(tiny_run):
    ckpt = load_checkpoint(tiny_run)
    genres = ckpt.encoding.genres

    def notes(sampling):
        pieces = generated_set("lstm", ckpt, genres, 2, "4s", seed=3, sampling=sampling)
        return [score.tracks[0].notes.numpy()["pitch"].tolist() for score in pieces.scores]

    assert notes(None) == notes(Sampling())  # the house settings by default
    assert notes(Sampling(temperature=1.6)) != notes(Sampling())


def test_html_embeds_every_image_and_audio(report):
    out, _ = report
    page = _Media()
    page.feed((out / "report.html").read_text())
    assert len(page.images) == 6  # spectra, two spectrograms, statistics, confusion, lag profiles
    assert len(page.audio) == 4  # two excerpts per set
    for src in page.images:
        assert src.startswith("data:image/png;base64,") and len(src) > 5000
    for src in page.audio:
        assert src.startswith("data:audio/wav;base64,") and len(src) > 5000


def test_classifier_cli(real_data, tmp_path, capsys, good_corpus):
    clf = str(tmp_path / "clf")
    assert main(["classifier", "train", str(real_data), "--out", clf, "--iterations", "30"]) == 0
    out = capsys.readouterr().out
    assert "listening judge; test accuracy" in out and "first 30 s" in out and "legato" in out
    files = [str(good_corpus / "march" / "march0.mid"), str(tmp_path / "missing.mid")]
    code = main(["classifier", "classify", clf, *files])
    captured = capsys.readouterr()
    assert code == 2 and "march0.mid: " in captured.out and "missing.mid" in captured.err
    # a folder is read whole, and --genre counts the files recognised as the genre
    assert main(["classifier", "classify", clf, str(good_corpus / "march"), "--genre", "bach"]) == 0
    out = capsys.readouterr().out
    assert out.count(".mid: ") == len(list((good_corpus / "march").glob("*.mid"))) and "recognised as bach" in out
    # options of the token judge are refused for the listening judge, in one line
    assert main(["classifier", "train", str(real_data), "--out", clf, "--hears", "all"]) == 2
    assert "--kind tokens" in capsys.readouterr().err
    assert main(["classifier", "classify", clf, str(good_corpus / "march"), "--genre", "polka"]) == 2
    assert "unknown genre 'polka'" in capsys.readouterr().err


def test_token_classifier_cli_and_leave_one_out(real_data, tmp_path, capsys):
    args = ["--iterations", "20", "--hold-out", "fiddle/", "--no-invariance"]
    assert main(["classifier", "train", str(real_data), "--out", str(tmp_path / "t"), "--kind", "tokens", *args]) == 0
    out = capsys.readouterr().out
    assert "tokens judge" in out and "held out (fiddle/)" in out and "legato" not in out
    assert main(["classifier", "leave-one-out", str(real_data), "--genre", "bach", "--iterations", "20"]) == 0
    assert "bach: " in capsys.readouterr().out
    assert main(["classifier", "leave-one-out", str(real_data), "--genre", "polka"]) == 2


def test_original_pieces_are_cut_to_the_generated_length(real_data):
    """Length-bound statistics (pitch range, pitches used) compare like with like: each test
    piece keeps exactly its notes that start in the first 8 s, none sounding past 8 s."""
    from etude.data.store import open_encoding
    from etude.evaluation.compare import original_set
    from etude.generation.generate import Length

    enc = open_encoding(real_data)
    whole = original_set(real_data, enc, 6)
    cut = original_set(real_data, enc, 6, Length.parse("8s"))
    assert cut.labels == whole.labels
    assert max(w.to("second").end() for w in whole.scores) > 20  # chorales and tunes run longer
    for w, c in zip(whole.scores, cut.scores):
        starts = [n.time for n in w.to("second").tracks[0].notes if n.time < 8 - 1e-6]
        assert c.note_num() == len(starts) > 0
        assert c.to("second").end() <= 8 + 0.05  # the cut is rounded to a tick (16 a quarter)
    tokens = original_set(real_data, enc, 6, Length.parse("40t"))
    assert all(0 < t.note_num() < w.note_num() for t, w in zip(tokens.scores, whole.scores))


def test_real_pieces_that_last_the_asked_length_come_first(real_data):
    """Cut to 25 s, each genre's first real piece is one that lasts 25 s (the split's first
    chorale lasts about 22 s and is passed over while a longer one is there); short pieces are
    still taken once the long ones run out."""
    from etude.data.store import open_encoding
    from etude.evaluation.compare import original_set
    from etude.generation.generate import Length

    enc = open_encoding(real_data)
    whole = original_set(real_data, enc, 1000)
    ends = {g: [sc.to("second").end() for sc, lab in zip(whole.scores, whole.labels) if lab == g] for g in enc.genres}
    assert any(e[0] < 25 <= max(e) for e in ends.values())  # a short piece first in the split's order
    first = original_set(real_data, enc, len(ends), Length.parse("25s"))
    assert sorted(first.labels) == sorted(ends)
    for sc, g in zip(first.scores, first.labels):
        if max(ends[g]) >= 25:
            assert sc.to("second").end() > 24, g
    every = original_set(real_data, enc, 1000, Length.parse("25s"))
    assert len(every.scores) == len(whole.scores)


def test_the_real_pieces_come_from_the_split_asked_for(real_data, tiny_run, tmp_path):
    """`--split valid` compares with the validation pieces (for choosing settings without looking
    at test); the default stays test; a training split is refused before any work (the CLI's
    refusal: tests/test_cli_misuse.py)."""
    from etude.data.store import open_encoding
    from etude.errors import ConfigError
    from etude.evaluation.compare import original_set

    enc = open_encoding(real_data)
    for split in ("test", "valid"):
        _, index = open_split(real_data, split)
        held = original_set(real_data, enc, 1000, split=split)
        assert sorted(held.labels) == sorted(enc.genres[int(g)] for g in index[:, 2])
        assert len(held.scores) == len(index) > 0
    with pytest.raises(ConfigError, match="--split must be one of test, valid"):
        evaluate(tiny_run, tmp_path / "r", split="train")
    assert not (tmp_path / "r").exists()
