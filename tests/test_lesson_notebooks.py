"""The generated prose of notebooks 01, 02 and 06 (recinterp.lesson.data / .recommenders / .figures):
hand-computed values from fixture dicts made here, and bad input."""
import math

import pandas as pd
import pytest

from recinterp.lesson import data as L01


# ---------------------------------------------------------------------------------------------------------
# notebook 01
# ---------------------------------------------------------------------------------------------------------
def stats01():
    return {"ml": {"users": 10, "items": 8, "rows": {"train": 40, "val": 4, "test": 25, "test_all": 100},
                   "mean_len": {"train": 9.0}, "dropped_empty_history": {"train": 3, "test": 0},
                   "train_rebuild_vs_official": {"official_rows": 10, "exact": 4, "tie_reordered": 6, "different": 0}},
            "st": {"n_items": 5, "rows": {"train": 7, "test": 4}}}


def test_ci_half_width_bound_is_the_widest_95_interval():
    assert L01.ci_half_width_bound(25) == pytest.approx(1.96 * 0.5 / 5)
    assert L01.ci_half_width_bound(1) == pytest.approx(0.98)
    with pytest.raises(ValueError, match="at least one row"):
        L01.ci_half_width_bound(0)


def test_read_splits_quotes_each_evaluation_split():
    text = L01.read_splits(stats01())
    assert "25 rows" in text and "±0.196" in text  # 0.98 / sqrt(25)
    assert "100 rows" in text and "±0.098" in text
    assert "4 rows" in text and "±0.490" in text
    assert "40 rows" not in text  # train is not an evaluation split
    with pytest.raises(ValueError, match="notebook 01"):
        L01.read_splits({})
    with pytest.raises(ValueError, match="no 'rows'"):
        L01.read_splits({"ml": {"users": 3}})


def test_read_stats_names_users_items_and_dropped_rows():
    text = L01.read_stats(stats01())
    assert "ml: 10 users and 8 items" in text and "train 3" in text and "test 0" not in text
    assert "st: 5 items" in text


def test_full_window_shares_and_read_lengths():
    lengths = pd.DataFrame({"dataset": ["a"] * 4 + ["b"] * 2, "split": ["train"] * 4 + ["test"] * 2,
                            "length": [10, 10, 3, 10, 5, 4]})
    assert L01.full_window_shares(lengths, 10) == {("a", "train"): 0.75, ("b", "test"): 0.0}
    assert L01.full_window_shares(lengths, {"a": 10, "b": 5}) == {("a", "train"): 0.75, ("b", "test"): 0.5}
    assert "a train 75%" in L01.read_lengths(lengths, 10)
    with pytest.raises(ValueError, match="no window length"):
        L01.full_window_shares(lengths, {"a": 10})
    with pytest.raises(ValueError, match="columns"):
        L01.full_window_shares(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="empty"):
        L01.full_window_shares(lengths.iloc[:0])


def test_top_share_and_long_tail():
    counts = [50, 20, 10, 5, 5, 4, 3, 2, 1, 0]  # total 100
    assert L01.top_share(counts, 0.1) == pytest.approx(0.5)
    assert L01.top_share(counts, 0.2) == pytest.approx(0.7)
    assert L01.top_share(counts[:5], 0.1) == pytest.approx(50 / 90)  # at least one item
    text = L01.read_long_tail({"ml": counts})
    assert "50%" in text and "1 of 10" in text
    with pytest.raises(ValueError, match="sorted"):
        L01.top_share([1, 5, 2])
    with pytest.raises(ValueError, match="positive total"):
        L01.top_share([0, 0])
    with pytest.raises(ValueError, match=r"frac"):
        L01.top_share(counts, 0)
    with pytest.raises(ValueError, match="popularity"):
        L01.read_long_tail({})


def test_read_rebuild_three_ways():
    st = stats01()
    assert "4 are reproduced exactly and 6 up to ties" in L01.read_rebuild({"movielens": st["ml"]})
    st["ml"]["train_rebuild_vs_official"]["different"] = 2
    assert "2 of 10" in L01.read_rebuild({"movielens": st["ml"]})
    assert "not among" in L01.read_rebuild({"steam": {}})
    assert "not at hand" in L01.read_rebuild({"movielens": {"rows": {}}})
    with pytest.raises(ValueError, match="'exact'"):
        L01.read_rebuild({"movielens": {"train_rebuild_vs_official": {"official_rows": 3}}})


def test_summary_of_notebook_01_states_each_dataset():
    m = {"preset": "x", "datasets": {**stats01()}}
    m["datasets"]["ml"]["top10pct_item_share"] = 0.47
    s = L01.summary(m)
    assert s.notebook == "data" and len(s.points) == 6
    assert s.points[0] == "ml: 10 users, 8 items; rows per split: train 40, val 4, test 25, test_all 100."
    assert "47%" in s.points[1] and "±0.196" in s.points[2] and "10 of 10" in s.points[3]
    assert s.points[4] == "st: 5 items; rows per split: train 7, test 4."
    assert s.record(m)["summary"]["points"] == s.points
    for bad in ({}, {"datasets": {}}, [1]):
        with pytest.raises(ValueError, match="notebook 01"):
            L01.summary(bad)
