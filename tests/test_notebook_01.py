import pytest

from conftest import run_notebook
from notebook_lesson import check_summary_and_exercises

pytestmark = pytest.mark.notebook


def test_notebook_01_real_data(smoke_results):
    m = run_notebook("01_data_prep", smoke_results)
    ml, st = m["datasets"]["movielens"], m["datasets"]["steam"]
    assert ml["users"] == 943 and ml["items"] == 1682 and ml["items_in_catalogue"] == 1682
    assert ml["rows"]["test"] == 95 and ml["rows"]["val"] == 94
    assert ml["train_users"] == 754 and ml["test_users"] == 95 and ml["val_users"] == 94
    # every official train row we know is reproduced, up to the order of timestamp ties
    cmp = ml["train_rebuild_vs_official"]
    assert cmp["official_rows"] == 100 and cmp["different"] == 0
    assert ml["rows"]["test_all"] > 5000
    assert st["official_rows"]["test"] == 1194 and st["items"] == 3581 and st["items_in_catalogue"] == 3581
    assert st["rows"]["test"] == 1194 - st["dropped_empty_history"]["test"]
    assert st["meta_matched_items"] > 3000
    assert 0 < ml["top10pct_item_share"] < 1
    # it teaches: a Summary of this run's numbers (in metrics.json) and Exercises (issue 18)
    check_summary_and_exercises(smoke_results, "01_data_prep", m, notebook="data")
