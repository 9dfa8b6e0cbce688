"""recinterp.train_adapter: only the adapter trains; warm-up; checkpoint + exact resume."""
import pytest
import torch

from recinterp.adapter import build_adapter, load_adapter
from recinterp.interpreter import Interpreter
from recinterp.llm import tiny_llm
from recinterp.train_adapter import TrainConfig, lr_factor, train_adapter
from synthetic_data import pair_cases

N_ITEMS = 25
TITLES = [f"Film {i}" for i in range(N_ITEMS)]


@torch.no_grad()
def eval_loss(interp, cases, titles, phase="train"):
    """Mean target-token cross-entropy over ``cases``, in one batch."""
    from recinterp.cases import make_examples

    interp.eval()
    ex = make_examples(cases, range(len(cases)), titles, interp.llm, interp.n_tokens, phase=phase, layout=interp.layout)
    return float(interp(interp.collator(ex)))


@pytest.fixture(scope="module")
def setup():
    enc, cases = pair_cases(24, N_ITEMS)
    return enc, cases, tiny_llm()


def new_interp(llm, seed=0):
    torch.manual_seed(seed)
    return Interpreter(llm, build_adapter(kind="linear", d_in=16, d_llm=llm.hidden_size, n_tokens=2, input="pair"))


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_a_step_changes_the_adapter_and_nothing_else(setup):
    enc, cases, llm = setup
    interp = new_interp(llm)
    llm0, enc0, ad0 = snapshot(llm.model), snapshot(enc), snapshot(interp.adapter)
    hist = train_adapter(interp, cases, TITLES, TrainConfig(max_steps=1, batch_size=8), progress=False)
    assert hist["steps"] == 1
    assert all(torch.equal(v, llm.model.state_dict()[k]) for k, v in llm0.items())
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in enc0.items())
    assert any(not torch.equal(v, interp.adapter.state_dict()[k]) for k, v in ad0.items())
    assert all(p.grad is None for p in llm.model.parameters()) and not llm.model.training


def test_training_truncates_its_own_targets_and_leaves_the_interpreter_alone(setup):
    _, cases, llm = setup
    interp = new_interp(llm)
    short = train_adapter(interp, cases, TITLES, TrainConfig(max_steps=1, batch_size=8, max_target_tokens=1),
                          progress=False)
    assert interp.collator.max_target_tokens == 32  # scoring keeps the interpreter's own setting
    assert short["config"]["max_target_tokens"] == 1


def test_an_unfrozen_llm_is_refused(setup):
    _, cases, llm = setup
    interp = new_interp(llm)
    p = next(llm.model.parameters())
    p.requires_grad_(True)
    try:
        with pytest.raises(RuntimeError, match="frozen"):
            train_adapter(interp, cases, TITLES, TrainConfig(max_steps=1, batch_size=4), progress=False)
    finally:
        p.requires_grad_(False)
        p.grad = None


def test_warmup_is_linear_from_a_fifth():
    cfg = TrainConfig(warmup_steps=10, warmup_start=0.2)
    assert lr_factor(0, cfg, 100) == pytest.approx(0.2)
    assert lr_factor(5, cfg, 100) == pytest.approx(0.6)
    assert lr_factor(10, cfg, 100) == lr_factor(99, cfg, 100) == 1.0
    cos = TrainConfig(warmup_steps=10, decay="cosine", min_lr_ratio=0.1)
    assert lr_factor(10, cos, 100) == pytest.approx(1.0) and lr_factor(100, cos, 100) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="decay"):
        lr_factor(20, TrainConfig(warmup_steps=1, decay="step"), 100)
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"learning_rate": 1})


def test_resume_continues_exactly(setup, tmp_path):
    _, cases, llm = setup
    cfg = dict(batch_size=8, grad_accum=2, warmup_steps=3, lr=1e-2, ckpt_every=1)
    a = new_interp(llm)
    ha = train_adapter(a, cases, TITLES, TrainConfig(max_steps=4, **cfg), out_dir=tmp_path / "a", progress=False)
    b = new_interp(llm)
    train_adapter(b, cases, TITLES, TrainConfig(max_steps=2, **cfg), out_dir=tmp_path / "b", progress=False)
    b2 = new_interp(llm, seed=123)  # a fresh process would start from other weights
    hb = train_adapter(b2, cases, TITLES, TrainConfig(max_steps=4, **cfg), out_dir=tmp_path / "b", progress=False)
    assert hb["steps"] == 4 and [h["loss"] for h in hb["history"]] == [h["loss"] for h in ha["history"]]
    for k, v in a.adapter.state_dict().items():
        assert torch.equal(v, b2.adapter.state_dict()[k])
    # the final adapter is saved on its own and loads back
    back = load_adapter(tmp_path / "b" / "adapter", d_llm=llm.hidden_size)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in b2.adapter.state_dict().items())
    assert ha["epochs"] == pytest.approx(4 * 2 / 3)  # 24 cases / batch 8 = 3 micro-batches per epoch


def test_training_lowers_the_loss(setup):
    _, cases, llm = setup
    interp = new_interp(llm)
    before = eval_loss(interp, cases, TITLES, phase="train")
    train_adapter(interp, cases, TITLES, TrainConfig(max_steps=30, batch_size=8, lr=5e-2, warmup_steps=0),
                  progress=False)
    assert eval_loss(interp, cases, TITLES, phase="train") < before - 0.3


def test_time_budget_stops_early(setup):
    _, cases, llm = setup
    hist = train_adapter(new_interp(llm), cases, TITLES, TrainConfig(max_steps=1000, batch_size=4, time_budget_s=0.0),
                         progress=False)
    assert hist["steps"] == 1 and hist["stopped_by"] == "time_budget"


def test_bad_inputs(setup):
    _, cases, llm = setup
    with pytest.raises(ValueError, match="no title"):
        train_adapter(new_interp(llm), cases, TITLES[:3], TrainConfig(max_steps=1), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        train_adapter(new_interp(llm), cases, TITLES, TrainConfig(max_steps=1, batch_size=0), progress=False)


def test_epoch_order_shards_evenly_and_covers_every_case():
    from recinterp.train_adapter import epoch_order
    shards = [epoch_order(33, seed=1, epoch=2, rank=r, world=2) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 17
    assert set(torch.cat(shards).tolist()) == set(range(33))
    assert torch.equal(epoch_order(33, 1, 2), epoch_order(33, 1, 2)) and not torch.equal(epoch_order(33, 1, 2), epoch_order(33, 1, 3))
