import json

import pytest

from conftest import run_notebook
from notebook_lesson import check_summary_and_exercises

pytestmark = pytest.mark.notebook


def test_notebook_06_figures(smoke_results, tmp_path):
    for name in ("01_data_prep", "02_recommenders", "03_sequence_recovery", "04_sequence_residual",
                 "05_ideal_item_instantiation"):
        if not (smoke_results / name / "metrics.json").exists():
            run_notebook(name, smoke_results)
    figdir = tmp_path / "figures"
    m = run_notebook("06_figures", smoke_results, results_dir=str(smoke_results), figures_dir=str(figdir))
    assert set(m["inputs"]) >= {"recommenders", "recovery", "residual", "instantiation"}
    for name in ("recommenders", "recovery_distribution", "residual_generation", "instantiation"):
        for ext in ("png", "pdf"):
            p = figdir / f"{name}.{ext}"
            assert p.exists() and p.stat().st_size > 1000, p
    summary = (figdir / "summary.md").read_text()
    # the summary shows the numbers of this run: popularity's HR@10 on Steam, as notebook 02 wrote it
    m02 = json.loads((smoke_results / "02_recommenders" / "metrics.json").read_text())
    pop = m02["datasets"]["steam"]["models"]["popularity"]["test"]["HR@10"]
    assert f"{pop:.3f}" in summary and "smoke preset" in summary
    # it teaches: a Summary of this run's numbers (in metrics.json and summary.md) and Exercises (issue 18)
    check_summary_and_exercises(smoke_results, "06_figures", m, notebook="figures")
    assert m["summary_md"] == str(figdir / "summary.md")
    # the headline readings it drew: every main run of tasks 1-2 (generation and probe), and task 3's fidelity
    from recinterp import report
    runs = report.load_runs(smoke_results)
    assert len(m["headline"]) == len(report.headline(runs)) + len(report.instantiation_headline(smoke_results)) > 0
    verdicts = m["recommenders_vs_popularity"]
    assert verdicts["readings"] == sum(len(e.get("vs_popularity_HR@10", {})) for d in m02["datasets"].values()
                                       for e in d["models"].values())
