"""DreamRec: schedule math against closed forms, guidance, sampling, bridge."""
import math

import pytest
import torch

from recinterp.models.dreamrec import (SCHEDULES, DiffusionSchedule, DreamRec, DreamRecConfig, apply_bridge,
                                       bridge_r2, bridge_report, fit_embedding_bridge, guidance_mix, make_betas)


N_ITEMS, D = 30, 16


def model(**kw):
    torch.manual_seed(0)
    return DreamRec(DreamRecConfig(n_items=N_ITEMS, d=D, **{"T": 20, **kw})).eval()


def batch(B=4):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, N_ITEMS, (B, 10), generator=g)
    lens = torch.tensor([1, 4, 10, 7][:B])
    ids[torch.arange(10)[None] >= lens[:, None]] = N_ITEMS
    return ids, lens


@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("T", [1, 50, 500])
def test_schedule_alpha_bar_monotone(kind, T):
    s = DiffusionSchedule(kind, T)
    b, ab = s.betas.double(), s.alphas_cumprod.double()
    assert b.shape == (T,) and torch.all(b > 0) and torch.all(b < 1)
    assert torch.all(ab > 0) and torch.all(ab <= 1) and torch.all(ab[1:] < ab[:-1])
    assert torch.allclose(s.sqrt_ab ** 2 + s.sqrt_one_minus_ab ** 2, torch.ones(T), atol=1e-6)


def test_schedule_closed_forms():
    assert torch.allclose(make_betas("linear", 5, 1e-4, 0.02),
                          torch.tensor([1e-4, 0.005075, 0.01005, 0.015025, 0.02], dtype=torch.float64))
    T, s = 100, 0.008
    ab = torch.cumprod(1 - make_betas("cosine", T), 0)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (10, 50, 90):  # away from the clipped ends
        assert abs(float(ab[t]) - f(t + 1) / f(0)) < 1e-6
    ab = torch.cumprod(1 - make_betas("sqrt", T), 0)
    for t in (10, 50, 90):
        assert abs(float(ab[t]) - (1 - math.sqrt((t + 1) / T + 1e-4)) / (1 - math.sqrt(1e-4))) < 1e-6
    # exp: -log alpha-bar_t = sum_{i<=t} (0.1/T + x_i * 0.5 * 9.9 / T^2), x_i = 1 + 2iT/(T-1);
    # close to the VP-SDE integral 0.1 u + 4.95 u^2 at u = (t+1)/T
    ab = torch.cumprod(1 - make_betas("exp", T), 0)
    for t in (10, 50, 99):
        sum_x = (t + 1) + (2 * T / (T - 1)) * t * (t + 1) / 2
        assert abs(float(ab[t]) - math.exp(-(0.1 * (t + 1) / T + sum_x * 0.5 * 9.9 / T ** 2))) < 1e-9
        u = (t + 1) / T
        assert abs(float(ab[t]) - math.exp(-(0.1 * u + 4.95 * u * u))) < 1e-2


@pytest.mark.parametrize("kind", SCHEDULES)
def test_posterior_matches_gaussian_conditioning(kind):
    """q(x_{t-1} | x_t, x0) from the product of N(x_{t-1}; sqrt(ab') x0, 1-ab') and
    N(x_t; sqrt(a) x_{t-1}, b): precision 1/(1-ab') + a/b, mean var * (sqrt(ab') x0/(1-ab') + sqrt(a) x_t/b)."""
    s = DiffusionSchedule(kind, 200)
    b = make_betas(kind, 200); a = 1 - b  # float64 reference (the buffers are float32)
    ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(a, 0)[:-1]])
    for t in (1, 37, 199):
        var = 1 / (1 / (1 - ab_prev[t]) + a[t] / b[t])
        c1 = var * ab_prev[t].sqrt() / (1 - ab_prev[t])
        c2 = var * a[t].sqrt() / b[t]
        assert torch.isclose(s.posterior_var[t].double(), var, rtol=1e-4)
        assert torch.isclose(s.coef1[t].double(), c1, rtol=1e-4)
        assert torch.isclose(s.coef2[t].double(), c2, rtol=1e-4)
    assert float(s.coef1[0]) == pytest.approx(1.0) and float(s.coef2[0]) == pytest.approx(0.0, abs=1e-7)
    assert float(s.posterior_var[0]) == 0.0


def test_guidance_mix_formula():
    m = model(w=2.5)
    x, c = torch.randn(3, D), torch.randn(3, D)
    t = torch.tensor([0, 5, 19])
    f_c = m.denoiser(x, c, t)
    f_u = m.denoiser(x, m.none_embedding.expand(3, -1), t)
    assert torch.allclose(m.guided_x0(x, c, t, 2.5), 3.5 * f_c - 2.5 * f_u, atol=1e-5)
    assert torch.allclose(m.guided_x0(x, c, t, 0.0), f_c, atol=1e-6)
    assert torch.equal(guidance_mix(torch.ones(2), torch.zeros(2), 2.0), torch.full((2,), 3.0))


def test_sampling_shapes_and_seeded_reproducibility():
    m = model()
    ids, lens = batch()
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    x1 = m.sample_ideal(ids, lens, generator=g(1))
    x2 = m.sample_ideal(ids, lens, generator=g(1))
    x3 = m.sample_ideal(ids, lens, generator=g(2))
    assert x1.shape == (4, D) and x1.dtype == torch.float32 and torch.isfinite(x1).all()
    assert torch.equal(x1, x2) and not torch.allclose(x1, x3)
    assert not torch.allclose(x1, m.sample_ideal(ids, lens, w=0.0, generator=g(1)))
    s = m.scores(x1)
    assert s.shape == (4, N_ITEMS)
    assert torch.allclose(s, x1 @ m.item_embeddings.weight[:N_ITEMS].T)
    assert torch.equal(m.score_sequences(ids, lens, generator=g(1)), s)


def test_unconditional_embedding_is_trained():
    torch.manual_seed(0)
    m = DreamRec(DreamRecConfig(n_items=N_ITEMS, d=D, T=20, p_uncond=0.9)).train()
    ids, lens = batch()
    m.loss(ids, lens, torch.tensor([1, 2, 3, 4])).backward()
    assert m.none_embedding.grad is not None and m.none_embedding.grad.abs().sum() > 0
    assert m.item_embeddings.weight.grad[[1, 2, 3, 4]].abs().sum() > 0  # target embeddings train jointly


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="schedule"):
        DreamRec(DreamRecConfig(n_items=5, schedule="quadratic"))
    with pytest.raises(ValueError, match="denoiser"):
        DreamRec(DreamRecConfig(n_items=5, denoiser="unet"))
    m = model()
    ids, lens = batch()
    with pytest.raises(ValueError, match="target"):
        m.loss(ids, lens, torch.tensor([0, 1, 2, N_ITEMS]))
    with pytest.raises(ValueError, match="lens"):
        m.sample_ideal(ids, torch.tensor([0, 1, 1, 1]))
    bad = ids.clone(); bad[2, 0] = N_ITEMS + 3
    with pytest.raises(ValueError, match="out of range"):
        m.sample_ideal(bad, lens)


def test_mlp2_denoiser_runs():
    m = model(denoiser="mlp2", schedule="linear")
    ids, lens = batch()
    assert m.sample_ideal(ids, lens, generator=torch.Generator().manual_seed(0)).shape == (4, D)


def test_bridge_recovers_an_affine_map():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(300, 8, generator=g)
    W0, b0 = torch.randn(8, 5, generator=g), torch.randn(5, generator=g)
    dst = src @ W0 + b0
    W, b = fit_embedding_bridge(src, dst, ridge=0.0)
    assert torch.allclose(W, W0, atol=1e-4) and torch.allclose(b, b0, atol=1e-4)
    assert bridge_r2(src, dst, W, b) == pytest.approx(1.0, abs=1e-8)
    assert torch.allclose(apply_bridge(src[:3], W, b), dst[:3], atol=1e-4)
    # unrelated tables: in-sample R^2 is small, held-out R^2 is about zero or below
    rep = bridge_report(src, torch.randn(300, 5, generator=g))
    assert rep["r2_all"] < 0.1 and rep["r2_heldout"] < 0.05 and rep["n_heldout"] == 60
    with pytest.raises(ValueError, match="same N"):
        fit_embedding_bridge(src, dst[:10])


def test_frozen_item_table_variant(tmp_path):
    from recinterp.models import load_checkpoint, save_checkpoint
    g = torch.Generator().manual_seed(0)
    table = 0.02 * torch.randn(N_ITEMS + 1, D, generator=g)  # e.g. a trained SASRec's table (with padding row)
    torch.manual_seed(0)
    m = DreamRec(DreamRecConfig(n_items=N_ITEMS, d=D, T=10, item_source="frozen"), item_table=table)
    assert m.cfg.item_scale == pytest.approx(float(table[:N_ITEMS].std()))
    assert not m.item_embeddings.weight.requires_grad
    assert torch.allclose(m.item_embeddings.weight[:N_ITEMS] * m.cfg.item_scale, table[:N_ITEMS], atol=1e-7)
    ids, lens = batch()
    m.train()
    m.loss(ids, lens, torch.tensor([1, 2, 3, 4])).backward()
    assert m.item_embeddings.weight.grad is None  # the table does not move
    m.eval()
    x = m.sample_ideal(ids, lens, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m.to_source_space(x), x * m.cfg.item_scale)
    save_checkpoint(m, tmp_path, "toy", name="dreamrec_frozen")
    back = load_checkpoint(tmp_path, "toy", "dreamrec_frozen")
    assert back.cfg.item_scale == m.cfg.item_scale and not back.item_embeddings.weight.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), back.state_dict().values()))
    with pytest.raises(ValueError, match="item_table"):
        DreamRec(DreamRecConfig(n_items=N_ITEMS, d=D, item_source="frozen"))
    with pytest.raises(ValueError, match="source space"):
        model().to_source_space(x)


# -- the objectives (DreamRecConfig.objective) on a tiny world: next item = last item + 1 ------------------
def world(B=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    last = torch.randint(0, N_ITEMS, (B,), generator=g)
    ids = torch.full((B, 10), N_ITEMS)
    ids[:, 0] = last
    return ids, torch.ones(B, dtype=torch.long), (last + 1) % N_ITEMS


def train(m, steps=150, lr=5e-3):
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=lr)
    m.train()
    losses = []
    for step in range(steps):
        ids, lens, nxt = world(seed=step)
        loss = m.loss(ids, lens, nxt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return m.eval(), losses


@pytest.mark.parametrize("objective", ["mse", "cosine", "softmax", "preferdiff"])
def test_every_objective_lowers_its_loss(objective):
    _, losses = train(model(objective=objective))
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:20]) / 20


def test_the_item_norm_diagnostic_flags_the_faithful_collapse():
    faithful = model(objective="mse")  # the authors' set-up: a learned N(0, 1) table, MSE
    before = faithful.diagnostics()["item_norm_mean"]
    after = train(faithful, steps=300)[0].diagnostics()["item_norm_mean"]
    assert after < 0.7 * before  # the MSE shrinks its own targets
    ranked = model(objective="softmax")  # a cosine error cannot be lowered by shrinking: the norms hold
    before = ranked.diagnostics()["item_norm_mean"]
    assert train(ranked, steps=300)[0].diagnostics()["item_norm_mean"] > 0.95 * before
    table = torch.randn(N_ITEMS, D)
    frozen = DreamRec(DreamRecConfig(n_items=N_ITEMS, d=D, T=20, item_source="frozen"), item_table=table)
    before = frozen.diagnostics()["item_norm_mean"]
    assert train(frozen, steps=50)[0].diagnostics()["item_norm_mean"] == pytest.approx(before)


@pytest.mark.parametrize("objective", ["softmax", "preferdiff"])
def test_the_preference_terms_rank_the_target_above_the_negatives(objective):
    m, _ = train(model(objective=objective, w=0.0), steps=300)
    ids, lens, nxt = world(B=200, seed=999)
    with torch.no_grad():
        x0 = m.denoiser(torch.zeros(200, D), m.condition(ids, lens), torch.zeros(200, dtype=torch.long))
        cos = torch.nn.functional.normalize(x0, dim=-1) @ torch.nn.functional.normalize(m.item_embeddings.weight[:N_ITEMS], dim=-1).T
    target = cos.gather(1, nxt[:, None]).squeeze(1)
    assert (target > cos.mean(1)).float().mean() > 0.9  # the target beats the average negative
    assert (cos.argmax(1) == nxt).float().mean() > 0.5  # and is the top item for most histories (chance: 1/30)


def test_objective_settings_are_checked():
    with pytest.raises(ValueError, match="objective"):
        model(objective="hinge")
    with pytest.raises(ValueError, match="lam"):
        model(objective="softmax", lam=1.5)
    with pytest.raises(ValueError, match="item_table"):
        DreamRec(DreamRecConfig(n_items=N_ITEMS, d=D, T=20, item_source="pretrained"))
    pre = DreamRec(DreamRecConfig(n_items=N_ITEMS, d=D, T=20, item_source="pretrained"), item_table=torch.randn(N_ITEMS, D))
    assert pre.item_embeddings.weight.requires_grad
