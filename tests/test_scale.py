"""The catalogue-scaling fix and knob (recinterp.align, recinterp.tasks.aligned) and the benchmark's helpers
(bench/synthetic_catalogue.py, bench/bench_scale.py).

The fix must leave every reading at MovieLens size as it was: the old code of each changed function is kept
here, verbatim, and the new code must give bit-identical outputs up to 4,096 items (the auto aligner width's
new cap), including on inputs of MovieLens' real size (1,682 items, 64-wide items, SmolLM2's 576-wide tokens).
"""
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from recinterp import align
from recinterp.llm import tiny_llm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import bench_scale  # noqa: E402
import synthetic_catalogue as syn  # noqa: E402


# -- the old code, verbatim (before the scaling fix) ------------------------------------------------
def old_auto_hidden(n):
    return max(2048, -(-n // 512) * 512)


@torch.no_grad()
def old_ridge_output_layer(h, y, ridge):
    h_mean, y_mean = h.mean(0), y.mean(0)
    hc, yc = (h - h_mean).double(), (y - y_mean).double()
    n, m = hc.shape
    lam = ridge * float((hc * hc).sum()) / n
    if n <= m:
        W_t = hc.T @ torch.linalg.solve(hc @ hc.T + lam * torch.eye(n, dtype=hc.dtype), yc)
    else:
        W_t = torch.linalg.solve(hc.T @ hc + lam * torch.eye(m, dtype=hc.dtype), hc.T @ yc)
    W = W_t.T.float()
    return W, (y_mean - h_mean @ W.T)


@torch.no_grad()
def old_readout_top1(readout, x, y):
    return float((readout(x.float()).argmax(-1) == y).float().mean()) if len(y) else math.nan


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- the fix: identical at and below 4,096 items ----------------------------------------------------
def test_auto_width_is_unchanged_up_to_the_cap_and_stops_there():
    for n in (2, 1682, 2048, 2049, 3000, 4096):
        assert align.auto_hidden(n) == old_auto_hidden(n)
    assert align.auto_hidden(4097) == align.auto_hidden(100_000) == align.AUTO_HIDDEN_MAX == 4096
    assert old_auto_hidden(100_000) > 4096  # what made the fit grow with the square of the items


@pytest.mark.parametrize("n,m", [(300, 512), (700, 512), (4096, 4096)])
def test_ridge_solve_is_bit_identical_while_one_block_holds_the_items(n, m):
    g = _gen(n)
    h, y = torch.randn(n, m, generator=g), torch.randn(n, 24, generator=g)
    if n == 4096:  # the largest catalogue the old width covered: keep the test fast with a narrow target
        h, y = h[:, :64].repeat(1, 64), y[:, :4]
    W, b = align._ridge_output_layer(h, y, 1e-3)
    W0, b0 = old_ridge_output_layer(h, y, 1e-3)
    assert torch.equal(W, W0) and torch.equal(b, b0)


def test_ridge_solve_in_blocks_matches_the_one_piece_solve(monkeypatch):
    g = _gen(1)
    h, y = torch.randn(900, 64, generator=g), torch.randn(900, 12, generator=g)
    monkeypatch.setattr(align, "ROWS", 128)  # 900 items > 64 features: the primal solve, in 8 blocks
    W, b = align._ridge_output_layer(h, y, 1e-3)
    W0, b0 = old_ridge_output_layer(h, y, 1e-3)
    assert torch.allclose(W, W0, atol=1e-5) and torch.allclose(b, b0, atol=1e-5)
    assert not torch.equal(W, torch.zeros_like(W))


def old_fit_report(items, targets, cfg):
    """The old fit_item_aligner's ridge path, condensed to what it returned: weights and report numbers."""
    from recinterp.adapter import build_adapter

    n, d = items.shape
    k, dl = targets.shape[1], targets.shape[2]
    x, y = items.float(), targets.reshape(n, k * dl).float()
    hidden = cfg.hidden or old_auto_hidden(n)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        a = build_adapter(kind="mlp2x_gelu", d_in=d, d_llm=dl, n_positions=1, n_tokens=k, hidden=hidden,
                          standardize=True, input="item")
    net = a.layers.net
    net[0].mean.copy_(x.mean(0))
    net[0].std.copy_(x.std(0).clamp(min=1e-6))
    with torch.no_grad():
        rep = {"hidden": hidden, "mean_predictor_mse": float(((y - y.mean(0)) ** 2).mean())}
        h = net[2](net[1](net[0](x)))
        W, b = old_ridge_output_layer(h, y, cfg.ridge)
        net[3].weight.copy_(W)
        net[3].bias.copy_(b)
        rep["ridge_mse"] = float(((h @ W.T + b - y) ** 2).mean())
        rep["mse"] = float(F.mse_loss(net(x), y))
    return a, rep


def _same_fit(items, targets, cfg):
    new, rep = align.fit_item_aligner(items, targets, cfg)
    old, rep0 = old_fit_report(items, targets, cfg)
    for key, v in rep0.items():
        assert rep[key] == v, key
    for (k, v), (k0, v0) in zip(new.state_dict().items(), old.state_dict().items()):
        assert k == k0 and torch.equal(v, v0), k
    assert "mse_items" not in rep
    return new


def test_item_aligner_is_bit_identical_on_a_small_catalogue():
    g = _gen(2)
    _same_fit(torch.randn(120, 16, generator=g) * 3 + 1, torch.randn(120, 4, 24, generator=g), align.AlignConfig(k=4))


def test_item_aligner_is_bit_identical_at_movielens_size():
    """Real-size random inputs: 1,682 items of width 64, k = 8 tokens of SmolLM2's width 576 (a few seconds)."""
    g = _gen(3)
    items, targets = torch.randn(1682, 64, generator=g), torch.randn(1682, 8, 576, generator=g) * 0.05
    aligner = _same_fit(items, targets, align.AlignConfig())
    assert aligner.cfg.hidden == 2048


def test_item_aligner_above_the_cap_reports_its_sample(monkeypatch):
    monkeypatch.setattr(align, "AUTO_HIDDEN_MAX", 2048)
    monkeypatch.setattr(align, "ROWS", 1024)
    g = _gen(4)
    n = 2600  # > the patched cap: 2,048 features for 2,600 items, the primal solve in three blocks
    items, targets = torch.randn(n, 8, generator=g), torch.randn(n, 2, 6, generator=g)
    aligner, rep = align.fit_item_aligner(items, targets, align.AlignConfig(k=2))
    assert rep["hidden"] == aligner.cfg.hidden == 2048 and rep["mse_items"] == 1024
    assert rep["mse"] < rep["mean_predictor_mse"]


def test_readout_top1_in_blocks_is_the_one_piece_share(monkeypatch):
    g = _gen(5)
    lin = torch.nn.Linear(8, 50)
    x, y = torch.randn(333, 8, generator=g), torch.randint(50, (333,), generator=g)
    y[:40] = lin(x[:40]).argmax(-1)  # some hits
    full = old_readout_top1(lin, x, y)
    assert align.readout_top1(lin, x, y) == full  # 333 x 50 logits: under the limit, the old code path
    monkeypatch.setattr(align, "MAX_LOGITS", 50 * 7)  # 7 rows per block
    assert align.readout_top1(lin, x, y) == pytest.approx(full, abs=1e-12) and full >= 40 / 333


def test_catalogue_aligner_samples_its_top1_only_above_the_limit(tmp_path, monkeypatch):
    from recinterp.tasks.aligned import catalogue_aligner

    llm = tiny_llm(hidden=8, layers=1, heads=2)
    ds = syn.synthetic_dataset(60, n_users=12, seq_len=(4, 8))
    enc = syn.random_encoder(60, d=8)
    _, rep = catalogue_aligner(enc, ds, llm, tmp_path / "a", {"k": 2, "hidden": 64})
    assert "token_top1_sampled_items" not in rep and 0 <= rep["token_top1_fitted_items"] <= 1
    monkeypatch.setattr(align, "TOP1_MAX_ITEMS", 16)
    _, rep = catalogue_aligner(enc, ds, llm, tmp_path / "b", {"k": 2, "hidden": 64})
    assert rep["token_top1_sampled_items"] == 16


# -- the large-catalogue knob: a sampled softmax for the readout -------------------------------------
def _separable(n_items=40, m=600, d=12, seed=6):
    g = _gen(seed)
    protos = torch.randn(n_items, d, generator=g) * 3
    y = torch.randint(n_items, (m,), generator=g)
    return protos[y] + 0.3 * torch.randn(m, d, generator=g), y


def test_readout_negatives_off_or_covering_the_catalogue_is_the_full_softmax():
    x, y = _separable()
    full = align.fit_linear_readout(x, y, 40, epochs=2, seed=1)
    for neg in (None, 0, 40, 100):  # None: auto, the full softmax at 40 items
        other = align.fit_linear_readout(x, y, 40, epochs=2, seed=1, negatives=neg)
        assert torch.equal(full.weight, other.weight) and torch.equal(full.bias, other.bias)


def test_readout_default_samples_only_above_the_threshold(monkeypatch):
    assert align.auto_negatives(1682) == align.auto_negatives(align.AUTO_SAMPLED_ABOVE) == 0
    assert align.auto_negatives(align.AUTO_SAMPLED_ABOVE + 1) == align.AUTO_NEGATIVES < align.AUTO_SAMPLED_ABOVE
    monkeypatch.setattr(align, "AUTO_SAMPLED_ABOVE", 30)
    monkeypatch.setattr(align, "AUTO_NEGATIVES", 8)
    x, y = _separable()  # 40 items: above the lowered threshold
    auto = align.fit_linear_readout(x, y, 40, epochs=2, seed=1)
    sampled = align.fit_linear_readout(x, y, 40, epochs=2, seed=1, negatives=8)
    full = align.fit_linear_readout(x, y, 40, epochs=2, seed=1, negatives=0)
    assert torch.equal(auto.weight, sampled.weight) and not torch.equal(auto.weight, full.weight)


def test_readout_negatives_learn_and_are_seeded():
    x, y = _separable()
    a = align.fit_linear_readout(x, y, 40, epochs=15, batch_size=64, lr=3e-2, seed=1, negatives=8)
    b = align.fit_linear_readout(x, y, 40, epochs=15, batch_size=64, lr=3e-2, seed=1, negatives=8)
    assert torch.equal(a.weight, b.weight)
    start = align.readout_top1(torch.nn.Linear(12, 40), x, y)
    assert align.readout_top1(a, x, y) > max(0.8, start + 0.5)
    with pytest.raises(ValueError, match="negatives"):
        align.fit_linear_readout(x, y, 40, negatives=-1)


def test_fit_readout_passes_the_preset_knob(monkeypatch):
    from recinterp.cases import Cases
    from recinterp.tasks.aligned import fit_readout

    g = _gen(7)
    feats, ans = torch.randn(30, 1, 4, 8, generator=g), torch.randint(20, (30, 4), generator=g)
    cases = Cases("recovery", "all", feats, ans, ans.clone(), {}, {"n_items": 20})
    seen = {}
    real = align.train_linear_sampled

    def spy(lin, x, y, negatives, **kw):
        seen["negatives"] = negatives
        return real(lin, x, y, negatives, **kw)

    monkeypatch.setattr(align, "train_linear_sampled", spy)
    _, rep = fit_readout(cases, torch.randn(20, 8), epochs=1, negatives=5)
    assert seen == {"negatives": 5} and rep["n_pairs"] == 120


# -- the benchmark's helpers -------------------------------------------------------------------------
def test_growth_exponent_recovers_a_power_law():
    sizes = [5000, 20000, 100000]
    assert bench_scale.growth_exponent(sizes, [3 * s for s in sizes]) == pytest.approx(1.0)
    assert bench_scale.growth_exponent(sizes, [1e-6 * s ** 2 for s in sizes]) == pytest.approx(2.0)
    assert math.isnan(bench_scale.growth_exponent([5000], [1.0]))
    rows = [{"items": s, "stages": {"readout": {"wall_s": s ** 1.5, "cpu_s": s, "peak_extra_mb": 7.0}}}
            for s in (1000, 5000, 20000)]
    ex = bench_scale.exponents(rows, fit_from=5000)
    assert ex["readout"]["wall_s"] == pytest.approx(1.5) and ex["readout"]["peak_extra_mb"] == pytest.approx(0.0)


def test_stage_measures_time_and_memory():
    import mmap

    # 64 MiB of fresh anonymous pages, each touched: new to the process whatever it allocated and freed before
    # (a malloc'd block can reuse freed heap that is still resident and add nothing to the RSS).
    size = 64 * 2 ** 20
    with bench_scale.Stage(interval=0.001) as s:
        block = mmap.mmap(-1, size)
        for i in range(0, size, mmap.PAGESIZE):
            block[i] = 1
        sum(range(200000))
    r = s.result
    assert r["wall_s"] > 0 and r["cpu_s"] > 0 and r["peak_rss_mb"] >= r["peak_extra_mb"] >= 48
    block.close()


def test_synthetic_titles_look_like_movielens_and_are_distinct():
    from recinterp.data.titles import normalize_title

    t = syn.synthetic_titles(3000, seed=1)
    assert len(set(t)) == 3000 and t == syn.synthetic_titles(3000, seed=1)
    assert all(x.endswith(")") and x[-5:-1].isdigit() for x in t)
    assert any(", The (" in x for x in t) and all(normalize_title(x) for x in t)
    with pytest.raises(ValueError, match="at least one item"):
        syn.synthetic_titles(0)


def test_synthetic_dataset_holds_the_log_fixed_across_sizes(tmp_path):
    small, big = syn.synthetic_dataset(50, n_users=30), syn.synthetic_dataset(500, n_users=30)
    assert small.n_items == 50 and len(small.catalogue.norm_titles) == 50
    assert len(small.train) == len(big.train) and len(small.test) == len(small.val) == 3
    for ds in (small, big):
        assert int(ds.train.next.max()) < ds.n_items and int(ds.train.seqs.max()) <= ds.pad_id
    folder = syn.write_log_folder(tmp_path / "log", 50, n_users=30)
    from recinterp.data.log import build_log_dataset

    ds, stats = build_log_dataset(folder / "interactions.csv", folder / "items.csv")
    assert stats["users"] == 30 and ds.n_items <= 50


def test_benchmark_runs_end_to_end_on_tiny_sizes(tmp_path, capsys):
    import bench_scale as b

    llm = tiny_llm(hidden=8, layers=1, heads=2)
    row = b.run_size(80, llm, users=20, readout_epochs=1, negatives=8, eval_cases=2, max_new_tokens=4)
    assert set(row["stages"]) == set(b.STAGES)
    assert row["aligner"]["hidden"] == 2048 and row["readout"]["n_pairs"] > 0
    rep = {"rows": [row, {**row, "items": 160}], "fit_from": 80}
    rep["exponents"] = b.exponents(rep["rows"], 80)
    md = b.markdown(rep)
    assert md.count("\n") == 2 + len(b.STAGES) and "| aligner |" in md
    assert b.main(["--sizes", "40", "60", "--users", "10", "--no-llm", "--fit-from", "40",
                   "--out", str(tmp_path)]) == 0
    assert (tmp_path / "scale.json").exists() and "readout" in (tmp_path / "scale.md").read_text()
