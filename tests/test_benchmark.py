"""Notebook 02's benchmark (recinterp.models.benchmark): hand-computed scores on tiny splits, pairing with
popularity, the guidance grid, the checkpoint reload check and the figures drawn from it; bad input."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from recinterp import figures as F  # noqa: E402
from recinterp.data.types import Catalogue, RecDataset, Split  # noqa: E402
from recinterp.models import build_encoder, reloads_bitwise, save_checkpoint  # noqa: E402
from recinterp.models.benchmark import (Benchmark, bridge_reports, dreamrec_variant,  # noqa: E402
                                        item_norm_diagnostics, prepare)
from recinterp.models.train import FitConfig, Popularity  # noqa: E402

N = 30  # items; id N is padding


def split(nexts, seed=0):
    """Rows of one-item histories (item 0) with the given next items."""
    nexts = torch.tensor(nexts)
    seqs = torch.full((len(nexts), 10), N)
    seqs[:, 0] = (torch.arange(len(nexts)) + seed) % N
    return Split(seqs, torch.ones(len(nexts), dtype=torch.long), nexts)


def dataset(test_all=True, n_train=50):
    g = torch.Generator().manual_seed(0)
    train = split(torch.randint(0, N, (n_train,), generator=g).tolist())
    names = [f"item {i}" for i in range(N)]
    return RecDataset("toy", N, train, split([1, 2, 3, 4], 1), split([0, 1, 25, 26]), Catalogue(names, names),
                      extra={"test_all": split([0, 1, 2, 25, 26, 27, 28, 29])} if test_all else {})


class Fixed:
    """Scores items by a fixed vector: item i scores ``order[i]`` (higher first)."""

    def __init__(self, order):
        self.order = torch.as_tensor(order, dtype=torch.float)

    def score_sequences(self, ids, lens, generator=None, w=None):
        # w = 0 ranks items 0..9 first, any other w ranks them last (a stand-in for DreamRec's guidance)
        order = self.order if not w else -self.order
        return order.expand(ids.shape[0], -1)


TOP_LOW = -torch.arange(N, dtype=torch.float)  # item 0 first, item 29 last


def toy_bench():
    d = prepare(dataset())
    bench = Benchmark({"toy": d}, seed=0)
    bench.record("toy", "popularity", Fixed(-TOP_LOW))  # item 29 first: misses 0..9, hits 20..29
    bench.record("toy", "model", Fixed(TOP_LOW))  # item 0 first: hits 0..9
    return d, bench


def test_prepare_caps_the_train_rows_and_keeps_every_evaluation_split():
    ds = dataset()
    d = prepare(ds, max_train_rows=20, seed=1)
    assert len(d.train) == 20 and set(d.evals) == {"test", "test_all"} and len(d.val) >= len(ds.val)
    assert torch.equal(prepare(ds, 20, seed=1).train.next, d.train.next)  # seeded
    assert len(prepare(ds, 0).train) == 50 and len(prepare(ds, None).train) == 50
    assert set(prepare(dataset(test_all=False)).evals) == {"test"}
    assert d.row() == {"dataset": "toy", "items": N, "train rows": 20, "val rows": 4, "val (expanded)": len(d.val),
                       "test rows": 4, "test_all rows": 8}
    with pytest.raises(ValueError, match="max_train_rows"):
        prepare(ds, -1)


def test_record_pairs_each_model_with_popularity_on_the_same_rows():
    d, bench = toy_bench()
    m, p = bench.results[("toy", "model")], bench.results[("toy", "popularity")]
    assert m["test"]["HR@10"] == 0.5 and p["test"]["HR@10"] == 0.5  # test: 0, 1 | 25, 26
    assert m["test_all"]["HR@10"] == 3 / 8 and p["test_all"]["HR@10"] == 5 / 8
    assert m["test"]["n"] == 4 and m["test_ci"]["HR@10"]["n"] == 4
    assert m["test"]["NDCG@10"] == pytest.approx((1 + 1 / np.log2(3)) / 4)
    v = bench.vs("toy", "model", "test_all")
    assert v["diff"] == pytest.approx(-2 / 8) and v["lo"] <= v["diff"] <= v["hi"] and v["above"] is (v["lo"] > 0)
    rows = bench.table_rows()
    assert [(r["split"], r["model"]) for r in rows] == [("test", "popularity"), ("test_all", "popularity"),
                                                        ("test", "model"), ("test_all", "model")]
    assert "HR@10 − pop" not in rows[0] and rows[3]["HR@10 − pop"].startswith("-0.250 [")
    q = bench.quality_bar("toy", ["model", "absent"])
    assert set(q) == {"model/test", "model/test_all"} and q["model/test_all"]["HR@10_diff"] == v
    assert bench.quality_bar("movielens", ["model"]) == {}
    block = bench.dataset_metrics("toy")
    assert block["n_test"] == 4 and block["n_test_all"] == 8 and block["n_items"] == N
    assert block["models"]["model"]["vs_popularity_HR@10"]["test_all"] == v
    assert "vs_popularity_HR@10" not in block["models"]["popularity"]
    assert bench.baseline("HR@10") == {"toy": {"test": 0.5, "test_all": 5 / 8}}
    with pytest.raises(ValueError, match="unknown dataset"):
        bench.record("nope", "model", Fixed(TOP_LOW))
    with pytest.raises(ValueError, match="record the model first"):
        bench.vs("toy", "absent", "test")


def test_recording_again_drops_the_stale_paired_difference():
    d, bench = toy_bench()
    assert bench.vs("toy", "model", "test")["diff"] == 0
    bench.record("toy", "model", Fixed(-TOP_LOW))
    assert bench.vs("toy", "model", "test")["diff"] == 0 and bench.vs("toy", "model", "test_all")["diff"] == 0


def test_guidance_grid_and_the_best_weight_against_the_default():
    d, bench = toy_bench()
    bench.record("toy", "dreamrec", Fixed(TOP_LOW))
    grid = bench.guidance_grid("toy", "dreamrec", Fixed(TOP_LOW), [0, 2])
    assert grid[("toy", "dreamrec", 0, "test_all")]["HR@10"] == 3 / 8
    assert grid[("toy", "dreamrec", 2, "test_all")]["HR@10"] == 5 / 8
    b = bench.best_w("toy", "dreamrec", "test_all", default=2.0, metric="HR@10")
    assert b["best"] == 2 and b["diff"]["mean"] == 0  # the default is best: a tie with itself
    b = bench.best_w("toy", "dreamrec", "test", default=2.0, metric="NDCG@10")
    assert b["best"] == 0 and b["default"] == 2.0 and b["n"] == 4
    assert b["diff"]["mean"] == pytest.approx(b["best_mean"] - b["default_mean"])
    assert set(bench.w_grid("toy", "dreamrec")) == {"0", "2"}
    assert len(bench.w_table()) == 4 and set(pd.DataFrame(bench.w_table()).columns) >= {"w", "split", "NDCG@10"}
    block = bench.dataset_metrics("toy", w_default=2.0)["models"]["dreamrec"]
    assert set(block["w_grid"]) == {"0", "2"} and set(block["w_best"]) == {"test", "test_all"}
    assert "w_best" not in bench.dataset_metrics("toy", w_default=4.0)["models"]["dreamrec"]
    with pytest.raises(ValueError, match="not in the grid"):
        bench.best_w("toy", "dreamrec", "test", default=4.0)
    with pytest.raises(ValueError, match="run guidance_grid first"):
        bench.best_w("toy", "model", "test", default=2.0)


def test_fit_records_the_training_summary_and_the_learning_curve():
    d = prepare(dataset())
    bench = Benchmark({"toy": d})
    bench.record("toy", "popularity", d.popularity())
    torch.manual_seed(0)
    model = build_encoder("sasrec", n_items=N, d=8, n_blocks=1)
    lines = []
    entry = bench.fit("toy", "sasrec", model, FitConfig(epochs=2, batch_size=16), log=lines.append)
    assert entry["epochs"] == 2 and entry["train_rows"] == 50 and entry["train_config"]["epochs"] == 2
    assert [h["epoch"] for h in bench.histories] == [1, 2] and bench.histories[0]["model"] == "sasrec"
    assert lines[0].startswith("--- toy / sasrec:") and lines[-1].startswith("test: HR@10")
    assert isinstance(d.popularity(), Popularity)


def test_dreamrec_variants_bridges_and_item_norms():
    torch.manual_seed(0)
    enc = build_encoder("sasrec", n_items=N, d=8, n_blocks=1)
    name, frozen = dreamrec_variant("frozen", N, {"d": 8, "T": 5}, enc)
    assert name == "dreamrec_frozen" and frozen.cfg.item_source == "frozen" and frozen.cfg.w == 0.0
    name, learned = dreamrec_variant("learned", N, {"d": 8, "T": 5})
    assert name == "dreamrec_learned" and (learned.cfg.objective, learned.cfg.w) == ("mse", 2.0)
    _, pre = dreamrec_variant("pretrained_softmax", N, {"d": 8, "T": 5}, enc)
    assert pre.item_embeddings.weight.requires_grad and not frozen.item_embeddings.weight.requires_grad
    with pytest.raises(ValueError, match="unknown DreamRec variant"):
        dreamrec_variant("other", N, {})
    with pytest.raises(ValueError, match="table_encoder"):
        dreamrec_variant("frozen", N, {})
    gru = build_encoder("gru4rec", n_items=N, d=8)
    trained = {("toy", "sasrec"): enc, ("toy", "gru4rec"): gru, ("toy", "dreamrec"): frozen,
               ("toy", "dreamrec_learned"): learned, ("other", "sasrec"): enc}
    rep = bridge_reports(trained, "toy", N, "sasrec")
    assert list(rep) == ["toy: dreamrec_learned -> sasrec", "toy: sasrec -> gru4rec"]
    assert rep["toy: sasrec -> gru4rec"]["n_items"] == N
    with pytest.raises(ValueError, match="no model 'caser'"):
        bridge_reports(trained, "toy", N, "caser")

    class Table(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.item_embeddings = torch.nn.Embedding(3, 2)
            self.item_embeddings.weight.data = torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]])

    diag = item_norm_diagnostics(Table(), torch.tensor([0.0, 3.0, 7.0]))
    assert diag["item_norm_mean"] == pytest.approx(8 / 3)
    assert diag["corr_norm_log_popularity"] == pytest.approx(np.corrcoef([5, 1, 2], np.log1p([0, 3, 7]))[0, 1])


def test_reloads_bitwise_tells_a_faithful_checkpoint_from_a_changed_model(tmp_path):
    torch.manual_seed(0)
    model = build_encoder("sasrec", n_items=N, d=8, n_blocks=1).eval()
    save_checkpoint(model, tmp_path, "toy")
    test = dataset().test
    assert reloads_bitwise(model, tmp_path, "toy", "sasrec", test) is True
    with torch.no_grad():
        model.item_embeddings.weight[0, 0] += 1
    assert reloads_bitwise(model, tmp_path, "toy", "sasrec", test) is False
    _, dr = dreamrec_variant("learned", N, {"d": 8, "T": 5})
    save_checkpoint(dr.eval(), tmp_path, "toy", name="dreamrec_learned")
    assert reloads_bitwise(dr, tmp_path, "toy", "dreamrec_learned", test, seed=3) is True


def test_the_benchmark_figures(tmp_path):
    hist = pd.DataFrame([{"dataset": "toy", "model": m, "epoch": e, "loss": 1 / e, "val_NDCG@10": 0.1 * e}
                         for m in ("sasrec", "dreamrec") for e in (1, 2)])
    paths = F.save_figure(F.plot_recommender_curves(hist), "curves", tmp_path, "smoke")
    assert all(p.stat().st_size > 0 for p in paths)
    with pytest.raises(ValueError, match="no epochs"):
        F.plot_recommender_curves([])
    d, bench = toy_bench()
    bench.guidance_grid("toy", "dreamrec", Fixed(TOP_LOW), [0, 2])
    fig = F.plot_guidance_grid(pd.DataFrame(bench.w_table()), bench.baseline("NDCG@10"))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["popularity (test)", "popularity (test_all)"]
