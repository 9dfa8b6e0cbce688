import math

import pytest

from conftest import run_notebook

pytestmark = pytest.mark.notebook


def test_notebook_05_instantiation(smoke_results):
    ckpt = smoke_results / "checkpoints"
    if not (ckpt / "movielens" / "dreamrec").exists():
        run_notebook("02_recommenders", smoke_results)
    if not (ckpt / "adapters" / "movielens" / "sasrec" / "residual").exists():
        run_notebook("04_sequence_residual", smoke_results)
    m = run_notebook("05_ideal_item_instantiation", smoke_results)
    assert set(m["datasets"]) == {"movielens", "steam"}
    for name, d in m["datasets"].items():
        assert d["n_cases"] > 0
        assert set(d["sources"]) == {"dreamrec", "sasrec", "random"}
        for src, s in d["sources"].items():
            nov = s["novelty"]
            assert nov["n"] == 0 or 0.0 <= nov["mean"] <= 1.0
            acc = s["accuracy"]["named_is_next"]
            assert 0.0 <= acc["mean"] <= 1.0 and acc["n"] == d["n_cases"]
            assert len(s["examples"]) > 0
        for src in ("sasrec", "random"):
            f = s = d["sources"][src]["fidelity"]
            assert 0.0 <= f["hit"]["mean"] <= 1.0 and 0.0 <= f["shuffled"]["mean"] <= 1.0
        # every route of notebook 04 is measured on the same histories; the headline one feeds the sections after
        assert set(d["routes"]) == {"appended", "appended_aligned", "direct"}
        assert d["headline_route"] == "direct"  # the smoke preset's headline is the token-space route
        assert d["routes"]["direct"]["adapter"]["kind"] == "mlp2x_gelu"
        assert d["routes"]["appended_aligned"]["adapter"]["kind"] == "structured"
        for route in d["routes"].values():
            for src in ("sasrec", "random"):
                f = route["sources"][src]["fidelity"]
                assert f["hit"]["n"] == d["n_cases"] and 0.0 <= f["hit"]["mean"] <= 1.0
            assert route["sources"]["dreamrec"]["fidelity"] is None  # DreamRec's item has no true title
        assert d["routes"]["direct"]["sources"]["sasrec"] == {k: d["sources"]["sasrec"][k] for k in ("novelty", "fidelity")} | \
            {"examples": d["sources"]["sasrec"]["examples"]}
        assert set(d["judged"]) == {"dreamrec_vs_sasrec", "dreamrec_vs_random", "sasrec_vs_random"}
        for res in d["judged"].values():
            rates = res["rates"]
            total = sum(rates[k]["mean"] for k in ("A", "B", "tie", "none") if not math.isnan(rates[k]["mean"]))
            assert res["n_cases"] == 0 or abs(total - 1.0) < 1e-9
            assert res["failures"]["n_none"] == res["counts"]["none"]  # what kept verdicts away is recorded
    assert m["judge"]
