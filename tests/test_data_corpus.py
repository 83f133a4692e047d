import shutil
from collections import Counter

import pytest

from etude.config import DataConfig
from etude.data.corpus import assign_split, discover, load_split, save_split
from etude.errors import InputError


def test_genres_from_sub_folders(good_corpus):
    files = discover(good_corpus)
    assert Counter(f.genre for f in files) == {"waltz": 4, "march": 3}
    assert files[0].id == "march/march0.mid"


def test_flat_folder_needs_genre(tmp_path, good_corpus):
    for p in (good_corpus / "march").iterdir():
        shutil.copy(p, tmp_path / p.name)
    with pytest.raises(InputError, match="--genre"):
        discover(tmp_path)
    assert {f.genre for f in discover(tmp_path, genre="march")} == {"march"}


def test_manifest(tmp_path, good_corpus):
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"path,genre\n{good_corpus}/march/march0.mid,a\n{good_corpus}/waltz/waltz1.mid,b\n")
    files = discover(manifest)
    assert [(f.path.name, f.genre) for f in files] == [("march0.mid", "a"), ("waltz1.mid", "b")]


def test_missing_and_empty(tmp_path):
    with pytest.raises(InputError, match="not found"):
        discover(tmp_path / "nope")
    with pytest.raises(InputError, match="no .mid"):
        discover(tmp_path)


def test_split_is_seeded_proportional_and_per_genre():
    ids = {"a": [f"a{i}" for i in range(100)], "b": [f"b{i}" for i in range(20)]}
    cfg = DataConfig(test_frac=0.1, valid_frac=0.1, seed=1)
    split = assign_split(ids, cfg)
    assert split == assign_split(ids, cfg)
    assert split != assign_split(ids, DataConfig(seed=2))
    a = Counter(split[i] for i in ids["a"])
    assert a == {"train": 81, "valid": 9, "test": 10}
    b = Counter(split[i] for i in ids["b"])
    assert b == {"train": 16, "valid": 2, "test": 2}


def test_split_reuses_previous_assignments(tmp_path):
    ids = {"a": [f"a{i}" for i in range(30)]}
    first = assign_split(ids, DataConfig())
    save_split(tmp_path / "split.json", first)
    # a piece moved by hand stays where it was put; new pieces join
    previous = load_split(tmp_path / "split.json")
    moved = next(i for i, s in previous.items() if s == "train")
    previous[moved] = "test"
    again = assign_split({"a": ids["a"] + ["a_new"]}, DataConfig(seed=99), previous)
    assert again[moved] == "test"
    assert all(again[i] == previous[i] for i in ids["a"])
    assert again["a_new"] in ("train", "valid", "test")


@pytest.mark.parametrize("genre", ["../../x", "a/b", ".hidden", "", "x" * 65, "tab\there"])
def test_unsafe_genre_names_are_refused_at_prepare_time(tmp_path, good_corpus, genre):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f'path,genre\n{good_corpus / "march" / "march0.mid"},"{genre}"\n')
    with pytest.raises(InputError, match="genre name"):
        discover(manifest)
    with pytest.raises(InputError, match="genre name"):
        discover(good_corpus / "march", genre=genre)


def test_special_files_and_link_loops_are_listed_for_rejection_not_followed(tmp_path, good_corpus):
    import os

    corpus = tmp_path / "c"
    shutil.copytree(good_corpus, corpus)
    os.mkfifo(corpus / "march" / "pipe.mid")
    os.symlink("self.mid", corpus / "march" / "self.mid")
    os.symlink("..", corpus / "march" / "up")  # a folder link loop
    ids = [f.id for f in discover(corpus)]
    assert "march/pipe.mid" in ids and "march/self.mid" in ids
    assert not [i for i in ids if i.startswith("march/up/")]
