"""Notebook 02 (recommenders + DreamRec) in the smoke preset: metrics.json and checkpoints."""
import math

import pytest

from conftest import run_notebook
from notebook_lesson import check_summary_and_exercises
from recinterp.config import load_preset

pytestmark = pytest.mark.notebook

METRICS = ("HR@10", "HR@20", "NDCG@10", "NDCG@20")


def _check_block(block, n_expected=None):
    for k in METRICS:
        assert k in block and 0.0 <= block[k] <= 1.0 and not math.isnan(block[k]), (k, block)
    assert block["HR@20"] >= block["HR@10"] and block["NDCG@20"] >= block["NDCG@10"]
    if n_expected is not None:
        assert block["n"] == n_expected


def test_notebook_02_smoke(smoke_results):
    m = run_notebook("02_recommenders", smoke_results)
    cfg = load_preset("smoke", "recommenders")
    variants = [f"dreamrec_{v}" for v in cfg["dreamrec"]["variants"]]
    trained = [*cfg["encoders"], "dreamrec", *variants]
    assert set(m["datasets"]) == {"movielens", "steam"}
    for dname, d in m["datasets"].items():
        splits = ["test", "test_all"] if dname == "movielens" else ["test"]
        assert set(d["models"]) == {"popularity", *trained}
        for mname, entry in d["models"].items():
            for s in splits:
                _check_block(entry[s], d[f"n_{s}"])
                assert entry[f"{s}_ci"]["HR@10"]["lo"] <= entry[s]["HR@10"] <= entry[f"{s}_ci"]["HR@10"]["hi"]
            if mname == "popularity":
                continue
            assert entry["epochs"] >= 1 and entry["seconds"] > 0
            assert entry["last_loss"] < entry["first_loss"], f"{dname}/{mname}: loss did not fall"
            if mname.startswith("dreamrec"):
                assert set(entry["w_grid"]) == {str(w) for w in cfg["dreamrec"]["w_grid"]}
                for per_split in entry["w_grid"].values():
                    for s in splits:
                        _check_block(per_split[s])
                for s in splits:  # the best guidance weight beside the default, paired on the same rows
                    b = entry["w_best"][s]
                    assert b["default"] == entry["w"] and b["n"] == d[f"n_{s}"]  # the variant's own w
                    assert b["best_mean"] >= b["default_mean"]
                    assert b["best_mean"] == entry["w_grid"][str(b["best"])][s][b["metric"]]
            if mname.startswith("dreamrec"):  # every DreamRec beside SASRec on the same rows
                assert set(entry["vs_sasrec_HR@10"]) == set(splits)
        # the default DreamRec is the frozen variant with the best validation score, its ideal item in SASRec's space
        dflt = d["models"]["dreamrec"]
        assert dflt["chosen"] in variants and dflt["item_source"] == "frozen"
        assert dflt["best_val_NDCG@10"] == max(dflt["chosen_from"].values())
        assert d["n_train"] <= cfg["max_train_rows"]
    assert m["datasets"]["movielens"]["n_test"] == 95 and m["datasets"]["movielens"]["n_test_all"] > 5000
    assert m["datasets"]["steam"]["n_test"] > 1000
    assert m["reload_bitwise"] and all(m["reload_bitwise"].values())
    assert all(-1.0 <= b["r2_heldout"] <= 1.0 for b in m["bridges"].values())

    # the collapse diagnostic: every DreamRec epoch records its mean item-embedding norm
    import pandas as pd
    hist = pd.read_csv(smoke_results / "02_recommenders" / "learning_curves.csv")
    dr_rows = hist[hist["model"].str.startswith("dreamrec")]
    assert len(dr_rows) and (dr_rows["item_norm_mean"] > 0).all()

    # the checkpoints that notebooks 03-05 load
    from recinterp.models import load_checkpoint
    for dname, n_items in (("movielens", 1682), ("steam", 3581)):
        for name in trained:
            model = load_checkpoint(smoke_results / "checkpoints", dname, name)
            assert model.n_items == n_items and not model.training
            assert model.checkpoint_info["metrics"]["test"]["n"] == m["datasets"][dname]["n_test"]

    # it teaches: a Summary of this run's numbers (in metrics.json) and Exercises (issue 18)
    check_summary_and_exercises(smoke_results, "02_recommenders", m, notebook="recommenders")
