"""Notebook 03 (sequence recovery) in the smoke preset: metrics.json, controls, histogram, saved adapters."""
import math

import pytest

from conftest import run_notebook
from notebook_lesson import check_summary_and_exercises, check_worked_case
from recinterp.plan import adapter_name, resolve_preset, route_roles

pytestmark = pytest.mark.notebook

METRICS = ("Hit@1", "Hit@5", "MRR")


def ensure_recommenders(results):
    """03/04 read 02's encoders; run 02 (about 30 s in smoke) if this session has not yet."""
    if not all((results / "checkpoints" / d / "sasrec" / "config.json").exists() for d in ("movielens", "steam")):
        run_notebook("02_recommenders", results)


def check_ci(s, n, top=1.0):
    assert s["n"] == n
    assert 0.0 <= s["lo"] <= s["mean"] <= s["hi"] <= top and not math.isnan(s["mean"]), s


def check_diff(d):
    assert set(d) == set(METRICS)
    for v in d.values():
        assert -1.0 <= v["lo"] <= v["mean"] <= v["hi"] <= 1.0, v


def check_probe(block, n):
    """A probe block of recinterp.report's layout: every condition with n and a CI, diffs vs the controls."""
    for cond in ("model", "shuffled", "zero", "popularity"):
        for m in METRICS:
            check_ci(block["conditions"][cond][m], n)
        assert block["conditions"][cond]["Hit@1"]["mean"] <= block["conditions"][cond]["Hit@5"]["mean"] + 1e-9
    for c in ("shuffled", "zero"):
        check_diff(block["diff_vs"][c])


def test_notebook_03_smoke(smoke_results):
    from recinterp import report as R

    ensure_recommenders(smoke_results)
    m = run_notebook("03_sequence_recovery", smoke_results)
    cfg = resolve_preset("smoke", "recovery")
    check_summary_and_exercises(smoke_results, "03_sequence_recovery", m, notebook="recovery")
    check_worked_case(smoke_results, "03_sequence_recovery", m)
    assert set(m["worked_case"]["routes"]) == {"aligned", "linear10"}  # both routes, on the same window
    assert m["preset"] == "smoke" and m["task"] == "recovery" and m["llm"]["hidden_size"] > 0
    assert set(m["datasets"]) == set(cfg["datasets"]) == {"movielens", "steam"}
    role_e2e, role_aligned = route_roles(cfg)["end_to_end"], route_roles(cfg)["aligned"]
    e2e = R.select(m["runs"], role=role_e2e)
    aligned = R.select(m["runs"], route="aligned")
    pairs = {(d, e) for d in cfg["datasets"] for e in cfg["encoders"]}
    assert {(r["dataset"], r["encoder"]) for r in e2e} == pairs == {(r["dataset"], r["encoder"]) for r in aligned}
    n = cfg["eval"]["n_cases"]
    for d in e2e:
        assert d["route"] == "linear10"
        # training: the preset's budget, a finite curve
        assert d["train"]["steps"] == cfg["train"]["max_steps"] == len(d["train"]["curve"])
        assert all(math.isfinite(loss) for _, loss in d["train"]["curve"]) and d["train"]["seconds"] > 0
        # truncation of the targets is measured
        t = m["datasets"][d["dataset"]]["truncation"]
        assert t["max_target_tokens"] == cfg["train"]["max_target_tokens"] and 0 < t["share_titles_supervised"] <= 1
    for d in aligned:  # the token-space route: no LLM training, its adapter-side accuracy beside the LLM's
        assert d["role"] == role_aligned and d["train"] is None
        side = d["extra"]["adapter_side"]  # the readout's top-1 over the real positions of the n evaluated windows
        assert side["per"] == "position" and cfg["eval"]["n_cases"] <= side["n"] <= 10 * cfg["eval"]["n_cases"]
        assert side["readout_top1"] * side["n"] == pytest.approx(round(side["readout_top1"] * side["n"]))
        assert d["extra"]["fit"]["readout"]["n_pairs"] <= cfg["aligned"]["readout"]["max_pairs"]
        assert d["adapter"]["kind"] == "structured" and d["adapter"]["layout"] == "list"
    for d in e2e + aligned:
        assert d["n_eval"] == n
        # generation: titles found 0..10, histogram over k = 0..10 summing to 1, beside every control
        g = d["generation"]
        assert g["n"] == n and g["metric"] == "found"
        assert set(g["conditions"]) == {"model", "shuffled", "zero", "popularity"}
        for c in g["conditions"].values():
            check_ci(c["mean"], n, top=10)
            assert len(c["hist"]) == 11 and abs(sum(c["hist"]) - 1) < 1e-9
        for c in ("shuffled", "zero", "popularity"):
            assert g["diff_vs"][c]["lo"] <= g["diff_vs"][c]["mean"] <= g["diff_vs"][c]["hi"]
        # likelihood probe per sampler, controls, encoder-space references
        assert set(d["probe"]) == set(cfg["eval"]["samplers"]) and d["samplers"] == list(cfg["eval"]["samplers"])
        for sampler, block in d["probe"].items():
            check_probe(block, n)
            assert block["n_candidates"] == cfg["eval"]["n_distractors"] + 1
            assert "encoder" in block["conditions"]
            for mname in METRICS:
                check_ci(block["conditions"]["encoder"][mname], n)
        # the verdicts are computed booleans, one per comparison
        assert d["signal"] and all(isinstance(v, bool) for v in d["signal"].values())
        assert {"generation_found_vs_shuffled", f"probe_{cfg['eval']['samplers'][0]}_Hit@1_vs_shuffled"} <= set(d["signal"])
    for d in e2e:  # the fitted linear readout is the end-to-end run's reference
        for block in d["probe"].values():
            for mname in METRICS:
                check_ci(block["conditions"]["readout"][mname], n)
    main = R.select(m["runs"], role="main")
    # adapter variants on the variant datasets (probe only)
    variants = R.select(m["runs"], role="variant")
    assert {(v["dataset"], v["route"]) for v in variants} == {("movielens", adapter_name(a)) for a in cfg["adapters"][1:]}
    for v in variants:
        assert v["generation"] is None and set(v["probe"]) == set(resolve_preset("smoke", "recovery", role="variant")["eval"]["samplers"])
    # the headline check reads the same file
    assert len(R.headline(m["runs"])) == 2 * len(main)

    # the saved adapters load, and say what they were trained for
    from recinterp.adapter import load_adapter
    main_adapter = cfg["adapters"][0]
    for dname in cfg["datasets"]:
        folder = smoke_results / "checkpoints" / "adapters" / dname / "sasrec" / "recovery"
        assert (folder / "adapter.safetensors").exists() and (folder / "adapter_config.json").exists()
        proj = load_adapter(folder)
        c = proj.cfg
        assert (c.task, c.dataset, c.encoder, c.kind, c.n_tokens, c.input) == \
            ("recovery", dname, "sasrec", main_adapter["kind"], main_adapter["n_tokens"], main_adapter["input"])
        assert c.llm == m["llm_name"]
    for dname in cfg["datasets"]:
        c = load_adapter(smoke_results / "checkpoints" / "adapters" / dname / "sasrec" / "recovery_aligned").cfg
        assert (c.task, c.dataset, c.kind, c.layout, c.n_positions) == ("recovery", dname, "structured", "list", 10)
    for a in cfg["adapters"][1:]:
        folder = smoke_results / "checkpoints" / "adapters" / "movielens" / "sasrec" / f"recovery_{adapter_name(a)}"
        assert load_adapter(folder).cfg.kind == a["kind"]
    # the figure's table is the main runs' distribution, condition by condition, as metrics.json holds it
    import pandas as pd
    folder = smoke_results / "03_sequence_recovery"
    assert (folder / "recovery_histogram.png").stat().st_size > 0
    hist = pd.read_csv(folder / "recovery_histogram.csv")
    shown = R.select(main, encoder=cfg["encoders"][0])
    assert len(hist) == sum(len(c["hist"]) for r in shown for c in r["generation"]["conditions"].values())
    for r in shown:
        for cond, c in r["generation"]["conditions"].items():
            got = hist[(hist.dataset == r["dataset"]) & (hist.condition == cond)].sort_values("k")["share"]
            assert got.tolist() == pytest.approx(c["hist"])
