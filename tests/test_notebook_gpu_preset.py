"""Notebook 03 under the `gpu` preset's own settings with `llm=tiny` (`--param llm=tiny`): the paper-scale
notebook paths (epochs instead of steps, every test case evaluated, batch-32 evaluation, 19 distractors,
both samplers and controls) on CPU, shrunk only in size: 64 training cases, 8 generated tokens, 2 readout
epochs, MovieLens and SASRec alone, no adapter variant (the smoke preset's test runs those)."""
import json
import shutil

import pytest

from recinterp.config import load_preset, write_json_atomic
from recinterp.reproduce import run_notebook

pytestmark = pytest.mark.notebook


def gpu_preset_shrunk(path):
    cfg = load_preset("gpu")
    cfg["recommenders"] = load_preset("smoke", "recommenders")  # not run here: 03 reads 02's encoders
    rec = cfg["recovery"]
    rec["max_train_cases"] = 64
    rec["eval"]["max_new_tokens"] = 8
    rec["readout"]["epochs"] = 2
    rec["encoders"] = ["sasrec"]
    rec["variant_datasets"] = []
    rec.get("aligned", {})["enabled"] = False  # the smoke preset's test runs the token-space route
    return write_json_atomic(path, cfg)


def test_notebook_03_in_the_gpu_preset_with_a_tiny_llm(smoke_results, tmp_path):
    from test_notebook_03 import ensure_recommenders

    from conftest import REPO
    ensure_recommenders(smoke_results)
    results = tmp_path / "results"
    shutil.copytree(smoke_results / "checkpoints", results / "checkpoints",
                    ignore=shutil.ignore_patterns("adapters"))  # encoders only
    preset = gpu_preset_shrunk(tmp_path / "gpu_shrunk.json")
    run_notebook(REPO / "notebooks" / "03_sequence_recovery.ipynb", str(preset), results, force=True, log=lambda *a: None,
                 extra_params={"llm": "tiny", "device": "cpu", "datasets": "movielens"})
    m = json.loads((results / "03_sequence_recovery" / "metrics.json").read_text())
    from recinterp import report as R
    from recinterp.data import load_dataset
    from recinterp.plan import resolve_preset

    cfg = resolve_preset(str(preset), "recovery", dataset="movielens")
    main = R.select(m["runs"], role="main")
    assert [(r["dataset"], r["encoder"], r["route"]) for r in main] == [("movielens", "sasrec", "linear10")]
    assert not R.select(m["runs"], role="variant")
    d = main[0]
    tr = cfg["train"]
    assert tr["max_steps"] is None
    # epochs, not steps: 64 cases / batch 16 = 4 steps per epoch
    assert d["train"]["steps"] == tr["epochs"] * 64 // tr["batch_size"]
    assert d["n_eval"] == d["generation"]["n"] == len(load_dataset("movielens").test)  # every test case (no n_cases)
    assert set(d["probe"]) == set(cfg["eval"]["samplers"])
    assert all(b["n_candidates"] == cfg["eval"]["n_distractors"] + 1 for b in d["probe"].values())
    assert d["generation"]["decoding"]["batch_size"] == cfg["eval"]["batch_size"] == 32
    assert d["generation"]["decoding"]["max_new_tokens"] == 8
