"""A new adapter kind is one function and one registration (``register_adapter``), like a new encoder: then it
builds by name, trains through train_adapter, saves and loads."""
import pytest
import torch
import torch.nn as nn

from recinterp.adapter import ADAPTERS, AdapterConfig, build_adapter, load_adapter, register_adapter, tokens_per_position
from recinterp.interpreter import Interpreter
from recinterp.llm import tiny_llm
from recinterp.train_adapter import TrainConfig, train_adapter
from synthetic_data import pair_cases

N_ITEMS = 25
TITLES = [f"Film {i}" for i in range(N_ITEMS)]


class Gated(nn.Module):
    """Per position: a sigmoid gate times a linear map of the state (t soft tokens per position)."""

    def __init__(self, d_in: int, t: int, d_llm: int):
        super().__init__()
        self.gate, self.proj, self.t, self.d_llm = nn.Linear(d_in, 1), nn.Linear(d_in, t * d_llm), t, d_llm

    def forward(self, x):
        B, P, _ = x.shape
        return (torch.sigmoid(self.gate(x)) * self.proj(x)).view(B, P * self.t, self.d_llm)


@register_adapter("gated_test")
def gated(cfg: AdapterConfig) -> nn.Module:
    return Gated(cfg.d_in, tokens_per_position(cfg), cfg.d_llm)


def test_a_registered_kind_builds_by_name_trains_a_step_and_reloads(tmp_path):
    _, cases = pair_cases(16, N_ITEMS)
    llm = tiny_llm()
    adapter = build_adapter(kind="gated_test", d_in=16, d_llm=llm.hidden_size, n_tokens=2, input="pair")
    assert isinstance(adapter.layers, Gated) and adapter(cases.features[:3, 0]).shape == (3, 2, llm.hidden_size)
    before = {k: v.clone() for k, v in adapter.state_dict().items()}
    hist = train_adapter(Interpreter(llm, adapter), cases, TITLES, TrainConfig(max_steps=1, batch_size=8), progress=False)
    assert hist["steps"] == 1 and all(not torch.equal(v, adapter.state_dict()[k]) for k, v in before.items())
    back = load_adapter(adapter.save(tmp_path / "gated"), d_llm=llm.hidden_size)
    assert back.cfg.kind == "gated_test" and isinstance(back.layers, Gated)
    x = cases.features[:4, 0]
    assert torch.equal(back(x), adapter(x))


def test_an_unknown_kind_names_the_registered_ones():
    assert {"linear", "conv_pool", "mlp2x_gelu", "structured", "gated_test"} <= set(ADAPTERS)
    with pytest.raises(ValueError, match="unknown adapter kind 'nope'.*gated_test.*register_adapter"):
        build_adapter(kind="nope")
    with pytest.raises(ValueError, match="needs a function"):
        register_adapter("broken", 3)
