"""The paper's route must light on a world where it can: 16 one-word titles, random 64-d item vectors,
the paper's linear adapter trained through the frozen embedded SmolLM2 (recinterp.must_light).

Asserts on the *generated* answers, beside the shuffled and zeroed controls: the adapter must teach
the LLM to name the items, not just lower a loss.  About a minute on two CPU cores."""
import pytest
import torch

from recinterp.adapter import build_adapter, fit_input_stats, llm_token_norm, match_output_norm
from recinterp.must_light import TITLES, must_light_world, run_must_light


@pytest.fixture(scope="module")
def llm():
    from recinterp.llm import load_llm

    try:
        return load_llm()
    except FileNotFoundError as e:  # the embedded LLM's wheel is part of make setup
        pytest.skip(str(e))


def test_the_paper_route_names_items_above_both_controls(llm):
    torch.manual_seed(0)
    res = run_must_light(llm, steps=40, lr=3e-3, out_norm=False, norm_init=False)  # the route as the authors build it
    gen = res["generation"]
    hit = gen["model"]["hit"]
    assert hit["n"] == 16
    assert hit["mean"] >= 0.5, gen["model"]["texts"]
    for control in ("shuffled", "zero"):
        assert gen[control]["hit"]["mean"] <= 0.125
        assert gen[f"model_vs_{control}"]["lo"] > 0  # paired 95% CI above zero
    losses = [h["loss"] for h in res["train"]]
    assert losses[-1] < losses[0]


def test_the_world_and_the_scale_fixes():
    enc, titles, cases = must_light_world(8, d=16, seed=1)
    assert titles == list(TITLES[:8]) and enc.n_items == 8
    assert cases.features.shape == (8, 1, 1, 16) and cases.answers[:, 0].tolist() == list(range(8))
    with pytest.raises(ValueError, match="2..16 items"):
        must_light_world(17)
    x = cases.features[:, 0] * 0.07 + 0.5  # item-table scale: tiny, uncentred
    a = build_adapter(kind="linear", d_in=16, d_llm=12, n_tokens=2, standardize=True)
    fit_input_stats(a, x)
    z = a.layers.net[0](x)  # the Standardize layer
    assert torch.allclose(z.reshape(-1, 16).mean(0), torch.zeros(16), atol=1e-5)
    match_output_norm(a, x, 3.2)
    assert a(x).norm(dim=-1).mean().item() == pytest.approx(3.2, rel=1e-4)
    b = build_adapter(kind="linear", d_in=16, d_llm=12, n_tokens=2, out_norm=3.2)
    assert torch.allclose(b(x).norm(dim=-1), torch.full((8, 2), 3.2), atol=1e-4)
    with pytest.raises(ValueError, match="out_norm"):
        build_adapter(kind="linear", d_in=16, d_llm=12, out_norm=-1.0)
    with pytest.raises(ValueError, match="non-zero input rows"):
        fit_input_stats(a, torch.zeros(4, 1, 16))
    c = build_adapter(kind="conv_pool", d_in=16, d_llm=12, n_positions=3, standardize=True)
    fit_input_stats(c, torch.randn(5, 3, 16) * 4 + 2)
    assert c(torch.randn(5, 3, 16)).shape == (5, 1, 12)


def test_llm_token_norm_reads_the_input_embeddings():
    from recinterp.llm import tiny_llm

    small = tiny_llm()
    w = small.model.get_input_embeddings().weight
    assert llm_token_norm(small) == pytest.approx(float(w.norm(dim=-1).mean()), rel=1e-6)


def test_least_squares_init_recovers_a_linear_map():
    from recinterp.adapter import least_squares_init

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 1, 8, generator=g) * 0.1 + 0.3
    W, b = torch.randn(8, 2 * 6, generator=g), torch.randn(2 * 6, generator=g)
    y = (x[:, 0] @ W + b).view(200, 2, 6)
    a = build_adapter(kind="linear", d_in=8, d_llm=6, n_tokens=2, standardize=True)
    fit_input_stats(a, x)
    least_squares_init(a, x, y, ridge=1e-9)
    assert torch.allclose(a(x), y, atol=1e-3)
    with pytest.raises(ValueError, match="targets"):
        least_squares_init(a, x, y[:, :1])
    with pytest.raises(ValueError, match="one-position linear"):
        least_squares_init(build_adapter(kind="conv_pool", d_in=8, d_llm=6, n_positions=2), x, y)
