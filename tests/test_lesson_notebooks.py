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


# ---------------------------------------------------------------------------------------------------------
# notebook 02
# ---------------------------------------------------------------------------------------------------------
from recinterp.lesson import recommenders as L02  # noqa: E402


def block(hr, lo, hi, n=100):
    return {"HR@10": hr, "HR@20": hr, "NDCG@10": hr / 2, "NDCG@20": hr / 2, "n": n}, \
        {"HR@10": {"mean": hr, "lo": lo, "hi": hi, "n": n}, "NDCG@10": {"mean": hr / 2, "lo": lo / 2, "hi": hi / 2, "n": n}}


def m02():
    pop, pop_ci = block(0.1, 0.05, 0.15)
    sas, sas_ci = block(0.3, 0.2, 0.4)
    gru, gru_ci = block(0.12, 0.06, 0.18)
    dr, dr_ci = block(0.02, 0.0, 0.05)
    vs = lambda d, lo, hi: {"test": {"diff": d, "lo": lo, "hi": hi, "above": lo > 0}}  # noqa: E731
    return {"preset": "x", "reload_bitwise": {"ml/sasrec": True, "ml/dreamrec": False},
            "datasets": {"ml": {"n_items": 100, "n_test": 100, "models": {
                "popularity": {"test": pop, "test_ci": pop_ci},
                "sasrec": {"test": sas, "test_ci": sas_ci, "vs_popularity_HR@10": vs(0.2, 0.1, 0.3),
                           "epochs": 5, "best_epoch": 5},
                "gru4rec": {"test": gru, "test_ci": gru_ci, "vs_popularity_HR@10": vs(0.02, -0.03, 0.07),
                            "epochs": 5, "best_epoch": 3},
                "dreamrec": {"test": dr, "test_ci": dr_ci, "vs_popularity_HR@10": vs(-0.08, -0.12, -0.04),
                             "w_best": {"test": {"metric": "NDCG@10", "best": 0, "default": 2.0, "best_mean": 0.02,
                                                 "default_mean": 0.01, "n": 100,
                                                 "diff": {"mean": 0.01, "lo": 0.004, "hi": 0.016}}}}}}}}


def test_verdicts_read_the_paired_interval():
    assert L02.verdicts(m02()["datasets"]) == {("ml", "sasrec", "test"): True, ("ml", "gru4rec", "test"): None,
                                               ("ml", "dreamrec", "test"): False}
    assert L02.diff_ci({"diff": 0.2, "lo": 0.1, "hi": 0.3, "above": True}) == {"mean": 0.2, "lo": 0.1, "hi": 0.3}
    with pytest.raises(ValueError, match="'diff'"):
        L02.diff_ci({"mean": 0.2})
    with pytest.raises(ValueError, match="notebook 02"):
        L02.verdicts({"ml": {"n_items": 3}})


def test_readings_of_notebook_02_quote_this_runs_values():
    d = m02()["datasets"]
    text = L02.read_popularity(d)
    assert "HR@10 0.100 [0.050, 0.150]" in text and "1.0 times chance (0.1000)" in text
    text = L02.read_results(d)
    assert "clearly above: sasrec" in text and "not clearly above: gru4rec" in text and "clearly below: dreamrec" in text
    text = L02.read_curves(d)
    assert "ml/sasrec (best epoch 5 of 5)" in text.split("Best before")[0] and "ml/gru4rec (best epoch 3 of 5)" in text
    assert "w = 0 gives NDCG@10 0.0200 against 0.0100 at the default w = 2" in L02.read_w_grid(d)
    assert "better than the default" in L02.read_w_grid(d)
    assert "1 of 2 checkpoints" in L02.read_reload({"a": True, "b": False}) and "Not these: b" in \
        L02.read_reload({"a": True, "b": False})
    rows = [{"dataset": "ml", "train rows": 1500, "val rows": 94, "val (expanded)": 938}]
    assert "ml trains on 1,500 rows and early-stops on 938 validation targets (from 94" in L02.read_data(rows)
    with pytest.raises(ValueError, match="one row per dataset"):
        L02.read_data([])
    assert "R² 0.25 on 10 held-out items" in L02.read_bridges({"ml: a -> b": {"r2_heldout": 0.25, "n_heldout": 10}})
    q = {"sasrec/test": {"HR@10_diff": d["ml"]["models"]["sasrec"]["vs_popularity_HR@10"]["test"],
                         "NDCG@10_diff": {"diff": 0.1, "lo": 0.05, "hi": 0.15}},
         "gru4rec/test": {"HR@10_diff": d["ml"]["models"]["gru4rec"]["vs_popularity_HR@10"]["test"],
                          "NDCG@10_diff": {"diff": 0.1, "lo": 0.05, "hi": 0.15}}}
    assert "1 of 2 encoder/split pairs" in L02.read_quality_bar(q)
    assert "not among" in L02.read_quality_bar({})
    with pytest.raises(ValueError, match="no popularity entry"):
        L02.read_popularity({"ml": {"models": {"sasrec": {}}}})


def test_summary_of_notebook_02_is_honest_about_popularity_and_the_guidance_weight():
    s = L02.summary(m02())
    assert s.notebook == "recommenders" and len(s.points) == 4
    enc, dr, w, reload = s.points
    assert "SASRec clearly above (+0.200 [+0.100, +0.300])" in enc and "GRU4Rec not clearly above" in enc
    assert "DreamRec clearly below (-0.080 [-0.120, -0.040])" in dr and "(100 rows)" in dr
    assert "w = 0" in w and "+0.0100 [+0.0040, +0.0160]" in w
    assert reload.startswith("1 of 2 checkpoints")
    with pytest.raises(ValueError, match="notebook 02"):
        L02.summary({"preset": "x"})


# ---------------------------------------------------------------------------------------------------------
# notebook 06
# ---------------------------------------------------------------------------------------------------------
from recinterp.lesson import figures as L06  # noqa: E402


def S(mean, lo, hi, n=10):
    return {"mean": mean, "lo": lo, "hi": hi, "n": n}


def run(task, dataset, gen_diff, probe_diff, role="main", encoder="sasrec"):
    """A run block of report's layout with one generation reading and one probe reading (5 candidates)."""
    conds = {"model": {"mean": S(0.5, 0.4, 0.6)}, "shuffled": {"mean": S(0.2, 0.1, 0.3)}, "zero": {"mean": S(0.1, 0, 0.2)}}
    return {"task": task, "dataset": dataset, "encoder": encoder, "route": "aligned", "role": role, "extra": {},
            "generation": {"n": 10, "metric": "found", "conditions": conds,
                           "diff_vs": {"shuffled": gen_diff, "zero": gen_diff}},
            "samplers": ["random"],
            "probe": {"random": {"n": 10, "n_candidates": 5,
                                 "conditions": {"model": {"Hit@1": S(0.4, 0.3, 0.5)}, "shuffled": {"Hit@1": S(0.2, 0.1, 0.3)}},
                                 "diff_vs": {"shuffled": {"Hit@1": probe_diff}, "zero": {"Hit@1": probe_diff}}}}}


def test_recommender_verdicts_and_their_reading():
    v = L06.recommender_verdicts(m02())
    assert v == {"readings": 3, "clearly_above": ["ml/sasrec/test"], "clearly_below": ["ml/dreamrec/test"]}
    assert "1 of 3 model/split readings are clearly above popularity (ml/sasrec/test)" in L06.read_recommenders(m02())
    with pytest.raises(ValueError, match="notebook 02"):
        L06.recommender_verdicts({})


def test_read_task_counts_the_readings_that_clear_both_controls():
    up, flat = {"mean": 0.3, "lo": 0.1, "hi": 0.5}, {"mean": 0.0, "lo": -0.1, "hi": 0.1}
    runs = [run("recovery", "ml", up, up), run("recovery", "st", up, flat), run("residual", "ml", flat, flat),
            run("recovery", "ml", flat, flat, role="comparison", encoder="caser")]
    text = L06.read_task(runs, "recovery")
    assert "3 of 4 headline readings clear both" in text and "among 5 candidates" in text
    assert text.count("\n- ") == 4 and "above the shuffled control by +0.300 [+0.100, +0.500]" in text
    assert "0 of 2" in L06.read_task(runs, "residual")
    assert "No headline run" in L06.read_task(runs, "instantiation")


def test_residual_encoder_order_and_instantiation_reading():
    rg = pd.DataFrame([{"dataset": "ml", "encoder": e, "condition": c, "mean": m, "lo": m - 0.1, "hi": m + 0.1, "n": 10}
                       for e, m in (("sasrec", 0.5), ("gru4rec", 0.2), ("caser", 0.3)) for c in ("model", "zero")])
    assert "ml: GRU4Rec 0.200 [0.100, 0.300] ≤ Caser 0.300 [0.200, 0.400] ≤ SASRec 0.500" in L06.read_residual_encoders(rg)
    assert "No residual run" in L06.read_residual_encoders(rg.iloc[:0])
    nov = pd.DataFrame([{"dataset": "ml", "source": "dreamrec", "measure": "not in catalogue", "mean": 0.25, "lo": 0.1,
                         "hi": 0.4, "n": 20},
                        {"dataset": "ml", "source": "sasrec", "measure": "true title named", "mean": 0.5, "lo": 0.3,
                         "hi": 0.7, "n": 20}])
    judged = pd.DataFrame([{"dataset": "ml", "judge": "recommender:gru4rec", "pair": "dreamrec − sasrec", "mean": 0.2,
                            "lo": 0.1, "hi": 0.3, "n": 4, "valid": True},
                           {"dataset": "ml", "judge": "local_llm", "pair": "dreamrec − sasrec", "mean": 0.0, "lo": 0.0,
                            "hi": 0.0, "n": 4, "valid": False}])
    text = L06.read_instantiation(nov, judged)
    assert "ml dreamrec 0.250 [0.100, 0.400] (n = 20)" in text and "ml sasrec 0.500 [0.300, 0.700]" in text
    assert "validity row" in text and ": recommender:gru4rec; cannot judge (not drawn): local_llm." in text
    assert "No instantiation run" in L06.read_instantiation(nov.iloc[:0], judged)


def test_summary_of_notebook_06_states_every_headline_reading():
    up, flat = {"mean": 0.3, "lo": 0.1, "hi": 0.5}, {"mean": 0.0, "lo": -0.1, "hi": 0.1}
    from recinterp import report

    m = {"figures": {"a": [], "b": []}, "inputs": ["recommenders", "recovery"],
         "headline": report.headline([run("recovery", "ml", up, flat)]),
         "recommenders_vs_popularity": L06.recommender_verdicts(m02())}
    s = L06.summary(m)
    assert s.notebook == "figures" and len(s.points) == 3
    assert s.points[0].startswith("2 figures drawn from the metrics of recommenders, recovery")
    assert "1 of 3 model/split readings" in s.points[1]
    assert "1 of 2 headline readings clear their controls" in s.points[2]
    assert "vs shuffled +0.300 [+0.100, +0.500], above 0" in s.points[2] and "covers 0" in s.points[2]
    with pytest.raises(ValueError, match="notebook 06"):
        L06.summary({"headline": []})
