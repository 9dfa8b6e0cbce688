"""The DreamRec grid's bookkeeping: a result is reused only for the same settings; the table and figure."""
import json
from dataclasses import asdict

import pytest

from recinterp.dreamrec_grid import _done, grid_rows, plot_grid
from recinterp.models.benchmark import DREAMREC_VARIANTS, dreamrec_fit_config


def result(hr=0.1):
    ci = {"mean": hr, "lo": hr - 0.01, "hi": hr + 0.01}
    diff = {"diff": -0.01, "lo": -0.02, "hi": 0.0, "above": False}
    return {"test": {"HR@10": hr, "NDCG@10": hr / 2, "n": 100}, "test_ci": {"HR@10": ci, "NDCG@10": ci},
            "vs": {"HR@10 - sasrec": {"test": diff}, "HR@10 - popularity": {"test": diff}},
            "best_epoch": 2, "epochs": 4, "best_val_NDCG@10": 0.05, "objective": "softmax", "item_source": "frozen",
            "w": 0.0, "diagnostics": {"item_norm_mean": 7.5},
            "curve": [{"epoch": e, "val_NDCG@10": 0.01 * e, "item_norm_mean": 8 - e} for e in (1, 2, 3, 4)]}


def test_a_result_is_reused_only_for_its_own_training_settings(tmp_path):
    f = tmp_path / "frozen_softmax.json"
    cfg = dreamrec_fit_config("frozen_softmax", {"epochs": 5, "patience": 2})
    assert not _done(f, cfg)
    f.write_text(json.dumps({**result(), "train_config": asdict(cfg)}))
    assert _done(f, cfg)
    assert not _done(f, dreamrec_fit_config("frozen_softmax", {"epochs": 6, "patience": 2}))
    # each variant's own training settings win over the preset's (the authors' lr for their set-up)
    assert dreamrec_fit_config("learned", {"lr": 1e-3}).lr == DREAMREC_VARIANTS["learned"][1]["lr"]


def test_the_table_and_the_figure(tmp_path):
    rows = grid_rows({("movielens", "frozen_softmax"): result(0.12), ("movielens", "learned"): result(0.001)})
    assert [(r["variant"], r["split"], r["n"]) for r in rows] == [("frozen_softmax", "test", 100), ("learned", "test", 100)]
    assert rows[0]["HR@10 - sasrec"] == "-0.010 [-0.020, +0.000]" and rows[0]["best epoch"] == "2/4"
    fig = plot_grid({("movielens", "frozen_softmax"): result(), ("steam", "learned"): result()})
    assert len(fig.axes) == 4
    with pytest.raises(KeyError):
        grid_rows({("movielens", "x"): {"test": {"n": 1}, "test_ci": {}}})
