"""recinterp.curve (the two routes' learning curve) and recinterp.readouts, on a tiny world (tiny LLM, tiny encoder, few steps)."""
import datetime as dt
import time

import pandas as pd
import pytest
import torch

from recinterp import curve
from recinterp.plan import resolve_preset
from recinterp.train_adapter import TrainConfig, train_adapter
from synthetic_data import TINY_TITLES, tiny_world

TITLES = TINY_TITLES


@pytest.fixture(scope="module")
def world():
    return tiny_world()


@pytest.fixture(scope="module")
def cfg():
    """The smoke preset's residual section, shrunk further: 4 cases, 3 new tokens, the test split."""
    c = resolve_preset("smoke", "residual", dataset="movielens", encoder="sasrec",
                       overrides={"eval": {"split": "test", "n_cases": 4, "max_new_tokens": 3, "samplers": ["own"]},
                                  "aligned": {"readout": {"epochs": 1}, "align": {"k": 4, "hidden": 64}}})
    return c


def test_plan_is_parsed_in_order_and_bad_plans_are_refused():
    assert curve.parse_plan(["linear:0,30", "conv_pool:0", "linear:100"]) == [
        ("linear", 0), ("linear", 30), ("conv_pool", 0), ("linear", 100)]
    for bad in (["mlp:0"], ["linear"], ["linear:"], ["linear:a"], ["linear:30,10"], ["linear:30", "linear:30"],
                ["linear:-1"]):
        with pytest.raises(ValueError, match="plan entry"):
            curve.parse_plan(bad)


def test_deadline_is_the_next_such_clock_time():
    now = dt.datetime(2026, 1, 1, 18, 0)
    assert curve.parse_deadline("19:45", None, now) == dt.datetime(2026, 1, 1, 19, 45).timestamp()
    assert curve.parse_deadline("17:00", None, now) == dt.datetime(2026, 1, 2, 17, 0).timestamp()
    assert curve.parse_deadline(None, 30, now) == dt.datetime(2026, 1, 1, 18, 30).timestamp()
    assert curve.parse_deadline(None, None, now) is None
    with pytest.raises(ValueError, match="HH:MM"):
        curve.parse_deadline("7pm", None, now)
    with pytest.raises(ValueError, match="not both"):
        curve.parse_deadline("19:45", 30, now)


def test_zero_steps_saves_the_initial_adapter(world, tmp_path):
    """A curve's first point: max_steps=0 trains nothing (it used to mean 'unset': a whole epoch)."""
    from recinterp.adapter import build_adapter
    from recinterp.interpreter import Interpreter
    from recinterp.tasks import build_cases

    enc, ds, llm = world
    cases = build_cases("item", enc, ds, "train")
    interp = Interpreter(llm, build_adapter(kind="linear", d_in=8, d_llm=llm.hidden_size, n_tokens=2))
    before = {k: v.clone() for k, v in interp.adapter.state_dict().items()}
    h = train_adapter(interp, cases, TITLES, TrainConfig(max_steps=0, batch_size=4), out_dir=tmp_path, progress=False)
    assert h["steps"] == 0 and h["history"] == []
    assert all(torch.equal(v, interp.adapter.state_dict()[k]) for k, v in before.items())
    h = train_adapter(interp, cases, TITLES, TrainConfig(max_steps=2, batch_size=4), out_dir=tmp_path, progress=False)
    assert h["steps"] == 2 and len(h["history"]) == 2  # resumed from the step-0 checkpoint
    with pytest.raises(ValueError, match="max_steps must be >= 0"):
        train_adapter(interp, cases, TITLES, TrainConfig(max_steps=-1), progress=False)


def test_curve_writes_every_checkpoint_with_controls_and_resumes(world, cfg, tmp_path, monkeypatch):
    enc, ds, llm = world
    plan = curve.parse_plan(["linear:0,2", "conv_pool:0,1"])
    rows = curve.run_curve(enc, ds, llm, cfg, tmp_path, plan, preset="smoke", log=lambda *a: None)
    df = pd.read_csv(tmp_path / curve.CSV)
    assert len(df) == len(rows) == 2 * (1 + len(plan))  # two readings per point: generation, probe
    assert set(df.metric) == {"generation hit", "probe Hit@1 (own)"}
    e2e = df[df.variant != "aligned"]
    assert list(e2e.drop_duplicates(["variant", "steps"])[["variant", "steps"]].itertuples(index=False, name=None)) == [
        ("linear", 0), ("linear", 2), ("conv_pool", 0), ("conv_pool", 1)]
    assert (df.n == 4).all() and df.clears.isin([True, False]).all()
    for c in ("model", "shuffled", "zero", "model_minus_shuffled", "model_minus_zero"):
        assert (df[f"{c}_lo"] <= df[c] + 1e-9).all() and (df[c] <= df[f"{c}_hi"] + 1e-9).all()
    # the training seconds grow along a variant; the linear variant's include its item stage
    lin = e2e[e2e.variant == "linear"].drop_duplicates("steps")
    assert (lin.stage_seconds > 0).all() and lin.seconds.is_monotonic_increasing
    assert (e2e[e2e.variant == "conv_pool"].stage_seconds == 0).all()
    assert {"threads", "load1", "load5", "cpu_share", "wall_clock", "eval_seconds"} <= set(df.columns)
    al = df[df.variant == "aligned"]
    assert len(al) == 2 and al.adapter_side.str.startswith("readout_top1").all()
    assert (tmp_path / curve.FIGURE).stat().st_size > 0
    (tmp_path / curve.FIGURE).unlink()
    assert curve.main(["--checkpoint-dir", "unused", "--out", str(tmp_path), "--replot", "--preset", "smoke"]) == 0
    assert (tmp_path / curve.FIGURE).stat().st_size > 0  # redrawn from the CSV alone
    table = curve.curve_table(rows)
    assert len(table) == len(rows) and set(table.clears) <= {"yes", "no"}
    assert table["model [95% CI]"].str.match(r"^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$").all()
    # the same cases as the headline evaluation: the aligned route and every checkpoint read n = 4 of one split
    # a rerun measures nothing again; a longer plan continues the linear run from its checkpoint
    calls = []
    real = curve.run_task
    monkeypatch.setattr(curve, "run_task", lambda task, *a, **k: calls.append((task, k["train"]["max_steps"])) or real(task, *a, **k))
    rows2 = curve.run_curve(enc, ds, llm, cfg, tmp_path, curve.parse_plan(["linear:0,2,3"]), log=lambda *a: None)
    assert calls == [("item", 2), ("residual", 3)]  # the item stage reloads (0 new steps), then 2 -> 3 steps
    new = [r for r in rows2 if r["steps_target"] == 3]
    assert len(rows2) == len(rows) + 2 and {r["steps"] for r in new} == {3}


def test_deadline_skips_what_does_not_fit(world, cfg, tmp_path):
    enc, ds, llm = world
    rows = curve.run_curve(enc, ds, llm, cfg, tmp_path, [("linear", 0)], deadline=time.time() - 1, aligned=False,
                           log=lambda *a: None)
    assert rows == []
    state = pd.read_json(tmp_path / curve.LOG, typ="series")
    assert state["skipped"][0]["variant"] == "linear"


# -- recinterp.readouts: the aligned route under the fitted and the encoder's own readout ----------------
def test_both_readouts_on_the_same_cases_paired_case_by_case(world, cfg, tmp_path):
    from recinterp import readouts

    enc, ds, llm = world
    rows, rep = readouts.compare_readouts(enc, ds, llm, cfg, tmp_path, seed=0)
    df = pd.DataFrame(rows)
    assert list(df.readout) == ["fitted", "fitted", "encoder", "encoder"]
    assert set(df.metric) == {"generation hit", "probe Hit@1 (own)"} and (df.n == 4).all()
    assert rep["fitted"]["fit"]["kind"] == "fitted" and rep["encoder"]["fit"]["kind"] == "encoder"
    assert rep["encoder"]["fit"]["init"] == "encoder"  # the encoder's scores, unchanged
    assert df.readout_top1.between(0, 1).all() and df.encoder_space_hit1.between(0, 1).all()
    # the encoder-space reference is the same parameter-free score under both readouts
    assert df.encoder_space_hit1.nunique() == 1
    paired = rep["encoder_minus_fitted"]
    assert set(paired) == {"generation hit", "probe Hit@1 (own)"} and all(v["n"] == 4 for v in paired.values())
    # one item aligner for both readouts, fitted once
    assert (tmp_path / "aligner").is_dir() and not (tmp_path / "fitted" / "aligner").exists()
    with pytest.raises(ValueError, match="unknown readout"):
        readouts.readout_settings(cfg, "ridge")


def test_a_missing_encoder_is_trained_as_notebook_02_trains_it(world, tmp_path):
    from recinterp.models import load_checkpoint

    _, ds, _ = world
    enc = curve.ensure_encoder("smoke", ds, "sasrec", tmp_path, log=lambda *a: None)
    saved = load_checkpoint(tmp_path, ds.name, "sasrec")
    assert enc.checkpoint_info["metrics"]["test"]["n"] == len(ds.test)
    assert all(torch.equal(v, saved.state_dict()[k]) for k, v in enc.state_dict().items())
    again = curve.ensure_encoder("smoke", ds, "sasrec", tmp_path, log=lambda *a: 1 / 0)  # loads, trains nothing
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in enc.state_dict().items())


# -- recinterp.seeds: the headline readings under several seeds -------------------------------------------
def test_seed_rows_and_the_table_across_seeds(world, cfg, tmp_path):
    from recinterp import seeds

    enc, ds, llm = world
    rcfg = resolve_preset("smoke", "recovery", dataset="movielens", encoder="sasrec",
                          overrides={"eval": {"n_cases": 4, "max_new_tokens": 3, "samplers": ["random"],
                                              "n_distractors": 3},
                                     "aligned": {"readout": {"epochs": 1}, "align": {"k": 4, "hidden": 64}}})
    rows = []
    for s in (0, 1):
        rows += seeds.seed_rows("recovery", enc, ds, llm, rcfg, tmp_path / "rec", s)
        rows += seeds.seed_rows("residual", enc, ds, llm, cfg, tmp_path / "res", s)
    df = pd.DataFrame(rows)
    assert len(df) == 8 and set(df.seed) == {0, 1} and (df.n == 4).all()
    assert set(df.metric) == {"generation found", "probe Hit@1 (random)", "generation hit", "probe Hit@1 (own)"}
    # the seed draws another case sample (4 of 12 windows), so the seeds read different cases
    assert (tmp_path / "rec" / "aligner").is_dir() and (tmp_path / "rec" / "seed1" / "adapter").is_dir()
    table = seeds.seed_table(rows)
    assert len(table) == 4 and (table.seeds == 2).all()
    row = table[(table.task == "residual") & (table.metric == "generation hit")].iloc[0]
    vals = df[(df.task == "residual") & (df.metric == "generation hit")].model
    assert row["mean"] == pytest.approx(vals.mean()) and row["min"] == vals.min() and row["max"] == vals.max()
    assert row["clears"].endswith("of 2") and row["per_seed"].startswith("0: ") and "; 1: " in row["per_seed"]


def test_seed_table_by_hand():
    from recinterp import seeds

    rows = [{"task": "residual", "dataset": "d", "encoder": "e", "metric": "m", "n": 60, "seed": s, "model": v,
             "model_lo": v - 0.1, "model_hi": v + 0.1, "clears": c} for s, v, c in ((1, 0.2, False), (0, 0.4, True),
                                                                                    (2, 0.3, True))]
    t = seeds.seed_table(rows).iloc[0]
    assert t["mean"] == pytest.approx(0.3) and t["min"] == 0.2 and t["max"] == 0.4 and t["clears"] == "2 of 3"
    assert t["per_seed"] == "0: 0.400 [0.300, 0.500] clears; 1: 0.200 [0.100, 0.300]; 2: 0.300 [0.200, 0.400] clears"


def test_readouts_files_keep_other_pairs_and_replace_a_pair_measured_again(tmp_path):
    from recinterp import readouts

    def rows(enc, kind, v):
        return [{"dataset": "d", "encoder": enc, "readout": kind, "metric": m, "model": v} for m in ("gen", "probe")]

    readouts.record(tmp_path, rows("caser", "fitted", 0.1), {"d/caser": {"fitted": {"a": 1}}}, {"preset": "p"})
    readouts.record(tmp_path, rows("sasrec", "encoder", 0.2), {"d/sasrec": {"encoder": {"b": 2}}}, {"preset": "p"})
    merged = readouts.record(tmp_path, rows("caser", "fitted", 0.3), {"d/caser": {"encoder": {"c": 3}}}, {"preset": "p"})
    assert readouts.measured(tmp_path) == {("d", "caser", "fitted"), ("d", "sasrec", "encoder")}
    assert sorted((r["encoder"], r["model"]) for r in merged) == [("caser", 0.3)] * 2 + [("sasrec", 0.2)] * 2
    report = pd.read_json(tmp_path / readouts.JSON, typ="series")
    assert report["runs"]["d/caser"] == {"fitted": {"a": 1}, "encoder": {"c": 3}} and report["preset"] == "p"
