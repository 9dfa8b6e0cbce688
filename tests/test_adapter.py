"""recinterp.adapter: the adapter factory, persistence, initialisation."""
import pytest
import torch

from recinterp.adapter import AdapterConfig, build_adapter, init_from, load_adapter


@pytest.mark.parametrize("kind,P,k", [("linear", 10, 10), ("linear", 1, 4), ("conv_pool", 10, 1), ("conv_pool", 10, 3),
                                      ("mlp2x_gelu", 1, 2), ("mlp2x_gelu", 10, 10)])
def test_shapes(kind, P, k):
    proj = build_adapter(kind=kind, d_in=8, d_llm=16, n_positions=P, n_tokens=k)
    assert proj(torch.randn(5, P, 8)).shape == (5, k, 16)


def test_linear_is_per_position():
    proj = build_adapter(kind="linear", d_in=4, d_llm=6, n_positions=3, n_tokens=3)
    x = torch.randn(2, 3, 4)
    out = proj(x)
    x2 = x.clone()
    x2[:, 1] += 1.0  # changing position 1 changes only soft token 1
    out2 = proj(x2)
    assert torch.equal(out[:, [0, 2]], out2[:, [0, 2]]) and not torch.equal(out[:, 1], out2[:, 1])


def test_conv_pool_is_one_learned_pooling_then_one_linear():
    proj = build_adapter(kind="conv_pool", d_in=4, d_llm=6, n_positions=10, n_tokens=1)
    assert proj.layers.pool.weight.shape == (1, 1, 10, 1)
    with torch.no_grad():
        proj.layers.pool.weight.fill_(0.1)
        proj.layers.pool.bias.zero_()
    x = torch.randn(3, 10, 4)
    expected = proj.layers.proj(x.sum(1) * 0.1).view(3, 1, 6)
    assert torch.allclose(proj(x), expected, atol=1e-6)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="unknown adapter kind"):
        build_adapter(kind="qformer")
    with pytest.raises(ValueError, match="multiple"):
        build_adapter(kind="linear", n_positions=10, n_tokens=4)
    with pytest.raises(ValueError, match="unknown adapter option"):
        build_adapter(kind="linear", n_heads=3)
    proj = build_adapter(kind="linear", d_in=8, d_llm=16)
    with pytest.raises(ValueError, match=r"\(B, 1, 8\)"):
        proj(torch.randn(2, 1, 7))


def test_save_load_round_trip_and_width_check(tmp_path):
    proj = build_adapter(kind="conv_pool", d_in=8, d_llm=16, n_positions=10, n_tokens=2,
                         encoder="sasrec", dataset="movielens", llm="tiny", task="recovery", input="all")
    proj.save(tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["SHA256SUMS", "adapter.safetensors", "adapter_config.json"]
    back = load_adapter(tmp_path / "a", d_llm=16)
    assert back.cfg == proj.cfg
    x = torch.randn(3, 10, 8)
    assert torch.equal(back(x), proj(x))  # the pooling conv is saved too (the authors' code lost it)
    with pytest.raises(ValueError, match="width 16"):
        load_adapter(tmp_path / "a", d_llm=32)
    with pytest.raises(FileNotFoundError):
        load_adapter(tmp_path / "missing")


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu", "conv_pool"])
def test_pair_adapter_starts_as_the_item_adapter_on_the_difference(kind):
    P = 10 if kind == "conv_pool" else 1
    item = build_adapter(kind=kind, d_in=4, d_llm=8, n_positions=P, n_tokens=P if kind != "conv_pool" else 2)
    if kind == "conv_pool":  # exact only without a pooling bias (it is added to both halves, then cancels)
        torch.nn.init.zeros_(item.layers.pool.bias)
    pair = build_adapter(AdapterConfig(**{**vars(item.cfg), "d_in": 8, "input": "pair"}))
    init_from(pair, item)
    hb, ha = torch.randn(3, P, 4), torch.randn(3, P, 4)
    assert torch.allclose(pair(torch.cat([hb, ha], -1)), item(ha - hb), atol=1e-5)
    same = build_adapter(AdapterConfig(**vars(item.cfg)))
    init_from(same, item)
    assert torch.equal(same(ha), item(ha))
    with pytest.raises(ValueError, match="cannot initialise"):
        init_from(build_adapter(kind=kind, d_in=3, d_llm=8, n_positions=P, n_tokens=item.cfg.n_tokens), item)
