"""The phrases the notebooks' generated prose is made of: hand-computed cases, bad input."""
import pytest

from recinterp.lesson import Summary, against, excludes_zero


def test_excludes_zero_three_ways():
    assert excludes_zero({"mean": 0.2, "lo": 0.1, "hi": 0.3}) is True
    assert excludes_zero({"mean": -0.2, "lo": -0.3, "hi": -0.1}) is False
    assert excludes_zero({"mean": 0.05, "lo": -0.01, "hi": 0.1}) is None
    assert excludes_zero(None) is None


def test_against_says_which_side_with_the_interval():
    assert against({"mean": 0.15, "lo": 0.1, "hi": 0.2}, "shuffled") == \
        "above the shuffled control by +0.150 [+0.100, +0.200] (the interval excludes 0)"
    assert "covers 0" in against({"mean": 0.0, "lo": -0.1, "hi": 0.1}, "zero")
    assert against(None, "zero") == "no paired difference with the zero control was measured"


def test_summary_records_its_points_and_refuses_to_be_empty():
    s = Summary("data").add("  MovieLens has 10 items. ").add("")
    assert s.markdown() == "## Summary\n\n- MovieLens has 10 items.\n"
    assert s._repr_markdown_() == s.bullets() == "- MovieLens has 10 items.\n"  # the notebook cell above holds the heading
    m = s.record({"preset": "x"})
    assert m["summary"] == {"notebook": "data", "points": ["MovieLens has 10 items."]}
    with pytest.raises(ValueError, match="no points"):
        Summary("recovery").record({})


# -- the worked case, on the tiny world of test_grid ------------------------------------------
from test_grid import grid as tiny_grid, world  # noqa: E402,F401  (world: the module fixture)


def test_worked_case_reads_one_case_through_both_routes_as_the_evaluation_did(world, tmp_path):
    from recinterp.grid import blocks
    from recinterp.lesson.worked import worked_case

    g = tiny_grid("recovery", world, tmp_path)
    runs = g.recovery()
    case = worked_case(g, runs, seed=3)
    assert [r.route for r in case.routes] == ["aligned", "linear10"]  # main first, then the contrast
    titles = world[0]["movielens"].catalogue.norm_titles
    for view in case.routes:
        run = next(r for r in runs if r.key[2] == view.route)
        i = case.index
        # the answer is the evaluation's own text for this case, and the counts agree with it
        assert view.answer == run.eval["generation"]["model"]["texts"][i]
        assert view.count == run.eval["generation"]["model"]["per_case"][i]
        assert view.shuffled == run.eval["generation"]["shuffled"]["texts"][i] and view.shuffled_from != i
        # one marker per slot position, as many as soft tokens and nearest tokens
        assert view.prompt.count("⟨") == view.n_soft == len(view.nearest)
        assert "<|rec_slot|>" not in view.prompt
    assert case.window == [titles[a] for a in runs[0].cases.answers[case.index].tolist() if a >= 0] == case.truth
    aligned = case.routes[0]
    assert aligned.readout_picks is not None and len(aligned.readout_picks) == case.features_shape[1]
    assert case.routes[1].readout_picks is None
    d = case.record({})["worked_case"]
    assert d["routes"]["aligned"]["prompt_slots"] == aligned.n_soft and d["case"] == case.index
    md = case.markdown()
    assert md.count("#### Route") == 2 and "⟨1⟩" in md
    assert blocks(runs)  # the runs are untouched report blocks


def test_worked_case_refuses_a_dataset_without_runs(world, tmp_path):
    from recinterp.lesson.worked import worked_case

    g = tiny_grid("recovery", world, tmp_path)
    with pytest.raises(ValueError, match="no evaluated run of steam/sasrec"):
        worked_case(g, [], dataset="steam")


def test_marked_prompt_numbers_every_slot():
    from recinterp.lesson.worked import marked_prompt

    assert marked_prompt("a <|rec_slot|><|rec_slot|> b\n1. <|rec_slot|>") == "a ⟨1⟩⟨2⟩ b\n1. ⟨3⟩"
    assert marked_prompt("no slots") == "no slots"


# -- how-to-read paragraphs, on blocks made by hand ---------------------------------------------
def _s(mean, lo, hi, n=None):
    return {"mean": mean, "lo": lo, "hi": hi, **({"n": n} if n is not None else {})}


def _block(route="aligned", role="main", model=0.3, diff_lo=0.1, encoder="sasrec"):
    """A residual run block: hit 0.3 vs shuffled 0.05 and zero 0.0; probe Hit@1 with 10 candidates."""
    return {"task": "residual", "dataset": "movielens", "encoder": encoder, "route": route, "role": role,
            "train": None if route == "aligned" else {"steps": 15, "seconds": 40.0},
            "extra": {"fit": {"seconds_total": 4.2}, "adapter_side": {"readout_top1": 0.4, "n": 60, "per": "case"}}
            if route == "aligned" else {},
            "generation": {"n": 60, "metric": "hit",
                           "conditions": {"model": {"mean": _s(model, model - 0.1, model + 0.1, 60)},
                                          "shuffled": {"mean": _s(0.05, 0.0, 0.1, 60)},
                                          "zero": {"mean": _s(0.0, 0.0, 0.0, 60)}},
                           "diff_vs": {"shuffled": _s(model - 0.05, diff_lo, 0.4), "zero": _s(model, diff_lo, 0.4)}},
            "samplers": ["own"],
            "probe": {"own": {"n": 60, "n_candidates": 10,
                              "conditions": {"model": {"Hit@1": _s(0.5, 0.4, 0.6, 60)},
                                             "shuffled": {"Hit@1": _s(0.1, 0.05, 0.15, 60)},
                                             "zero": {"Hit@1": _s(0.1, 0.05, 0.15, 60)},
                                             "encoder": {"Hit@1": _s(0.6, 0.5, 0.7, 60)}},
                              "diff_vs": {"shuffled": {"Hit@1": _s(0.4, 0.3, 0.5)}, "zero": {"Hit@1": _s(0.4, 0.3, 0.5)}}}}}


def test_generation_reading_quotes_the_block_and_counts_what_clears():
    from recinterp.lesson import read

    txt = read.generation([_block(), _block(route="pair_item", role="contrast", model=0.05, diff_lo=-0.1)])
    assert "0.300 [0.200, 0.400] share of windows whose true title is named (n = 60)" in txt
    assert "fitted in 4 s with no pass through the LLM" in txt and "trained through the LLM for 15 steps (40 s)" in txt
    assert "1 of 2 runs clear both soft-token controls: `movielens/sasrec/aligned`." in txt
    assert "not clear of the shuffled control" in txt  # the contrast's interval covers 0


def test_probe_reading_states_chance_from_the_candidates():
    from recinterp.lesson import read

    txt = read.probe([_block()])
    assert "10 per answer: chance is 1/10 = 0.100" in txt and "the `encoder` reference 0.600 [0.500, 0.700]" in txt


def test_summary_counts_the_headline_readings_that_clear():
    from recinterp.lesson import read

    s = read.summary_residual([_block(), _block(route="pair_item", role="contrast", model=0.05, diff_lo=-0.1),
                               _block(encoder="caser", role="comparison", model=0.02, diff_lo=-0.05)])
    assert "2 of 2 headline readings clear both soft-token controls" in s.markdown()  # generation + probe of main
    assert any(p.startswith("Encoder comparison, movielens, Caser") and "does not clear" in p for p in s.points)
    assert any(p.startswith("The other route on movielens, `pair_item`") for p in s.points)


def test_curve_reading_finds_the_first_point_that_clears_or_says_how_far_it_went():
    from recinterp.lesson import read

    row = dict(metric="generation hit", n=60, shuffled=0.0, zero=0.0)
    rows = [{**row, "variant": "linear", "steps": 30, "seconds": 100.0, "model": 0.0, "clears": False},
            {**row, "variant": "linear", "steps": 300, "seconds": 1000.0, "model": 0.02, "clears": False},
            {**row, "variant": "aligned", "steps": 0, "seconds": 12.0, "model": 0.28, "clears": True}]
    txt = read.curve(rows)
    assert "**linear**, generation hit: does not clear its controls within 300 steps (1000 s trained through" in txt
    assert "**aligned**, generation hit: clears both controls at 0 steps, 12 s fitted" in txt
    assert read.curve([]).startswith("_No learning curve")
    gpu = [{**rows[1], "steps": 1000, "seconds": 110.0, "device": "NVIDIA H200"}]
    assert "within 1000 steps (110 s trained through the LLM on NVIDIA H200;" in read.curve(gpu)


def test_measured_curves_finds_make_curves_and_the_gpu_checks_each_with_its_device(tmp_path):
    from recinterp import curve as C

    row = dict(metric="generation hit", n=60, variant="linear", steps=30, steps_target=30, seconds=100.0, model=0.0,
               shuffled=0.0, zero=0.0, clears=False)
    assert C.measured_curves(tmp_path / "results" / "cpu", "cpu") == []
    C.write_rows(tmp_path / "results" / "cpu" / "curve", [row])  # an older CSV: no device column, the CPU's
    C.write_rows(tmp_path / "results" / "device_check", [{**row, "device": "NVIDIA H200"}])
    found = C.measured_curves(tmp_path / "results" / "cpu", "cpu")
    # named by the results folder's own path (no machine path in a figure's title); the rows say the device
    assert [w for w, _ in found] == ["results/cpu/curve", "results/device_check"]
    assert [{C.device_of(r) for r in rows} for _, rows in found] == [{"cpu"}, {"NVIDIA H200"}]
    assert C.measured_curves(tmp_path / "results" / "smoke", "smoke") == []  # the GPU check runs the cpu preset's
    assert len(C.measured_curves(tmp_path / "x", "smoke", curve_dir=tmp_path / "results" / "cpu" / "curve")) == 1


def test_variant_choice_says_when_no_ablation_ran():
    from recinterp.lesson import read

    best = {"name": "pair_item", "input": "pair", "init": "item"}
    assert read.variant_choice(best, []).startswith("No ablation ran in this preset")
    assert read.variant_choice(best, [_block()], "noise").startswith("Best of 1 variants")


def test_examples_markdown_says_how_the_cases_were_picked():
    import numpy as np
    import torch

    from recinterp.textmatch import examples_markdown

    gen = {"model": {"per_case": np.array([0.0, 2.0, 1.0]), "texts": ["x", "Heat; Fargo", "Heat"]}}
    answers = torch.tensor([[0, 1], [0, 1], [0, 1]])
    best = examples_markdown("ml", gen, answers, ["Heat", "Fargo"], 1)
    assert best.startswith("### ml: the best-answered 1 of 3 cases (mean count over all: 1.00)")
    assert "**Heat**; **Fargo**" in best
    rnd = examples_markdown("ml", gen, answers, ["Heat", "Fargo"], 3, pick="random", seed=0)
    assert "a random sample (seed 0) 3 of 3" in rnd and rnd.count("- truth") == 3
    with pytest.raises(ValueError, match="unknown pick"):
        examples_markdown("ml", gen, answers, ["Heat", "Fargo"], 1, pick="worst")


def test_describe_prints_the_presets_settings_and_chance():
    from recinterp.plan import describe, resolve_preset

    cfg = resolve_preset("smoke", "residual")
    txt = describe("residual", cfg)
    ev = cfg["eval"]
    assert f"chance Hit@1 = 1/{ev['n_distractors'] + 1}" in txt and f"{ev['n_cases']} windows of {ev['split']}" in txt
    assert "recovery" not in describe("recovery", resolve_preset("smoke", "recovery")).split("\n")[0]


def test_inline_keeps_a_multiline_answer_in_one_code_span():
    from recinterp.textmatch import inline

    assert inline("1. Heat\n2. `Fargo`") == "`1. Heat ↵ 2. 'Fargo'`"
    assert inline("x" * 10, 4) == "`xxxx` …"


def test_accuracy_reading_sets_the_named_item_beside_retrieval():
    from recinterp.lesson import read

    txt = read.accuracy({"ml / sasrec": {"named = next": 0.05, "retrieval HR@1": 0.1, "genre overlap (named)": 0.3,
                                         "genre overlap (appended)": None}})
    assert txt == ("- **ml / sasrec**: the named item is the true next one 0.050 of the time, the recommender's own "
                   "top-1 0.100; genre overlap with the history 0.300 for the named item.")


def test_encoders_vs_popularity_reads_notebook_02s_verdicts(tmp_path):
    import json

    from recinterp.lesson import read

    (tmp_path / "02_recommenders").mkdir()
    (tmp_path / "02_recommenders" / "metrics.json").write_text(json.dumps({"datasets": {"movielens": {"models": {
        "sasrec": {"vs_popularity_HR@10": {"test": {"above": False, "diff": 0.08, "lo": -0.01, "hi": 0.17},
                                           "test_all": {"above": True, "diff": 0.09, "lo": 0.08, "hi": 0.1}}}}}}}))
    txt = read.encoders_vs_popularity(tmp_path, ["sasrec"])
    assert "SASRec on movielens `test` not clearly above popularity (0.080 [-0.010, 0.170])" in txt
    assert "SASRec on movielens `test_all` above popularity (0.090 [0.080, 0.100])" in txt
    assert read.encoders_vs_popularity(tmp_path / "none", ["sasrec"]).startswith("_Notebook 02's metrics are not in")


def test_read_dreamrec_names_the_chosen_variant_and_its_difference_with_sasrec():
    from recinterp.lesson import recommenders as R

    d = {"movielens": {"models": {
        "dreamrec": {"chosen": "dreamrec_frozen_softmax", "chosen_from": {"dreamrec_frozen": 0.03, "dreamrec_frozen_softmax": 0.06}},
        "dreamrec_frozen_softmax": {"vs_sasrec_HR@10": {"test_all": {"diff": -0.01, "lo": -0.02, "hi": 0.0, "above": False}}}}}}
    text = R.read_dreamrec(d)
    assert "`dreamrec_frozen_softmax`" in text and "0.0600" in text and "-0.010 [-0.020, +0.000]" in text
    assert "No DreamRec" in R.read_dreamrec({"steam": {"models": {}}})


def test_route_evidence_reads_what_make_evidence_wrote(tmp_path):
    import json

    from recinterp.lesson import read

    assert "make evidence" in read.route_evidence(tmp_path)
    ci = lambda m, lo, hi: {"mean": m, "lo": lo, "hi": hi, "n": 16}  # noqa: E731
    pts = [{"part": "must_light", "setting": "scale fixes", "steps": 40, "hit": ci(0.875, 0.69, 1.0),
            "vs_shuffled": ci(0.875, 0.69, 1.0), "vs_zero": ci(0.875, 0.69, 1.0), "soft_norm": 3.2, "llm_token_norm": 3.2},
           {"part": "item_stage", "n_items": 256, "steps": 160, "epochs": 10.0, "hit": ci(0.0, 0.0, 0.0),
            "shuffled": ci(0.0, 0.0, 0.0), "zero": ci(0.0, 0.0, 0.0), "vs_shuffled": ci(0.0, 0.0, 0.0),
            "vs_zero": ci(0.0, 0.0, 0.0), "soft_norm": 3.2}]
    (tmp_path / "evidence.json").write_text(json.dumps({"points": pts}))
    text = read.route_evidence(tmp_path)
    assert "0.875 [0.690, 1.000] of 16 named (clears both controls" in text
    assert "256 items, 160 steps (10.0 epochs): 0.000" in text and "(does not clear)" in text
