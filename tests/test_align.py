"""recinterp.align: token-space targets, the item aligner, readouts, the structured adapter."""
import pytest
import torch

from recinterp import align
from recinterp.interpreter import Interpreter
from recinterp.llm import SLOT_TOKEN, tiny_llm
from recinterp.adapter import load_adapter
from recinterp.prompts import RECOVERY, build_prompt


@pytest.fixture(scope="module")
def llm():
    return tiny_llm(hidden=16, layers=1, heads=2)


TITLES = ["Heat", "Alien (1979)", "Amélie", "Up", "Se7en", "Toy Story", "M", "Jaws", "Fargo", "Babe", "Big", "Ran"]


def test_targets_are_the_llms_own_title_token_embeddings(llm):
    t, lens = align.title_token_targets(llm, TITLES, k=4)
    assert t.shape == (len(TITLES), 4, 16)
    E = llm.model.get_input_embeddings().weight
    ids = llm.tokenizer("Heat", add_special_tokens=False)["input_ids"]  # byte tokenizer: 4 tokens
    assert lens[0] == 4 and torch.equal(t[0], E[torch.tensor(ids)])
    assert lens[6] == 1 and torch.equal(t[6, 0], E[ids[:0] + llm.tokenizer("M", add_special_tokens=False)["input_ids"]][0])
    assert torch.count_nonzero(t[6, 1:]) == 0  # zero rows past the title's end
    with pytest.raises(ValueError, match="tokenise to nothing"):
        align.title_token_targets(llm, ["Heat", ""], k=4)


@pytest.mark.parametrize("method,steps", [("ridge", 0), ("ridge", 5), ("adam", 300)])
def test_aligner_fits_the_training_items(llm, method, steps):
    targets, _ = align.title_token_targets(llm, TITLES, k=4)
    items = torch.randn(len(TITLES), 8, generator=torch.Generator().manual_seed(0)) * 5 + 3  # unstandardised
    cfg = align.AlignConfig(k=4, hidden=64, method=method, steps=steps, lr=1e-2)
    aligner, rep = align.fit_item_aligner(items, targets, cfg, d_llm=16, task="item")
    assert rep["mse"] < 0.1 * rep["mean_predictor_mse"]
    assert align.token_top1(aligner, items, targets, torch.arange(len(TITLES))) == 1.0
    # the standardisation is part of the adapter: its buffers hold the items' statistics
    assert torch.allclose(aligner.layers.net[0].mean, items.mean(0))


def test_aligner_width_covers_the_catalogue_by_default(llm):
    targets, _ = align.title_token_targets(llm, TITLES, k=2)
    items = torch.randn(len(TITLES), 8)
    small, rep = align.fit_item_aligner(items, targets, align.AlignConfig(k=2))
    assert small.cfg.hidden == rep["hidden"] == 2048  # a small catalogue: the floor
    big, rep = align.fit_item_aligner(items.repeat(220, 1), targets.repeat(220, 1, 1), align.AlignConfig(k=2, ridge=1e-2))
    assert big.cfg.hidden == rep["hidden"] == 3072  # 2,640 items: rounded up to a multiple of 512


def test_aligner_rejects_bad_shapes(llm):
    targets, _ = align.title_token_targets(llm, TITLES, k=4)
    with pytest.raises(ValueError, match="one n"):
        align.fit_item_aligner(torch.randn(3, 8), targets)
    with pytest.raises(ValueError, match="hidden size"):
        align.fit_item_aligner(torch.randn(len(TITLES), 8), targets, d_llm=32)
    with pytest.raises(ValueError, match="unknown alignment method"):
        align.fit_item_aligner(torch.randn(len(TITLES), 8), targets, align.AlignConfig(method="sgd"))


def test_nearest_items_by_hand():
    targets = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[0.0, 3.0]]])  # (3, k=1, 2)
    soft = torch.tensor([[[0.9, 0.2]], [[0.1, 2.0]], [[0.1, 0.1]]])
    assert align.nearest_items(soft, targets).tolist() == [1, 2, 0]


def test_encoder_readout_is_the_encoders_own_scores():
    E = torch.randn(5, 3)
    h = torch.randn(2, 3)
    assert torch.allclose(h @ align.encoder_readout_weight(E, "item", 3).T, h @ E.T)
    hb, ha = torch.randn(2, 3), torch.randn(2, 3)
    W = align.encoder_readout_weight(E, "residual", 6)
    assert torch.allclose(torch.cat([hb, ha], 1) @ W.T, (ha - hb) @ E.T, atol=1e-6)
    with pytest.raises(ValueError, match="no encoder readout"):
        align.encoder_readout_weight(E, "recovery", 6)


def test_position_pairs_keep_real_positions_only():
    feats = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 1, 3, 2)
    answers = torch.tensor([[4, 5, -1], [6, -1, -1]])
    x, y = align.position_pairs(feats, answers)
    assert y.tolist() == [4, 5, 6] and torch.equal(x[2], feats[1, 0, 0])


def test_fitted_readout_learns_a_separable_map():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(6, 4, generator=g) * 3
    y = torch.arange(6).repeat(20)
    x = centers[y] + 0.1 * torch.randn(len(y), 4, generator=g)
    lin = align.fit_linear_readout(x, y, 6, epochs=30, batch_size=32, lr=3e-2)
    assert align.readout_top1(lin, x, y) == 1.0
    with pytest.raises(ValueError, match="out of range"):
        align.fit_linear_readout(x, y + 1, 6)


def _structured(llm, P=3, temperature=0.05, layout="inline"):
    targets, _ = align.title_token_targets(llm, TITLES, k=4)
    table = torch.randn(len(TITLES), 8, generator=torch.Generator().manual_seed(1))
    aligner, _ = align.fit_item_aligner(table, targets, align.AlignConfig(k=4, hidden=64), d_llm=16)
    readout = torch.nn.Linear(8, len(TITLES))
    with torch.no_grad():
        readout.weight.copy_(align.encoder_readout_weight(table, "item", 8))
        readout.bias.zero_()
    return align.structured_adapter(readout, table, aligner, n_positions=P, temperature=temperature,
                                    layout=layout, task="recovery"), aligner, table, targets


def test_structured_adapter_spells_the_readouts_item(llm):
    proj, aligner, table, targets = _structured(llm, temperature=1e-4)
    x = table[[2, 5, 7]][None] * 10  # (1, P=3, d): each state points at one item, sharply
    soft = proj(x)
    assert soft.shape == (1, 12, 16)
    # at a tiny temperature the expected embedding is the top item's row: the aligner's output for it
    expect = aligner(table[[2, 5, 7]][:, None, :]).reshape(1, 12, 16)
    assert torch.allclose(soft, expect, atol=1e-4)
    assert align.nearest_items(soft.view(3, 4, 16), targets).tolist() == [2, 5, 7]


def test_structured_adapter_zeroes_padding_and_round_trips(llm, tmp_path):
    proj, _, table, _ = _structured(llm)
    x = table[[1, 2, 3]][None].clone()
    x[0, 2] = 0  # a padded position
    soft = proj(x)
    assert torch.count_nonzero(soft[0, 8:]) == 0 and torch.count_nonzero(soft[0, :8]) > 0
    proj.save(tmp_path / "a")
    back = load_adapter(tmp_path / "a", d_llm=16)
    assert back.cfg.kind == "structured" and back.cfg.temperature == 0.05 and back.cfg.hidden == 64
    assert torch.equal(back(x), soft)


def test_structured_adapter_checks_its_parts(llm):
    _, aligner, table, _ = _structured(llm)
    with pytest.raises(ValueError, match="table width"):
        align.structured_adapter(torch.nn.Linear(8, len(TITLES)), table[:, :4], aligner)
    with pytest.raises(ValueError, match="readout scores"):
        align.structured_adapter(torch.nn.Linear(8, 3), table, aligner)
    with pytest.raises(ValueError, match="positive temperature"):
        align.structured_adapter(torch.nn.Linear(8, len(TITLES)), table, aligner, temperature=0.0)


def test_list_layout_numbers_one_line_per_position(llm):
    proj, *_ = _structured(llm, P=3, layout="list")
    interp = Interpreter(llm, proj)
    assert interp.layout == "list"
    text = build_prompt(llm.tokenizer, RECOVERY.eval[0], RECOVERY.slots, 12, SLOT_TOKEN, layout="list", n_positions=3)
    assert text.count(SLOT_TOKEN) == 12
    assert f"\n1. {SLOT_TOKEN * 4}\n2. {SLOT_TOKEN * 4}\n3. {SLOT_TOKEN * 4}\n" in text
    with pytest.raises(ValueError, match="multiple"):
        build_prompt(llm.tokenizer, RECOVERY.eval[0], RECOVERY.slots, 10, SLOT_TOKEN, layout="list", n_positions=3)
    with pytest.raises(ValueError, match="unknown prompt layout"):
        build_prompt(llm.tokenizer, RECOVERY.eval[0], RECOVERY.slots, 3, SLOT_TOKEN, layout="grid", n_positions=3)
