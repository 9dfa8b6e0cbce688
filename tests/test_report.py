"""recinterp.report: the one layout of a task's metrics.json, its tables, and the headline check."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recinterp import report as R
from recinterp.report import cli
from recinterp.report import tables as T
from recinterp.config import write_json_atomic


def S(mean, lo=None, hi=None, n=20):
    return {"mean": mean, "lo": mean - 0.1 if lo is None else lo, "hi": mean + 0.1 if hi is None else hi, "n": n}


def D(mean, lo, hi):
    return {"mean": mean, "lo": lo, "hi": hi}


def result(task="residual", hit=(0.5, 0.1, 0.0), diffs=((0.4, 0.2, 0.6), (0.5, 0.3, 0.7), (0.3, 0.1, 0.5)),
           probe_diff=(0.2, 0.05, 0.35), splits=("test",)):
    """What run_task returns, hand-made: the model reads better than shuffled, zero and popularity."""
    metric = "found" if task == "recovery" else "hit"
    gen = {"n": 20, "max_answers": 1, "decoding": {"greedy": True}}
    for cond, v in zip(("model", "shuffled", "zero", "popularity"), (*hit, 0.05)):
        gen[cond] = {metric: S(v), "per_case": np.zeros(20), "texts": []}
        if metric == "hit":
            gen[cond]["exact"] = S(v / 2)
        else:
            gen[cond]["distribution"] = [0.5, 0.5]
    for cond, d in zip(("shuffled", "zero", "popularity"), diffs):
        gen[f"model_vs_{cond}"] = D(*d)
    summ = {m: S(0.4) for m in R.PROBE_METRICS}
    rk = {"n": 20, "n_candidates": 10, "candidates": {"sampler": "own"}, "reduce": "sum"}
    for cond in ("model", "shuffled", "zero", "popularity", "encoder", "readout"):
        rk[cond] = {"summary": summ, "per_case": {}}
        if cond != "model":
            rk[f"model_vs_{cond}"] = {m: D(*probe_diff) for m in R.PROBE_METRICS}
    ev = {"n": 20, "input": "pair", "meta": {"split": splits[0]}, "adapter": {"kind": "linear"},
          "generation": gen, "ranking": {"own": rk, "random": rk}}
    history = {"steps": 2, "seconds_total": 1.0, "n_cases": 8, "config": {"lr": 1e-3},
               "history": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}]}
    return {"task": task, "input": "pair", "encoder": "sasrec", "dataset": "movielens", "adapter_dir": "x",
            "train": history, "eval": {sp: {**ev, "meta": {"split": sp}} for sp in splits}}


def test_run_block_carries_every_condition_and_its_paired_difference():
    b = R.run_block(result(), route="pair_item", role="main", saved_to="ckpt")
    assert (b["task"], b["route"], b["role"], b["split"], b["n_eval"]) == ("residual", "pair_item", "main", "test", 20)
    g = b["generation"]
    assert g["metric"] == "hit" and set(g["conditions"]) == {"model", "shuffled", "zero", "popularity"}
    assert g["conditions"]["zero"]["mean"]["mean"] == 0.0 and g["diff_vs"]["zero"] == D(0.5, 0.3, 0.7)
    p = b["probe"]["own"]
    assert set(p["conditions"]) == {"model", "shuffled", "zero", "popularity", "encoder", "readout"}
    assert set(p["diff_vs"]) == set(p["conditions"]) - {"model"}
    assert b["train"]["loss_first"] == 3.0 and b["train"]["loss_last"] == 2.5 and b["train"]["curve"] == [[1, 3.0], [2, 2.0]]
    assert b["signal"]["generation_hit_vs_zero"] is True and b["signal"]["probe_own_Hit@1_vs_shuffled"] is True
    json.dumps(b)  # plain JSON: the per-case arrays and texts stay out
    with pytest.raises(ValueError, match="say which split"):
        R.run_block(result(splits=("train", "held_out")), route="item", role="item")
    with pytest.raises(ValueError, match="role"):
        R.run_block(result(), route="x", role="headline")


def test_long_tables_read_the_layout():
    runs = [R.run_block(result(), route="pair_item", role="main"),
            R.run_block(result(task="recovery"), route="linear10", role="variant")]
    gen = T.generation_rows(runs)
    assert set(gen.measure) == {"hit", "exact", "found"}
    row = gen[(gen.route == "pair_item") & (gen.condition == "shuffled") & (gen.measure == "hit")].iloc[0]
    assert (row["mean"], row["diff"], row["diff_lo"]) == (0.1, 0.4, 0.2)
    probe = T.probe_rows(R.select(runs, role="main"))
    assert len(probe) == 2 * 6 * 3  # samplers x conditions x metrics
    assert np.isnan(probe[probe.condition == "model"]["diff"]).all()
    hist = T.histogram_rows(runs)
    assert set(hist.route) == {"linear10"} and hist.share.sum() == pytest.approx(4.0)
    curves = T.curve_rows(runs + runs[:1])  # a training listed twice is drawn once
    assert len(curves) == 4 and curves.smoothed.tolist() == [3.0, 2.5, 3.0, 2.5]
    table = T.ci_table(gen, ["dataset", "encoder", "route"])
    assert table.loc[("movielens", "sasrec", "pair_item", "zero"), "model − this (hit)"] == "0.500 [0.300, 0.700]"


def test_a_result_can_carry_extra_routes_and_conditions():
    r = result()
    r["eval"]["test"]["ranking"]["own"]["aligned_zero"] = {"summary": {m: S(0.1) for m in R.PROBE_METRICS}}
    r["eval"]["test"]["ranking"]["own"]["model_vs_aligned_zero"] = {m: D(0.3, 0.2, 0.4) for m in R.PROBE_METRICS}
    b = R.run_block(r, route="aligned", role="main")
    assert b["probe"]["own"]["diff_vs"]["aligned_zero"]["Hit@1"] == D(0.3, 0.2, 0.4)
    rows = T.probe_rows([b, R.run_block(result(), route="end-to-end", role="main")])
    assert set(rows.route) == {"aligned", "end-to-end"} and "aligned_zero" in set(rows.condition)
    untrained = result()
    del untrained["train"]  # an adapter fitted without train_adapter (no training curve)
    b = R.run_block(untrained, route="aligned", role="main")
    assert b["train"] is None and len(T.curve_rows([b])) == 0 and len(R.headline([b])) == 2


def _write(tmp_path, runs):
    write_json_atomic(tmp_path / "04_sequence_residual" / "metrics.json", R.task_metrics("residual", runs, preset="smoke"))


def test_headline_check_passes_only_when_every_reading_clears_shuffled_and_zero(tmp_path, capsys):
    _write(tmp_path, [R.run_block(result(), route="end-to-end", role="main"),
                      R.run_block(result(diffs=((0.0, -0.2, 0.2),) * 3), route="x", role="ablation")])  # not headline
    assert cli.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "residual / movielens / sasrec / end-to-end: generation hit = 0.500 [0.400, 0.600] (n=20)" in out
    assert "model - shuffled: +0.400 [+0.200, +0.600]  CI above 0" in out and "probe Hit@1 (own)" in out
    # a second route whose probe sits at its zero control: the check fails, and says which
    weak = result()
    weak["eval"]["test"]["ranking"]["own"]["model_vs_zero"] = {m: D(0.01, -0.05, 0.07) for m in R.PROBE_METRICS}
    _write(tmp_path, [R.run_block(result(), route="end-to-end", role="main"),
                      R.run_block(weak, route="aligned", role="main")])
    assert cli.main([str(tmp_path)]) == 1
    rows = R.headline(R.load_runs(tmp_path))
    assert [(h["route"], h["reading"], h["clears"]) for h in rows] == [
        ("end-to-end", "generation hit", True), ("end-to-end", "probe Hit@1 (own)", True),
        ("aligned", "generation hit", True), ("aligned", "probe Hit@1 (own)", False)]
    assert rows[3]["vs"]["zero"]["excludes_0"] is False and rows[3]["vs"]["popularity"]["value"] == 0.4
    # the headline sampler is the first evaluated, also after a JSON round trip that sorts the keys
    assert json.loads(json.dumps(R.load_runs(tmp_path), sort_keys=True))[0]["samplers"] == ["own", "random"]
    assert cli.main([str(tmp_path / "nothing")]) == 2


def test_a_difference_below_zero_excludes_0_but_does_not_clear():
    r = result(diffs=((-0.4, -0.6, -0.2), (0.5, 0.3, 0.7), (0.3, 0.1, 0.5)))
    (gen, _) = R.headline([R.run_block(r, route="e2e", role="main")])
    assert gen["vs"]["shuffled"]["excludes_0"] and not gen["vs"]["shuffled"]["above_0"] and not gen["clears"]
    assert "CI below 0" in cli.format_headline([gen])


def test_a_reading_without_its_controls_does_not_clear():
    r = result()
    del r["eval"]["test"]["generation"]["model_vs_zero"]
    rows = R.headline([R.run_block(r, route="e2e", role="main")])
    assert rows[0]["clears"] is False and "zero" not in rows[0]["vs"]


def test_pick_best_by_hit1_then_mrr_and_says_when_it_is_noise():
    a, b = R.run_block(result(), route="a", role="ablation"), R.run_block(result(), route="b", role="ablation")
    b["probe"]["own"]["conditions"]["model"]["MRR"] = S(0.9)
    assert R.pick_best([a, b]) == ("b", "")
    b["probe"]["own"]["diff_vs"]["shuffled"]["Hit@1"] = D(0.0, -0.1, 0.1)
    best, note = R.pick_best([a, b])
    assert best == "b" and "does not clear its shuffled control" in note
    assert R.pick_best([]) == (None, "")


def _instantiation(tmp_path, diff_lo=0.5):
    fid = lambda hit, sh: {"hit": S(hit, n=95), "shuffled": S(sh, n=95), "diff": D(hit - sh, diff_lo, hit - sh + 0.1)}
    srcs = {"sasrec": {"fidelity": fid(0.7, 0.02), "novelty": S(0.5, n=95)},
            "random": {"fidelity": fid(0.75, 0.0), "novelty": S(0.6, n=95)},
            "dreamrec": {"fidelity": None, "novelty": S(0.8, n=95)}}
    write_json_atomic(tmp_path / "05_ideal_item_instantiation" / "metrics.json",
                      {"encoder": "sasrec", "datasets": {"movielens": {"headline_route": "direct", "routes": {
                          "direct": {"sources": srcs}, "appended": {"sources": {}}}}}})


def test_task3_fidelity_joins_the_headline_with_its_one_control(tmp_path, capsys):
    _write(tmp_path, [R.run_block(result(), route="aligned", role="main")])
    _instantiation(tmp_path)
    rows = R.instantiation_headline(tmp_path)
    assert [(h["reading"], h["n"], h["clears"], h["must_clear"]) for h in rows] == [
        ("route fidelity (SASRec's top-1)", 95, True, ["shuffled"]), ("route fidelity (a random item)", 95, True, ["shuffled"])]
    assert rows[0]["vs"]["shuffled"]["value"] == 0.02 and set(rows[0]["novelty"]) == {"sasrec", "random", "dreamrec"}
    assert cli.main([str(tmp_path)]) == 0
    assert "instantiation / movielens / sasrec / direct: route fidelity (SASRec's top-1)" in capsys.readouterr().out
    _instantiation(tmp_path, diff_lo=-0.1)  # fidelity no longer clears its shuffled control: the check fails
    assert cli.main([str(tmp_path)]) == 1


def test_the_encoder_comparison_is_reported_but_does_not_decide_the_exit_status(tmp_path, capsys):
    null = dict(hit=(0.0, 0.0, 0.0), diffs=((0.0, -0.1, 0.1),) * 3, probe_diff=(0.0, -0.1, 0.1))
    blocks = [R.run_block(result(), route="aligned", role="main"),
              {**R.run_block(result(**null), route="aligned", role="comparison"), "encoder": "caser"}]
    _write(tmp_path, blocks)
    assert cli.main([str(tmp_path), "--markdown"]) == 0  # caser's null is shown, the headline (sasrec) decides
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| residual")]
    assert len(rows) == 4 and all("| caser | aligned | comparison |" in r and "**no**" in r for r in rows[2:])
    assert len(T.headline_table(blocks)) == 2 and len(T.headline_table(blocks, roles=("main", "comparison"))) == 4


def test_markdown_table_and_readme_block(tmp_path, capsys):
    r = result()
    _write(tmp_path, [R.run_block(r, route="aligned", role="main", extra={"adapter_side": {"readout_top1": 0.4, "n": 20}}),
                      R.run_block(result(hit=(0.0, 0.0, 0.0), diffs=((0.0, 0.0, 0.0),) * 3), route="e2e", role="contrast")])
    _instantiation(tmp_path)
    assert cli.main([str(tmp_path), "--markdown"]) == 0  # the contrast route is shown, but only main runs decide
    md = capsys.readouterr().out
    rows = [line for line in md.splitlines() if line.startswith("| residual")]
    assert len(rows) == 4 and "readout_top1 0.400" in rows[0] and "| yes (shuffled + zero) |" in rows[0]
    assert "| contrast | generation hit | 20 | 0.000 [-0.100, 0.100] | 0.000 (+0.000 [+0.000, +0.000]) |" in rows[2]
    assert "**no** (shuffled + zero)" in rows[2]
    assert "Task 3, movielens, direct route, share of named items not in the catalogue: dreamrec 0.800" in md
    assert "sasrec 0.500 [0.400, 0.600] (n=95)" in md
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\nbefore\n{cli.BEGIN}\nold numbers\n{cli.END}\nafter\n")
    assert cli.main([str(tmp_path), "--readme", str(readme)]) == 0
    doc = readme.read_text()
    assert doc.startswith("# x\nbefore\n") and doc.endswith(f"{cli.END}\nafter\n") and "old numbers" not in doc
    assert "| residual | movielens | sasrec | aligned | main |" in doc and "--readme" in doc
    cli.main([str(tmp_path), "--readme", str(readme)])  # idempotent
    assert readme.read_text() == doc
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="report:begin"):
        cli.main([str(tmp_path), "--readme", str(readme)])


def test_before_after_pairs_the_same_cases():
    def ev(gen, hit, n=3, split="test"):
        return {"n": n, "task": "residual", "meta": {"split": split}, "generation": {"model": {"per_case": np.array(gen)}},
                "ranking": {"own": {"model": {"per_case": {"Hit@1": np.array(hit)}}}}}

    ba = R.before_after(ev([0, 1, 0], [0, 0, 1]), ev([1, 1, 0], [0, 1, 1]))
    g, p = ba["generation hit"], ba["probe Hit@1 (own)"]
    assert (g["n"], g["before"], g["after"]) == (3, pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert g["after_minus_before"]["mean"] == pytest.approx(1 / 3) and g["after_minus_before"]["lo"] >= 0
    assert (p["before"], p["after"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    with pytest.raises(ValueError, match="same cases"):
        R.before_after(ev([0, 1, 0], [0, 0, 1]), ev([1, 1], [0, 1], n=2))
    with pytest.raises(ValueError, match="same cases"):
        R.before_after(ev([0, 1, 0], [0, 0, 1]), ev([0, 1, 0], [0, 0, 1], split="val"))


def test_the_report_command_imports_no_torch(tmp_path):
    """``python -m recinterp.report`` reads JSON: it runs (headline, markdown, task 3) without torch in the process."""
    import recinterp

    _write(tmp_path, [R.run_block(result(), route="aligned", role="main")])
    _instantiation(tmp_path)
    probe = ("import runpy, sys\n"
             f"sys.argv = ['recinterp.report', {str(tmp_path)!r}, '--markdown']\n"
             "try:\n    runpy.run_module('recinterp.report', run_name='__main__', alter_sys=True)\n"
             "except SystemExit as e:\n    code = e.code\n"
             "print('exit', code, 'torch' in sys.modules, 'recinterp.models' in sys.modules)\n")
    root = str(Path(recinterp.__file__).parent.parent)  # this checkout, not an installed copy
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    assert "route fidelity (SASRec's top-1)" in out.stdout  # the encoder's label, read without the models
    assert out.stdout.strip().splitlines()[-1] == "exit 0 False False", out.stdout[-2000:]
    out = subprocess.run([sys.executable, "-c", "import recinterp, sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, cwd=root, env={**os.environ, "PYTHONPATH": root})
    assert out.stdout.strip() == "False", out.stderr
