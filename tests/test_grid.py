"""recinterp.grid on a tiny world with the smoke preset's settings: every route's run, saved and reported,
with the evaluated cases beside each report block (notebooks 03 and 04 call exactly this)."""
import pytest
import torch

from recinterp import report as R
from recinterp.adapter import load_adapter
from recinterp.data.types import Catalogue, RecDataset, Split
from recinterp.grid import Grid, blocks
from recinterp.llm import tiny_llm
from recinterp.models import build_encoder
from recinterp.plan import resolve_preset, variant_name

N_ITEMS = 20
TITLES = [f"{chr(65 + i)}{chr(122 - i)} film" for i in range(N_ITEMS)]


@pytest.fixture(scope="module")
def world():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([10, 3, 2, 2, 10, 10, 5, 4, 10, 6, 7, 8])
    seqs = torch.full((len(lens), 10), N_ITEMS)
    for i, n in enumerate(lens):
        seqs[i, :n] = torch.randperm(N_ITEMS, generator=g)[:n]
    split = Split(seqs, lens, torch.randint(0, N_ITEMS, (len(lens),), generator=g))
    ds = RecDataset("movielens", N_ITEMS, split, split, split, Catalogue(TITLES, TITLES))
    encs = {("movielens", e): build_encoder(e, N_ITEMS, d=8).eval() for e in ("sasrec", "gru4rec", "caser")}
    return {"movielens": ds}, encs, tiny_llm()


def grid(task, world, tmp_path):
    data, encs, llm = world
    return Grid(task, "smoke", data, encs, llm, out=tmp_path / task, checkpoints=tmp_path / "checkpoints", log=lambda *a: None)


def test_recovery_grid_runs_every_adapter_then_the_aligned_route(world, tmp_path):
    g = grid("recovery", world, tmp_path)
    runs = g.recovery()
    cfg = resolve_preset("smoke", "recovery")
    assert [r.key for r in runs] == [("movielens", "sasrec", "linear10"), ("movielens", "sasrec", "conv_pool1"),
                                     ("movielens", "sasrec", "aligned")]
    assert [r.block["role"] for r in runs] == ["contrast", "variant", "main"]  # the smoke preset's headline: aligned
    for r in runs:  # the evaluated cases are the ones the block reports on
        assert len(r.cases) == r.block["n_eval"] == r.eval["n"] == cfg["eval"]["n_cases"]
        assert r.cases.task == "recovery" and r.eval["meta"]["split"] == r.block["split"]
        saved = load_adapter(r.block["saved_to"]).cfg
        assert (saved.task, saved.dataset, saved.encoder) == ("recovery", "movielens", "sasrec")
    assert [r.block["saved_to"].split("/")[-1] for r in runs] == ["recovery", "recovery_conv_pool1", "recovery_aligned"]
    m = g.metrics(blocks(runs))
    assert m["task"] == "recovery" and m["headline_route"] == "aligned" and len(m["runs"]) == 3


def test_residual_grid_item_stage_ablation_best_variant_both_routes_and_finetune(world, tmp_path):
    g = grid("residual", world, tmp_path)
    cfg = g.cfg
    item = g.item_stage()
    assert {(r.key, r.split) for r in item} == {(("movielens", "sasrec", "item"), "train"),
                                                (("movielens", "sasrec", "item"), "held_out")}
    ablation = g.ablation()
    assert [r.key[2] for r in ablation] == [variant_name(v) for v in cfg["ablation"]["variants"]]
    assert all(r.block["split"] == "val" and r.block["role"] == "ablation" for r in ablation)
    best, _ = g.best_variant(ablation)
    assert sum(r.block["extra"]["chosen"] for r in ablation) == 1 and best["name"] in {r.key[2] for r in ablation}
    e2e = g.residual(best)
    assert [r.key for r in e2e] == [("movielens", "sasrec", best["name"])] and e2e[0].block["role"] == "contrast"
    items, aligned = g.residual_aligned()
    assert [r.key[1] for r in aligned] == cfg["encoders"] and len(cfg["encoders"]) >= 2  # the preset's, in order
    assert [r.block["role"] for r in aligned] == ["main"] + ["comparison"] * (len(cfg["encoders"]) - 1)
    assert {r.split for r in items} == {"train", "held_out"} and len(items) == 2 * len(cfg["encoders"])
    for r in aligned:
        assert len(r.cases) == r.block["n_eval"] and r.cases.answers.shape[1] == 1
        assert r.eval["adapter_side"]["n"] == len(r.cases)
    tuned, change = g.finetune(aligned)
    assert [r.key for r in tuned] == [("movielens", "sasrec", "aligned_finetuned")]
    assert set(change) == {"movielens"} and all(v["n"] == len(aligned[0].cases) for v in change["movielens"].values())
    # the item stage ran once for the focus pair, however many variants and runs started from it
    assert len(g.item_runs) == 2
    m = g.metrics(blocks(g.item_runs, items, ablation, e2e, aligned, tuned))
    assert len(R.select(m["runs"], role="main")) == 1


def test_a_preset_without_the_end_to_end_route_runs_the_token_space_route_alone(world, tmp_path):
    """The classroom preset's switch ``"end_to_end": false``: no LLM training anywhere, the aligned route intact."""
    g = grid("recovery", world, tmp_path)
    g.cfg["end_to_end"] = False
    recovered = g.recovery()
    assert [r.key[2] for r in recovered] == ["aligned"]
    # nothing trained through the LLM: no training curve, so no figure file (notebooks 03-04 say so in one line)
    from recinterp import figures as F
    from recinterp.grid import blocks
    from recinterp.lesson.card import show_figure
    from recinterp.report import tables as T

    curves = T.curve_rows(blocks(recovered))
    assert len(curves) == 0 and F.plot_training_curves(curves) is None
    assert show_figure(F.plot_training_curves(curves), tmp_path / "curves.png", "training curves") is None
    assert not (tmp_path / "curves.png").exists()
    g = grid("residual", world, tmp_path)
    g.cfg["end_to_end"] = False
    assert g.item_stage() == [] and g.ablation() == [] and g.residual(g.best_variant([])[0]) == []
    items, runs = g.residual_aligned()
    assert [r.key[2] for r in runs] == ["aligned"] * len(g.encoder_names) and items
