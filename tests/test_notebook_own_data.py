"""The whole chain, notebooks 01 -> 06, on datasets of one's own given by path (issue 10).

One synthetic LLaRA-format folder (pickles vouched for by a SHA256SUMS file named in
RECINTERP_SHA256SUMS) and one synthetic interaction log (nouns from its dataset.json),
both passed through the notebooks' ``datasets`` parameter, as ``make reproduce
PARAMS="datasets=..."`` does.  The smoke preset, cut down further (one encoder, one
adapter, a few cases), and a tiny random Llama saved to a folder and passed as the ``llm``
parameter (a local path, as a user's own model would be): this test is about the data
reaching every notebook, and the real SmolLM2 costs minutes per notebook here.
"""
import json
import shutil

import pytest

from conftest import REPO
from recinterp.config import load_preset
from recinterp.llm import tiny_llm
from recinterp.reproduce import notebooks, run_notebook
from synthetic_data import make_llara_folder, make_log_folder, write_sha256sums

pytestmark = pytest.mark.notebook

NAMES = ("test_own_llara", "test_own_log")


def tiny_preset(path):
    cfg = load_preset("smoke")
    rec = cfg["recommenders"]
    rec["encoders"] = ["sasrec"]
    rec["dreamrec"].update(variants=["frozen"], w_grid=[2])
    cfg["recovery"].update(encoders=["sasrec"], adapters=cfg["recovery"]["adapters"][:1], variant_datasets=[],
                           max_train_cases=16, readout={"epochs": 1})
    cfg["recovery"]["eval"].update(n_cases=3, n_distractors=2, samplers=["random"], max_new_tokens=8)
    cfg["residual"].update(encoders=["sasrec"], max_train_cases=16, readout={"epochs": 1})
    cfg["residual"]["eval"].update(n_cases=3, n_distractors=2, max_new_tokens=6)
    cfg["instantiation"].update(n_cases=3, judge_cases=2, max_new_tokens=6)
    path.write_text(json.dumps(cfg))
    return path


def test_notebooks_01_to_06_on_data_of_ones_own(tmp_path, monkeypatch):
    llara = make_llara_folder(tmp_path / "src" / NAMES[0])
    log = make_log_folder(tmp_path / "src" / NAMES[1])
    (log / "dataset.json").write_text(json.dumps({"noun": "track", "min_rating": 3}))
    monkeypatch.setenv("RECINTERP_SHA256SUMS", str(write_sha256sums(llara)))  # the kernels inherit it
    preset, results = str(tiny_preset(tmp_path / "tiny.json")), tmp_path / "results"
    llm = tiny_llm(hidden=64)
    llm.model.save_pretrained(tmp_path / "llm")
    llm.tokenizer.save_pretrained(tmp_path / "llm")
    datasets = f"{llara},{log}"
    try:
        metrics = {}
        for nb in notebooks():
            params = {"datasets": datasets} if nb.name[:2] != "06" else \
                {"results_dir": str(results), "figures_dir": str(tmp_path / "figures")}
            if nb.name[:2] in ("03", "04", "05"):
                params["llm"] = str(tmp_path / "llm")
            run_notebook(nb, preset, results, force=True, log=lambda *a: None, extra_params=params)
            metrics[nb.name[:2]] = json.loads((results / nb.stem / "metrics.json").read_text())
    finally:
        for name in NAMES:
            shutil.rmtree(REPO / "data" / "processed" / name, ignore_errors=True)

    m01 = metrics["01"]["datasets"]
    assert set(m01) == set(NAMES)
    assert m01["test_own_llara"]["dropped_empty_history"]["test"] == 1 and m01["test_own_llara"]["items"] == 40
    assert m01["test_own_log"]["duplicate_rows"] == 1 and m01["test_own_log"]["users_with_one_interaction"] == 1
    m02 = metrics["02"]["datasets"]
    assert set(m02) == set(NAMES)
    for d in m02.values():
        assert {"popularity", "sasrec", "dreamrec"} <= set(d["models"])
        assert 0.0 <= d["models"]["sasrec"]["test"]["HR@10"] <= 1.0
    assert "test_all" in m02["test_own_log"]["models"]["sasrec"]  # the log has every position of its test users
    for key in ("03", "04", "05"):
        assert set(metrics[key]["datasets"]) == set(NAMES), key
    for d in metrics["05"]["datasets"].values():
        assert d["n_cases"] == 3 and set(d["sources"]) == {"dreamrec", "sasrec", "random"}
    assert set(metrics["06"]["inputs"]) >= {"recommenders", "recovery", "residual", "instantiation"}
