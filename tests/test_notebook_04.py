"""Notebook 04 (sequence residual) in the smoke preset: ablation, per-encoder table, saved adapters."""
import math

import pytest
import torch

from conftest import run_notebook
from recinterp.plan import resolve_preset

pytestmark = pytest.mark.notebook

METRICS = ("Hit@1", "Hit@5", "MRR")


def check_ci(s, n):
    assert s["n"] == n
    assert 0.0 <= s["lo"] <= s["mean"] <= s["hi"] <= 1.0 and not math.isnan(s["mean"]), s


def check_probe(block, n):
    for cond in ("model", "shuffled", "zero"):
        for mname in METRICS:
            check_ci(block[cond][mname], n)
        assert block[cond]["Hit@1"]["mean"] <= block[cond]["Hit@5"]["mean"] + 1e-9
    for c in ("shuffled", "zero"):
        for v in block[f"diff_vs_{c}"].values():
            assert -1.0 <= v["lo"] <= v["mean"] <= v["hi"] <= 1.0


def test_notebook_04_smoke(smoke_results):
    from test_notebook_03 import ensure_recommenders

    ensure_recommenders(smoke_results)
    m = run_notebook("04_sequence_residual", smoke_results)
    cfg = resolve_preset("smoke", "residual")
    assert m["preset"] == "smoke"
    assert set(m["datasets"]) == set(cfg["datasets"]) == {"movielens", "steam"}
    variants = {f"{v['input']}_{'item' if v.get('init') == 'item' else 'scratch'}" for v in cfg["ablation"]["variants"]}
    best = m["best_variant"]["name"]
    assert best in variants
    n = cfg["eval"]["n_cases"]
    for dname, d in m["datasets"].items():
        # the paper's table: every encoder, with generation + probe + controls
        assert set(d["encoders"]) == set(cfg["encoders"]) == {"sasrec", "gru4rec", "caser"}
        for ename, e in d["encoders"].items():
            assert e["n_eval"] == n and e["input"] == m["best_variant"]["input"]
            assert len(e["train"]["curve"]) == e["train"]["steps"] > 0
            assert all(math.isfinite(x) for _, x in e["train"]["curve"])
            g = e["generation"]
            check_ci(g["hit_rate"], n)
            assert set(g["controls"]) == {"shuffled", "zero", "popularity"}
            for c in g["controls"].values():
                check_ci(c["hit_rate"], n)
            assert set(e["probe"]) == set(cfg["eval"]["samplers"])
            for sampler, block in e["probe"].items():
                check_probe(block, n)
                assert block["n_candidates"] == cfg["eval"]["n_distractors"] + 1
                for ref in ("encoder", "readout"):
                    check_ci(e["encoder_probe"][sampler][ref]["Hit@1"], n)
            assert e["signal"] and all(isinstance(v, bool) for v in e["signal"].values())
        # what notebook 05 needs to rebuild the features
        s = d["saved_residual"]
        assert s["variant"] == best and s["input"] in ("pair", "diff", "two_slots")
        assert s["n_tokens"] == cfg["adapter"]["n_tokens"] and set(s["paths"]) == set(cfg["encoders"])
    # the ablation on the focus pair: every variant, one chosen, probe on the validation windows
    abl = m["datasets"][cfg["ablation"]["dataset"]]["ablation"]
    assert set(abl) == variants and sum(v["chosen"] for v in abl.values()) == 1 and abl[best]["chosen"]
    for v in abl.values():
        assert v["split"] == "val" and v["train"]["steps_at_eval"] == cfg["ablation"]["train"]["max_steps"]
        for block in v["probe"].values():
            check_probe(block, v["n_eval"])
    # the item-alignment stage (evaluated on training and held-out items)
    item = m["datasets"]["movielens"]["item"]["sasrec"]
    assert item["train"]["steps"] == cfg["item_stage"]["train"]["max_steps"]
    assert set(item["eval"]) == {"train", "held_out"}

    # saved adapters: residual per (dataset, encoder), item, every ablation variant; they rebuild for notebook 05
    from recinterp.data import load_dataset
    from recinterp.models import load_checkpoint
    from recinterp.projector import load_projector
    from recinterp.tasks import residual_cases

    root = smoke_results / "checkpoints"
    for dname in cfg["datasets"]:
        for ename in cfg["encoders"]:
            folder = root / "adapters" / dname / ename / "residual"
            c = load_projector(folder).cfg
            assert (c.task, c.dataset, c.encoder, c.input) == ("residual", dname, ename, m["best_variant"]["input"])
    for vname in variants:
        assert (root / "adapters" / "movielens" / "sasrec" / f"residual_{vname}" / "adapter.safetensors").exists()
    assert (root / "adapters" / "movielens" / "sasrec" / "item" / "adapter_config.json").exists()
    s = m["datasets"]["movielens"]["saved_residual"]
    ds = load_dataset("movielens")
    enc = load_checkpoint(root, "movielens", "sasrec")
    cases = residual_cases(enc, ds.test.subset(torch.arange(3)), input=s["input"], positions=s["positions"])
    proj = load_projector(root / "adapters" / "movielens" / "sasrec" / "residual")
    soft = proj(cases.features.flatten(0, 1))
    assert soft.shape == (3 * cases.features.shape[1], s["n_tokens"], proj.cfg.d_llm)
