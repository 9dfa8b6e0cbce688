"""recinterp.tasks.aligned: the token-space route of each task, end to end on a tiny world."""
import pytest
import torch

from recinterp.adapter import load_adapter
from recinterp.tasks.aligned import fit_readout, run_aligned
from recinterp.tasks.run import build_cases, subsample
from synthetic_data import TINY_ITEMS, TINY_TITLES, tiny_world

N_ITEMS, TITLES = TINY_ITEMS, TINY_TITLES


@pytest.fixture(scope="module")
def world():
    return tiny_world()


EVAL = {"n_cases": 4, "n_distractors": 3, "max_new_tokens": 3, "batch_size": 4}
ALIGN = {"k": 4, "hidden": 64}


def test_item_route_holds_out_items_and_reports_the_aligners_accuracy(world, tmp_path):
    enc, ds, llm = world
    res = run_aligned("item", enc, ds, llm, out_dir=tmp_path / "item", align_cfg=ALIGN, eval=EVAL)
    assert set(res["eval"]) == {"train", "held_out"} and res["eval"]["held_out"]["n"] == 2
    side = res["eval"]["train"]["adapter_side"]
    assert side["token_top1"] == 1.0 and side["n"] == 4  # 64 random features fit 18 items exactly
    assert res["fit"]["aligner"]["n_items"] == 18
    r = res["eval"]["train"]["ranking"]["random"]
    assert {"model", "shuffled", "zero", "model_vs_shuffled", "model_vs_zero"} <= set(r)
    assert {"model", "shuffled", "zero", "popularity"} <= set(res["eval"]["train"]["generation"])


def test_residual_route_is_one_saved_structured_adapter(world, tmp_path):
    enc, ds, llm = world
    res = run_aligned("residual", enc, ds, llm, out_dir=tmp_path / "res", align_cfg=ALIGN,
                      readout={"epochs": 2}, eval={**EVAL, "samplers": ["own"]})
    proj = load_adapter(res["adapter_dir"], d_llm=llm.hidden_size)
    assert proj.cfg.kind == "structured" and proj.cfg.input == "pair" and proj.cfg.d_in == 16
    assert proj.cfg.n_tokens == 4 and proj.cfg.temperature == 0.05
    side = res["eval"]["test"]["adapter_side"]
    cases = res["cases"]["test"]  # the evaluated cases: the saved readout's own top-1 on them is what is reported
    top1 = (proj.layers.readout(cases.features[:, 0, 0]).argmax(-1) == cases.answers[:, 0]).float().mean()
    assert side == {"readout_top1": pytest.approx(float(top1)), "n": EVAL["n_cases"], "per": "case"}
    assert res["fit"]["readout"]["init"] == "encoder"
    # a rerun reloads the fitted parts instead of fitting again
    again = run_aligned("residual", enc, ds, llm, out_dir=tmp_path / "res", align_cfg=ALIGN, readout={"epochs": 2})
    assert again["fit"]["readout"] == res["fit"]["readout"]
    back = load_adapter(again["adapter_dir"], d_llm=llm.hidden_size)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in proj.state_dict().items())


def test_recovery_route_lists_one_line_per_position(world, tmp_path):
    enc, ds, llm = world
    res = run_aligned("recovery", enc, ds, llm, out_dir=tmp_path / "rec", align_cfg=ALIGN,
                      readout={"epochs": 2}, eval={**EVAL, "samplers": ["random"]})
    proj = load_adapter(res["adapter_dir"], d_llm=llm.hidden_size)
    assert proj.cfg.layout == "list" and proj.cfg.n_positions == 10 and proj.cfg.n_tokens == 40
    side = res["eval"]["test"]["adapter_side"]
    real_positions = int(ds.test.lens[:].sum())
    assert side["per"] == "position" and side["n"] <= real_positions
    gen = res["eval"]["test"]["generation"]
    assert gen["model"]["found"]["n"] == 4 and len(gen["model"]["distribution"]) == 11


def test_readout_kinds(world, tmp_path):
    enc, ds, llm = world
    table = enc.item_embeddings.weight[:N_ITEMS].detach()
    cases = build_cases("residual", enc, ds, "train", "pair")
    lin, rep = fit_readout(cases, table, kind="encoder")
    hb, ha = cases.states["h_before"], cases.states["h_after"]
    assert torch.allclose(lin(cases.features[:, 0, 0]), (ha - hb) @ table.T, atol=1e-5)
    assert rep["n_pairs"] == len(cases)
    with pytest.raises(ValueError, match="unknown readout"):
        fit_readout(cases, table, kind="oracle")
    two = build_cases("residual", enc, ds, "train", "two_slots")
    with pytest.raises(ValueError, match="one placeholder"):
        fit_readout(two, table)
    with pytest.raises(ValueError, match="unknown alignment option"):
        run_aligned("item", enc, ds, llm, out_dir=tmp_path / "x", align_cfg={"width": 3})


def test_task3_direct_route_reads_an_embedding_as_the_item_task_does(world, tmp_path):
    """name_embeddings (DreamRec's x0 through the aligner) asks exactly the item task's held-out question."""
    from recinterp.interpreter import Interpreter
    from recinterp.instantiation import name_embeddings
    from recinterp.tasks.aligned import catalogue_aligner

    enc, ds, llm = world
    res = run_aligned("item", enc, ds, llm, out_dir=tmp_path / "item", align_cfg=ALIGN,
                      eval={**EVAL, "samplers": ["random"], "gen_controls": []})
    ids = res["cases"]["train"].answers[:, 0]  # the items the evaluation decoded
    interp = Interpreter(llm, load_adapter(res["adapter_dir"], d_llm=llm.hidden_size))
    table = enc.item_embeddings.weight[:N_ITEMS].detach()
    texts = name_embeddings(interp, {"emb": table[ids], "ids": ids}, TITLES, dataset="movielens", max_new_tokens=3,
                            nouns=(ds.noun, ds.nouns))  # the cases of the evaluation carry the dataset's nouns
    assert texts == res["eval"]["train"]["generation"]["model"]["texts"]
    with pytest.raises(ValueError, match="embeddings"):
        name_embeddings(interp, {"emb": table[ids][:, :4], "ids": ids}, TITLES)
    aligner, fit = catalogue_aligner(enc, ds, llm, tmp_path / "cat", ALIGN)
    assert fit["n_items"] == N_ITEMS and fit["token_top1_fitted_items"] == 1.0
    _, fit = catalogue_aligner(enc, ds, llm, tmp_path / "defaults", None)  # a preset without "align": the defaults
    assert fit["config"]["k"] == 8 and fit["hidden"] == 2048


def test_appended_pairs_append_every_item_to_real_prefixes(world):
    """residual.appended_pairs: a real window's prefix (before), each catalogue item appended per_item times."""
    from recinterp.tasks.residual import appended_pairs

    enc, ds, _ = world
    x, y = appended_pairs(enc, ds.train, 3, "pair", seed=0)
    assert x.shape == (3 * N_ITEMS, 16) and torch.equal(torch.bincount(y, minlength=N_ITEMS), torch.full((N_ITEMS,), 3))
    # each h_before is the state of some real window's first n-1 items; h_after adds y after them
    windows = [(ds.train.seqs[i], int(ds.train.lens[i])) for i in range(len(ds.train)) if ds.train.lens[i] >= 2]
    with torch.no_grad():
        befores = torch.stack([enc.hidden_states(s[None], torch.tensor([L - 1]))[0, L - 2] for s, L in windows])
    for i in range(5):
        j = int(((befores - x[i, :8]).abs().sum(1)).argmin())
        assert torch.allclose(befores[j], x[i, :8], atol=1e-5)
        seq, L = windows[j][0].clone(), windows[j][1]
        seq[L - 1] = y[i]
        with torch.no_grad():
            h = enc.hidden_states(seq[None], torch.tensor([L]))[0, L - 1]
        assert torch.allclose(x[i, 8:], h, atol=1e-5)
    d, yd = appended_pairs(enc, ds.train, 3, "diff", seed=0)
    assert torch.equal(yd, y) and torch.allclose(d, x[:, 8:] - x[:, :8], atol=1e-6)  # seeded: same draws
    with pytest.raises(ValueError, match="per_item"):
        appended_pairs(enc, ds.train, 0)
    with pytest.raises(ValueError, match="two_slots"):
        appended_pairs(enc, ds.train, 1, "two_slots")


def test_random_appends_widen_the_residual_readouts_training_set(world, tmp_path):
    enc, ds, llm = world
    res = run_aligned("residual", enc, ds, llm, out_dir=tmp_path / "res", align_cfg=ALIGN,
                      readout={"epochs": 2, "random_appends": 4})
    rep = res["fit"]["readout"]
    assert rep["random_appends"] == 4 and rep["n_pairs"] == rep["n_case_pairs"] + 4 * N_ITEMS
    with pytest.raises(ValueError, match="residual task only"):
        run_aligned("recovery", enc, ds, llm, out_dir=tmp_path / "rec", align_cfg=ALIGN,
                    readout={"epochs": 2, "random_appends": 4})


def test_a_cached_adapter_fitted_with_other_settings_is_refitted(world, tmp_path):
    enc, ds, llm = world
    first = run_aligned("residual", enc, ds, llm, out_dir=tmp_path / "res", align_cfg=ALIGN, readout={"epochs": 1})
    with pytest.warns(UserWarning, match="refitting"):
        second = run_aligned("residual", enc, ds, llm, out_dir=tmp_path / "res", align_cfg=ALIGN,
                             readout={"epochs": 1, "random_appends": 2})
    assert second["fit"]["readout"]["n_pairs"] == first["fit"]["readout"]["n_pairs"] + 2 * N_ITEMS
    assert second["fit"]["settings"]["readout"] == {"epochs": 1, "random_appends": 2}


def test_finetuning_starts_from_the_aligned_adapter_and_pairs_up_with_it(world, tmp_path):
    from recinterp import report as R
    from recinterp.tasks.aligned import finetune_aligned

    enc, ds, llm = world
    ev = {**EVAL, "samplers": ["own"]}
    base = run_aligned("residual", enc, ds, llm, out_dir=tmp_path / "res", align_cfg=ALIGN, readout={"epochs": 2}, eval=ev)
    train = {"batch_size": 4, "max_steps": 2, "warmup_steps": 1, "lr": 1e-3, "ckpt_every": 0}
    res = finetune_aligned("residual", enc, ds, llm, adapter_dir=base["adapter_dir"], out_dir=tmp_path / "ft",
                           train=train, eval=ev)
    start = load_adapter(base["adapter_dir"], d_llm=llm.hidden_size)
    tuned = load_adapter(res["adapter_dir"], d_llm=llm.hidden_size)
    assert tuned.cfg.kind == "structured" and tuned.cfg.input == "pair" and res["train"]["steps"] == 2
    assert (tuned.cfg.temperature, tuned.cfg.n_tokens, tuned.cfg.layout) == (start.cfg.temperature, start.cfg.n_tokens,
                                                                             start.cfg.layout)
    a, b = start.state_dict(), tuned.state_dict()
    assert torch.equal(a["layers.table"], b["layers.table"])  # the encoder's item table is not trained
    moved = (a["layers.readout.weight"] - b["layers.readout.weight"]).abs().max()
    assert 0 < moved < 0.01  # two Adam steps of 1e-3 away from the fitted readout (a fresh one is ~0.25 off)
    ba = R.before_after(base["eval"]["test"], res["eval"]["test"])
    assert set(ba) == {"generation hit", "probe Hit@1 (own)"} and all(v["n"] == 4 for v in ba.values())
    with pytest.raises(ValueError, match="structured"):  # the whole-catalogue aligner is not a task's adapter
        finetune_aligned("residual", enc, ds, llm, adapter_dir=tmp_path / "res" / "aligner", out_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="fitted for task 'residual', not 'recovery'"):
        finetune_aligned("recovery", enc, ds, llm, adapter_dir=base["adapter_dir"], out_dir=tmp_path / "x")
