"""Datasets of one's own (issue 10): a LLaRA-format folder, an interaction log, the verified cache.

Every fixture is made here (tests/synthetic_data.py); expectations are hand-computed.
"""
from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
import torch

from recinterp import prompts
from recinterp.data import CacheError, ChecksumError, _read_cache, _write_cache, dataset_sources, load_dataset, load_stats
from recinterp.data.types import Catalogue, RecDataset, Split
from recinterp.cases import make_examples, nouns_for
from synthetic_data import TRICKY, make_llara_folder, make_log_folder, titles, write_sha256sums


@pytest.fixture
def llara(tmp_path):
    return make_llara_folder(tmp_path / "src" / "tinyllara")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def _no_trust_from_env(monkeypatch):
    for v in ("RECINTERP_TRUST_UNVERIFIED", "RECINTERP_SHA256SUMS"):
        monkeypatch.delenv(v, raising=False)


# ---------------------------------------------------------------- LLaRA-format folder

def _vouched(folder, data_dir, **kw):
    """Load a test folder after vouching for its pickles as they are now."""
    return load_dataset(folder, data_dir=data_dir, hashes=write_sha256sums(folder), **kw)


def test_llara_folder_by_path_with_a_sha256sums_file(llara, data_dir):
    ds = load_dataset(llara, data_dir=data_dir, hashes=write_sha256sums(llara))
    assert ds.name == "tinyllara" and ds.n_items == 40 and ds.max_len == 10 and ds.pad_id == 40
    assert (ds.noun, ds.nouns) == ("item", "items")  # the neutral default
    assert ds.catalogue.titles[:len(TRICKY)] == TRICKY  # metacharacters, non-ASCII, commas, quotes kept
    assert ds.catalogue.norm_titles[1] == "Le Café Noir"
    assert len(ds.test) == 6 and load_stats("tinyllara", data_dir)["dropped_empty_history"]["test"] == 1
    assert any("all padding" in n and "test 1" in n for n in ds.notes)
    assert int(ds.train.lens.min()) >= 1 and not bool((ds.train.seqs > 40).any())


def test_llara_folder_as_a_subfolder_of_the_llara_dir_with_nouns(llara, data_dir, monkeypatch):
    sums = write_sha256sums(llara)
    ds = load_dataset("tinyllara", data_dir=data_dir, llara_dir=llara.parent, hashes=sums, noun="track")
    assert (ds.name, ds.noun, ds.nouns) == ("tinyllara", "track", "tracks")
    text = prompts.expand("Name the {noun} among these {nouns}: <emb>", ("emb",), 1, "<s>", ds.noun, ds.nouns)
    assert text.startswith("Name the track among these tracks")
    monkeypatch.setenv("RECINTERP_LLARA_DIR", str(llara.parent))  # the environment variable works the same way
    assert load_dataset("tinyllara", data_dir=data_dir, noun="track").noun == "track"  # from the cache: no unpickling


def test_unverified_pickles_are_refused_and_the_error_says_how(llara, data_dir):
    with pytest.raises(ChecksumError, match=r"refusing to unpickle.*hashes=.*SHA256SUMS.*trust_unverified=True"):
        load_dataset(llara, data_dir=data_dir)
    assert not (data_dir / "processed" / "tinyllara" / "meta.json").exists()


def test_each_way_to_vouch_for_the_pickles(llara, data_dir, monkeypatch):
    sums = write_sha256sums(llara)
    mapping = {line.split()[1]: line.split()[0] for line in sums.read_text().splitlines()}
    assert load_dataset(llara, data_dir=data_dir, hashes=mapping, refresh=True).n_items == 40
    with pytest.warns(UserWarning, match="unpickling it anyway"):
        load_dataset(llara, data_dir=data_dir, trust_unverified=True, refresh=True)
    monkeypatch.setenv("RECINTERP_SHA256SUMS", str(sums))
    assert load_dataset(llara, data_dir=data_dir, refresh=True).n_items == 40


def test_a_vouched_hash_that_no_longer_matches_is_named(llara, data_dir):
    with pytest.raises(ChecksumError, match="the hash given for it is (ab){32}: the file changed"):
        load_dataset(llara, data_dir=data_dir, hashes={"Val_data.df": "ab" * 32, "train_data.df": "ab" * 32})


def test_trust_cannot_come_from_the_folder_itself(llara, data_dir):
    (llara / "dataset.json").write_text(json.dumps({"trust_unverified": True}))
    with pytest.raises(ValueError, match="not allowed key.*trust_unverified.*yours to pass"):
        load_dataset(llara, data_dir=data_dir)


def test_window_length_padding_and_item_count_are_read_from_the_files(tmp_path, data_dir):
    folder = make_llara_folder(tmp_path / "w5", n_items=30, window=5)
    for f in folder.glob("*.df"):  # pad with 999 instead of the item count
        df = pd.read_pickle(f)
        df["seq"] = [[999 if v == 30 else v for v in s] for s in df["seq"]]
        df.to_pickle(f)
    ds = _vouched(folder, data_dir)
    assert ds.max_len == 5 and ds.n_items == 30 and ds.train.seqs.shape[1] == 5
    assert int(ds.train.seqs.max()) == 30  # stored with the usual padding id
    assert any("padding id 999" in n for n in ds.notes)


def test_an_id_outside_the_catalogue_names_file_and_row(llara, data_dir):
    df = pd.read_pickle(llara / "Val_data.df")
    df.at[2, "next"] = 77
    df.to_pickle(llara / "Val_data.df")
    with pytest.raises(ValueError, match=r"Val_data.df row 2: item id 77 out of range 0..39.*not in the catalogue"):
        _vouched(llara, data_dir)


def test_an_id_without_a_title_names_file_and_row(llara, data_dir):
    lines = (llara / "id2name.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    used = int(pd.read_pickle(llara / "Test_data.df")["next"].iloc[0])
    (llara / "id2name.txt").write_text("".join(ln for ln in lines if not ln.startswith(f"{used}::")), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"train_data.df row \d+: item id {used} has no title"):
        _vouched(llara, data_dir)


def test_two_window_lengths_are_an_error(tmp_path, data_dir):
    folder = make_llara_folder(tmp_path / "mixed")
    df = pd.read_pickle(folder / "Test_data.df")
    df.at[3, "seq"] = df.at[3, "seq"][:9]
    df.to_pickle(folder / "Test_data.df")
    with pytest.raises(ValueError, match=r"different window lengths: 9 \(.*Test_data.df row 3\), 10"):
        _vouched(folder, data_dir)


def test_a_u_item_title_file_counts_ids_from_one(tmp_path, data_dir):
    folder = make_llara_folder(tmp_path / "uitem", title_file="u.item")
    ds = _vouched(folder, data_dir)
    assert ds.n_items == 40 and ds.catalogue.titles[2] == 'The "Quoted" One'


def test_missing_files_are_listed(tmp_path, data_dir):
    folder = make_llara_folder(tmp_path / "partial")
    (folder / "Val_data.df").unlink()
    (folder / "id2name.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing Val_data.df, id2name.txt or u.item"):
        _vouched(folder, data_dir)


def test_unknown_names_and_clashing_folders(tmp_path, data_dir):
    with pytest.raises(ValueError, match=r"unknown dataset 'lastfm'.*path of a folder of your own"):
        load_dataset("lastfm", data_dir=data_dir)
    with pytest.raises(FileNotFoundError, match="no such dataset folder"):
        load_dataset(tmp_path / "nowhere", data_dir=data_dir)
    clash = make_llara_folder(tmp_path / "x" / "movielens")
    with pytest.raises(ValueError, match="cannot be named 'movielens'"):
        _vouched(clash, data_dir)
    with pytest.raises(ValueError, match="apply to datasets of your own"):
        load_dataset("steam", data_dir=data_dir, noun="x")


def test_dataset_sources_maps_names_to_what_to_load():
    assert dataset_sources("movielens, /data/my-lastfm ,", ["steam"]) == {"movielens": "movielens",
                                                                          "my-lastfm": "/data/my-lastfm"}
    assert dataset_sources("", ["movielens", "steam"]) == {"movielens": "movielens", "steam": "steam"}
    with pytest.raises(ValueError, match="two datasets named 'x'"):
        dataset_sources("/a/x,/b/x")


# ---------------------------------------------------------------- interaction log

def _write_log(folder, rows, items=None, name="interactions.csv", sep=","):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["user", "item", "timestamp", "rating"]).to_csv(folder / name, index=False, sep=sep)
    items = items or [(f"i{i}", f"Title {i}, the \"{i}\"", "A|B") for i in range(8)]
    pd.DataFrame(items, columns=["item", "title", "genres"]).to_csv(folder / "items.csv", index=False)
    return folder


def test_a_log_by_hand(tmp_path, data_dir):
    rows = [("a", "i0", 10, 5), ("a", "i2", 30, 5), ("a", "i1", 20, 4),  # a: out of time order -> i0 i1 i2
            ("a", "i1", 20, 4),  # a duplicate row
            ("b", "i3", 1, 5), ("b", "i4", 2, 2), ("b", "i5", 3, 5), ("b", "i6", 4, 5),  # i4 below the threshold
            ("c", "i0", 5, 5), ("c", "i7", 6, 5), ("c", "i_none", 7, 5),  # i_none has no title
            ("d", "i2", 1, 5),  # one interaction
            ("e", "i5", 1, 3), ("e", "i6", 2, 3)]
    folder = _write_log(tmp_path / "shop", rows)
    ds = load_dataset(folder, data_dir=data_dir, min_rating=3, noun="product")
    st = load_stats("shop", data_dir)
    assert (st["duplicate_rows"], st["below_min_rating"], st["rows_on_untitled_items"], st["untitled_items"],
            st["users_with_one_interaction"], st["users_not_in_time_order"]) == (1, 1, 1, 1, 1, 1)
    assert st["users"] == 4 and st["interactions_kept"] == 10
    assert any("1 duplicate rows" in n and "1 users with one interaction" in n for n in ds.notes)
    # items in the items file's order, only those used: i0 i1 i2 i3 i5 i6 i7 -> 0..6
    assert ds.n_items == 7 and ds.catalogue.titles[4] == 'Title 5, the "5"' and ds.catalogue.genres[0] == ["A", "B"]
    seqs = {"a": [0, 1, 2], "b": [3, 4, 5], "c": [0, 6], "e": [4, 5]}
    held = {}
    for split in (ds.val, ds.test):
        assert len(split) == 1  # one user each, one row: the last item after the ones before it
        hist = split.seqs[0, : int(split.lens[0])].tolist()
        user = next(u for u, s in seqs.items() if s == hist + [int(split.next[0])])
        held[split is ds.test] = user
    test_user = seqs[held[True]]
    assert ds.extra["test_all"].next.tolist() == test_user[1:]  # every position of the test user
    train_users = [u for u in seqs if u not in held.values()]
    assert len(ds.train) == sum(len(seqs[u]) - 1 for u in train_users)
    assert ds.noun == "product" and ds.nouns == "products"


def test_a_log_from_the_synthetic_folder_tsv_and_dates(tmp_path, data_dir):
    ds = load_dataset(make_log_folder(tmp_path / "tinylog"), data_dir=data_dir, min_rating=3)
    assert len(ds.val) == len(ds.test) == 6 and ds.n_items == 40 and ds.catalogue.titles[9] == titles(40)[9]
    assert int(ds.train.lens.max()) == 10 and len(ds.extra["test_all"]) > len(ds.test)
    rows = [("u1", "i0", "2024-01-02", 1), ("u1", "i1", "2024-01-01", 1), ("u2", "i1", "2024-01-01", 1),
            ("u2", "i2", "2024-01-03", 1), ("u3", "i3", "2024-01-01", 1), ("u3", "i0", "2024-02-01", 1)]
    folder = _write_log(tmp_path / "dated", rows, name="interactions.tsv", sep="\t")
    ds = load_dataset(folder, data_dir=data_dir)  # no threshold: every rating kept
    assert load_stats("dated", data_dir)["users_not_in_time_order"] == 1 and ds.n_items == 4


def test_a_parquet_log(tmp_path, data_dir):
    pytest.importorskip("pyarrow")
    folder = tmp_path / "pq"
    folder.mkdir()
    rows = [(u, f"i{(u + k) % 5}", k, 5) for u in range(4) for k in range(3)]
    pd.DataFrame(rows, columns=["user", "item", "timestamp", "rating"]).to_parquet(folder / "interactions.parquet")
    pd.DataFrame({"item": [f"i{i}" for i in range(5)], "title": list("ABCDE")}).to_parquet(folder / "items.parquet")
    assert load_dataset(folder, data_dir=data_dir).n_items == 5


@pytest.mark.parametrize("change, message", [
    (lambda f: (f / "interactions.csv").write_text("who,what,when\nu,i0,1\n"), r"no user column .*columns: \['who'"),
    (lambda f: (f / "interactions.csv").write_text("user,item,timestamp\nu,i0,1\nu,i1,soon\n"),
     r"interactions.csv line 3 \(data row 1\): timestamp 'soon' is not a number or a date"),
    (lambda f: (f / "interactions.csv").write_text("user,item,timestamp\nu,i0,1\nu,i1,2\nv,i0,1\nv,i1,2\n"),
     "2 users with two or more interactions; need at least 3"),
    (lambda f: (f / "items.csv").unlink(), "no items file"),
])
def test_bad_logs_are_clear_errors(tmp_path, data_dir, change, message):
    folder = _write_log(tmp_path / "bad", [("u", "i0", 1, 5), ("u", "i1", 2, 5)])
    change(folder)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_dataset(folder, data_dir=data_dir)


def test_a_threshold_needs_a_rating_column(tmp_path, data_dir):
    folder = _write_log(tmp_path / "norating", [("u", "i0", 1, 5)])
    (folder / "interactions.csv").write_text("user,item,timestamp\nu,i0,1\n")
    with pytest.raises(ValueError, match="min_rating=3 needs a rating column"):
        load_dataset(folder, data_dir=data_dir, min_rating=3)


def test_dataset_json_sets_options(tmp_path, data_dir):
    folder = make_log_folder(tmp_path / "withcfg")
    (folder / "dataset.json").write_text(json.dumps({"noun": "song", "min_rating": 4}))
    ds = load_dataset(folder, data_dir=data_dir)
    assert (ds.name, ds.noun) == ("withcfg", "song") and load_stats("withcfg", data_dir)["min_rating"] == 4
    assert load_dataset(folder, data_dir=data_dir, noun="tune").noun == "tune"  # an argument beats the file


# ---------------------------------------------------------------- the verified cache

def _tiny_ds(name="steam"):
    s = Split(torch.tensor([[0, 1] + [3] * 8]), torch.tensor([2]), torch.tensor([2]))
    return RecDataset(name, 3, s, s, s, Catalogue(["a", "b", "c"], ["a", "b", "c"], [[], [], []], [[], [], []]))


def test_a_flipped_byte_in_the_cache_is_caught_naming_the_file(tmp_path):
    _write_cache(tmp_path, _tiny_ds(), {})
    meta = json.loads((tmp_path / "meta.json").read_text())
    blob = bytearray((tmp_path / "splits.safetensors").read_bytes())
    blob[-3] ^= 0x01  # one bit of one item id
    (tmp_path / "splits.safetensors").write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match=r"splits.safetensors does not match the SHA-256 recorded in .*SHA256SUMS.*refresh=True"):
        assert _read_cache(tmp_path, meta) is None  # the caller rebuilds


def test_a_damaged_cache_is_rebuilt_saying_so(tmp_path, data_dir):
    folder = make_log_folder(tmp_path / "tinylog")
    first = load_dataset(folder, data_dir=data_dir)
    cache = data_dir / "processed" / "tinylog"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(load_dataset(folder, data_dir=data_dir).train.seqs, first.train.seqs)  # clean: no warning
    text = (cache / "catalogue.json").read_text()
    (cache / "catalogue.json").write_text(text[: len(text) // 2])  # truncated
    with pytest.warns(UserWarning, match="catalogue.json .*rebuilding"):
        again = load_dataset(folder, data_dir=data_dir)
    assert again.catalogue.titles == first.catalogue.titles
    (cache / "meta.json").write_text("{ not json")
    with pytest.warns(UserWarning, match="meta.json is damaged"):
        load_dataset(folder, data_dir=data_dir)


def test_a_changed_source_rebuilds_and_a_name_finds_the_built_dataset(tmp_path, data_dir, capsys):
    folder = make_log_folder(tmp_path / "tinylog")
    load_dataset(folder, data_dir=data_dir, noun="song")
    assert load_dataset("tinylog", data_dir=data_dir).noun == "song"  # by name: the folder and options recorded
    with open(folder / "interactions.csv", "a") as f:
        f.write("newuser,i1,1,5\nnewuser,i2,2,5\n")
    ds = load_dataset(folder, data_dir=data_dir, noun="song")
    assert "changed since the cache was built: rebuilding" in capsys.readouterr().out
    assert load_stats("tinylog", data_dir)["users"] == 61 and ds.noun == "song"


def test_a_datasets_nouns_travel_with_its_cases_whatever_was_loaded_before(tmp_path, data_dir):
    """load_dataset changes no global: a prompt's wording comes from the dataset its cases were built from,
    the same whichever datasets were loaded before (here one folder loaded as songs and as tunes)."""
    from types import SimpleNamespace

    from recinterp.models import build_encoder
    from recinterp.tasks import build_cases

    class Tok:  # no chat template: the prompt is the plain text
        chat_template = None

    folder, llm = make_log_folder(tmp_path / "tinylog"), SimpleNamespace(tokenizer=Tok())

    def wording(order):
        cases = {}
        for noun in order:  # every dataset loaded first, every prompt rendered after
            ds = load_dataset(folder, data_dir=data_dir, noun=noun)
            cases[noun] = build_cases("item", build_encoder("sasrec", ds.n_items, d=8, max_len=ds.max_len), ds, "train")
        return {noun: (nouns_for(c), make_examples(c, [0], ds.catalogue.norm_titles, llm, 1, with_targets=False)[0].prompt)
                for noun, c in cases.items()}

    first, second = wording(["song", "tune"]), wording(["tune", "song"])
    assert first == second
    assert first["song"][0] == ("song", "songs") and first["tune"][0] == ("tune", "tunes")
    assert " song " in first["song"][1] and " tune " in first["tune"][1], first


def test_a_name_whose_source_is_gone_uses_a_sound_cache_or_says_what_to_do(tmp_path, data_dir):
    import shutil

    folder = make_log_folder(tmp_path / "gone")
    load_dataset(folder, data_dir=data_dir)
    shutil.rmtree(folder)
    assert load_dataset("gone", data_dir=data_dir).n_items == 40
    (data_dir / "processed" / "gone" / "splits.safetensors").write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(CacheError, match="source folder .* is gone"):
        load_dataset("gone", data_dir=data_dir)
