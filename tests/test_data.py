"""Data layer on fixture files made here: parsing, checks, errors, cache round-trip."""
from __future__ import annotations

import gzip
import hashlib
import zipfile

import pandas as pd
import pytest
import torch

from recinterp.data import Catalogue, RecDataset, Split, _read_cache, _write_cache, load_dataset
from recinterp.data import checksums, fetch, movielens, steam
from recinterp.data.llara import rows_to_split, windows
from recinterp.data.titles import normalize_title


@pytest.mark.parametrize("raw, want", [
    ("Usual Suspects, The (1995)", "The Usual Suspects"),
    ("Se7en (1995)", "Se7en"),
    ("Star Wars (1977)", "Star Wars"),
    ("8 1/2 (1963)", "8 1/2"),
    ("Postino, Il (1994)", "Il Postino"),
    ("Fish Called Wanda, A (1988)", "A Fish Called Wanda"),
    ("Appartement, L' (1996)", "L'Appartement"),
    ("What's Eating Gilbert Grape? (1993)", "What's Eating Gilbert Grape?"),
    ("Three Colors: Blue (1993)", "Three Colors: Blue"),
    ("Misérables, Les (1995)", "Les Misérables"),
    ("Horseman on the Roof, The (Hussard sur le toit, Le) (1995)", "The Horseman on the Roof (Hussard sur le toit, Le)"),
    ("Land Before Time III: The Time of the Great Giving (1995) (V)", "Land Before Time III: The Time of the Great Giving"),
    ("CafÃ© au Lait (1993)", "Café au Lait"),  # Latin-1/UTF-8 mojibake repaired
    ("Half-Life 2: Episode One™", "Half-Life 2: Episode One"),
    ("Mount &amp; Blade: Warband", "Mount & Blade: Warband"),
    ("Command &amp; Conquer 3: Kane&#39;s Wrath", "Command & Conquer 3: Kane's Wrath"),
    ("Tom Clancy's Rainbow Six® Siege", "Tom Clancy's Rainbow Six Siege"),
    ("  C++   Quest  ", "C++ Quest"),
    ("Theatre of the Absurd", "Theatre of the Absurd"),  # "The" inside a word is not an article
    ("unknown", "unknown"),
])
def test_normalize_title_hard_cases(raw, want):
    assert normalize_title(raw) == want


def test_normalize_title_rejects_non_strings():
    with pytest.raises(TypeError, match="string"):
        normalize_title(None)




# ---------------------------------------------------------------- checksums and downloads

def test_verify_refuses_unknown_hash_and_names_both(tmp_path, monkeypatch):
    monkeypatch.delenv(checksums.TRUST_ENV, raising=False)
    f = tmp_path / "Test_data.df"
    f.write_bytes(b"not the official file")
    got = hashlib.sha256(b"not the official file").hexdigest()
    with pytest.raises(checksums.ChecksumError) as e:
        checksums.verify(f, "ab" * 32, what="movielens/Test_data.df")
    msg = str(e.value)
    assert "movielens/Test_data.df" in msg and got in msg and "ab" * 32 in msg and checksums.TRUST_ENV in msg
    assert checksums.verify(f, got) == got


def test_verify_opt_in_reads_with_a_warning(tmp_path, monkeypatch):
    f = tmp_path / "x"
    f.write_bytes(b"x")
    monkeypatch.setenv(checksums.TRUST_ENV, "1")
    with pytest.warns(UserWarning, match="anyway"):
        checksums.verify(f, None)


def test_verify_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing file"):
        checksums.verify(tmp_path / "nope", "00")


def test_llara_file_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(checksums.TRUST_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fetch.llara_file("movielens", "Test_data.df", llara_dir=tmp_path / "absent")
    (tmp_path / "movielens").mkdir()
    with pytest.raises(FileNotFoundError, match="missing file .*Test_data.df"):
        fetch.llara_file("movielens", "Test_data.df", llara_dir=tmp_path)
    assert fetch.llara_file("movielens", "train_data.df100", llara_dir=tmp_path, required=False) is None
    (tmp_path / "movielens" / "Test_data.df").write_bytes(b"tampered")
    with pytest.raises(checksums.ChecksumError, match="movielens/Test_data.df"):
        fetch.llara_file("movielens", "Test_data.df", llara_dir=tmp_path)


def test_truncated_zip_is_reported(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t1\n" * 1000)
    z.write_bytes(z.read_bytes()[:60])
    with pytest.raises(RuntimeError, match="truncated"):
        fetch._extract_members(z, {"ml-100k/u.data": "u.data"}, tmp_path / "out")
    assert not (tmp_path / "out" / "u.data").exists()


def test_zip_member_hash_checked(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("d/ml-100k.item", "fake")
    with pytest.raises(checksums.ChecksumError):
        fetch._extract_members(z, {"d/ml-100k.item": "ml-100k.item"}, tmp_path / "o", {"ml-100k.item": "00" * 32})
    assert not (tmp_path / "o" / "ml-100k.item").exists()


def test_unknown_dataset_and_source():
    with pytest.raises(ValueError, match="unknown dataset 'netflix'"):
        load_dataset("netflix")
    with pytest.raises(ValueError, match="unknown MovieLens source"):
        fetch.fetch_ml100k("/nonexistent-dir-for-test", source="kaggle")


# ---------------------------------------------------------------- LLaRA rows

def _ml_rows(rows, pad=5):
    return pd.DataFrame({"seq": [[(i, 4) for i in h] + [(pad, 0)] * (10 - len(h)) for h, _ in rows],
                         "len_seq": [max(1, len(h)) for h, _ in rows], "next": [(n, 5) for _, n in rows]})


def test_rows_to_split_drops_empty_and_checks_ids():
    df = _ml_rows([([0, 1, 2], 3), ([], 4), ([4], 0)])
    split, dropped = rows_to_split(df, n_items=5, where="fixture")
    assert dropped == 1 and len(split) == 2
    assert split.lens.tolist() == [3, 1] and split.next.tolist() == [3, 0]
    assert split.seqs[0].tolist() == [0, 1, 2] + [5] * 7
    with pytest.raises(ValueError, match="fixture row 0: item id 7 out of range"):
        rows_to_split(_ml_rows([([7], 1)]), n_items=5, where="fixture")
    bad = _ml_rows([([0, 1], 2)])
    bad.at[0, "seq"] = [(0, 4), (5, 0), (1, 4)] + [(5, 0)] * 7
    with pytest.raises(ValueError, match="padding is not at the right end"):
        rows_to_split(bad, n_items=5, where="fixture")


def test_windows_are_prefixes_of_at_most_ten():
    rows = list(windows(list(range(12)), pad=99))
    assert rows[0] == ([99] * 10, 0, 0)
    assert rows[3] == ([0, 1, 2] + [99] * 7, 3, 3)
    assert rows[11] == (list(range(1, 11)), 10, 11)


# ---------------------------------------------------------------- MovieLens from fixture files

def _write_movielens(raw):
    raw.mkdir(parents=True)
    # user 1: items 1..6 (ids 0..5), user 2: items 3,1,2 (a tie at ts 20), user 3 low ratings dropped
    lines = [(1, i, 4, 10 * i) for i in range(1, 7)] + [(2, 3, 5, 10), (2, 1, 3, 20), (2, 2, 4, 20), (3, 4, 1, 5), (3, 5, 2, 6)]
    (raw / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in lines))
    return pd.DataFrame(lines, columns=["user", "item", "rating", "ts"])


def test_movielens_sequences_users_and_rebuild(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "N_ITEMS", 6)
    _write_movielens(tmp_path / "ml")
    ratings = movielens.read_ratings(tmp_path / "ml")
    assert ratings["item"].min() == 0
    seqs = movielens.user_sequences(ratings)
    assert seqs == {1: [0, 1, 2, 3, 4, 5], 2: [2, 0, 1]}  # rating < 3 dropped, ties keep file order
    test = _ml_rows([([1, 2, 3, 4], 5)], pad=6)
    assert movielens.locate_users(test, seqs, "t") == [1]
    rows = movielens.rebuild_train_rows(seqs, exclude={1})
    assert [r[1:] for r in rows] == [(0, 2), (1, 0), (2, 1)]
    # the official order of a tie (1 before 0 at ts 20) counts as a tie, not a difference
    official = _ml_rows([([2], 1), ([2, 1], 0), ([], 2)], pad=6)
    cmp = movielens.compare_with_official(rows, official, ratings, seqs)
    assert cmp == {"official_rows": 3, "exact": 1, "tie_reordered": 2, "different": 0}


def test_movielens_ambiguous_row_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "N_ITEMS", 6)
    seqs = {1: [0, 1, 2], 2: [0, 1, 2]}
    with pytest.raises(ValueError, match="2 users rated all"):
        movielens.locate_users(_ml_rows([([0, 1], 2)], pad=6), seqs, "t")


def test_movielens_items_from_u_item_and_recbole(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "N_ITEMS", 2)
    u = tmp_path / "u.item"
    u.write_bytes("1|Toy Story (1995)|x||url|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\r\n"
                  "2|Misérables, Les (1995)|x||url|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\r\n".encode("latin-1"))
    titles, genres = movielens.read_items(u, tmp_path)
    assert titles == ["Toy Story (1995)", "Misérables, Les (1995)"]
    assert genres == [["Animation", "Children's", "Comedy"], ["Drama"]]
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n1\tToy Story\t1995\tAnimation Comedy\n2\tX\t\t\n")
    titles, genres = movielens.read_items(None, tmp_path / "rb")
    assert titles == ["Toy Story (1995)", "X"] and genres == [["Animation", "Comedy"], []]


def test_movielens_missing_raw(tmp_path):
    with pytest.raises(FileNotFoundError, match="u.data or ml-100k.inter"):
        movielens.read_ratings(tmp_path)


# ---------------------------------------------------------------- Steam

def test_steam_id2name_and_meta(tmp_path, monkeypatch):
    monkeypatch.setattr(steam, "N_ITEMS", 2)
    p = tmp_path / "id2name.txt"
    p.write_bytes(b"0::Half-Life\r\n1::Portal 2\r\n")
    names = steam.read_id2name(p)
    assert names == ["Half-Life", "Portal 2"]
    meta = tmp_path / "m.json.gz"
    with gzip.open(meta, "wt") as f:
        f.write("{u'app_name': u'Portal 2', u'genres': [u'Action'], u'tags': [u'Puzzle', u'Co-op']}\n")
        f.write("{'app_name': 'Other', 'genres': ['RPG']}\n")
    genres, tags, matched = steam.read_meta(meta, names)
    assert genres == [[], ["Action"]] and tags == [[], ["Puzzle", "Co-op"]] and matched == 1
    p.write_bytes(b"0::Half-Life\r\nbroken line\r\n")
    with pytest.raises(ValueError, match="expected 'id::name'"):
        steam.read_id2name(p)


def test_steam_meta_is_never_evaluated(tmp_path, monkeypatch):
    monkeypatch.setattr(steam, "N_ITEMS", 1)
    meta = tmp_path / "m.json.gz"
    with gzip.open(meta, "wt") as f:
        f.write("__import__('os').system('echo pwned')\n")
    with pytest.raises(ValueError):
        steam.read_meta(meta, ["x"])


# ---------------------------------------------------------------- cache

def test_cache_round_trip(tmp_path):
    s = Split(torch.tensor([[0, 1] + [3] * 8]), torch.tensor([2]), torch.tensor([2]))
    ds = RecDataset("steam", 3, s, s, s, Catalogue(["a", "b", "c"], ["a", "b", "c"], [["x"], [], []], [[], ["t"], []]),
                    extra={"test_all": s}, notes=["n"])
    _write_cache(tmp_path, ds, {"k": 1})
    import json
    back = _read_cache(tmp_path, json.loads((tmp_path / "meta.json").read_text()))
    assert torch.equal(back.train.seqs, s.seqs) and torch.equal(back.extra["test_all"].next, s.next)
    assert back.catalogue.tags == [[], ["t"], []] and back.notes == ["n"] and back.pad_id == 3
    assert not list(tmp_path.glob("*.tmp"))
