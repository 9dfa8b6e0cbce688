"""recinterp.tasks: which states feed which placeholder, which text is the answer."""
import pytest
import torch

from recinterp.data.types import Split
from recinterp.llm import SLOT_TOKEN, tiny_llm
from recinterp.models import build_encoder
from recinterp.tasks import (Cases, cached, item_cases, make_examples, prompts_for, recovery_cases, residual_cases,
                             residual_features)

N_ITEMS = 20
TITLES = [f"Film {i}" for i in range(N_ITEMS)]


@pytest.fixture(scope="module")
def world():
    torch.manual_seed(0)
    enc = build_encoder("sasrec", N_ITEMS, d=8).eval()
    seqs = torch.full((4, 10), N_ITEMS)
    lens = torch.tensor([10, 3, 1, 2])
    for i in range(4):
        seqs[i, : lens[i]] = torch.randperm(N_ITEMS)[: lens[i]]
    return enc, Split(seqs, lens, torch.zeros(4, dtype=torch.long)), tiny_llm()


def test_residual_states_come_from_the_unpadded_prefix(world):
    enc, split, _ = world
    cases = residual_cases(enc, split, input="two_slots")
    assert len(cases) == 3 and cases.meta["skipped_short"] == 1  # the window of 1 item has no residual
    keep = [0, 1, 3]
    with torch.no_grad():
        for c, i in enumerate(keep):
            n = int(split.lens[i])
            ids = split.seqs[i: i + 1, :n]
            before = enc.hidden_states(ids[:, : n - 1], torch.tensor([n - 1]))[0, -1]
            after = enc.hidden_states(ids, torch.tensor([n]))[0, -1]
            assert torch.allclose(cases.features[c, 0, 0], before, atol=1e-5)
            assert torch.allclose(cases.features[c, 1, 0], after, atol=1e-5)
            assert int(cases.answers[c, 0]) == int(split.seqs[i, n - 1])
            assert sorted(x for x in cases.context[c].tolist() if x >= 0) == sorted(split.seqs[i, : n - 1].tolist())


def test_residual_inputs(world):
    enc, split, _ = world
    two = residual_cases(enc, split, input="two_slots")
    pair = residual_cases(enc, split, input="pair")
    diff = residual_cases(enc, split, input="diff")
    hb, ha = two.features[:, 0], two.features[:, 1]
    assert pair.features.shape == (3, 1, 1, 16) and torch.equal(pair.features[:, 0], torch.cat([hb, ha], -1))
    assert torch.allclose(diff.features[:, 0], ha - hb)
    assert prompts_for(two).slots == ("before", "after") and prompts_for(pair).slots == ("delta",)
    allpos = residual_cases(enc, split, input="pair", positions="all")
    assert allpos.features.shape == (3, 1, 10, 16)
    with pytest.raises(ValueError, match="unknown residual input"):
        residual_features(hb, None, ha, None, input="sum")


def test_recovery_and_item_cases(world):
    enc, split, _ = world
    rec = recovery_cases(enc, split, input="all")
    assert rec.features.shape == (4, 1, 10, 8)
    assert (rec.features[1, 0, 3:] == 0).all()  # padded positions are zero
    assert rec.answers[1].tolist()[:4] == split.seqs[1, :3].tolist() + [-1]
    last = recovery_cases(enc, split, input="last")
    assert torch.equal(last.features[:, 0, 0], rec.states["h_last"])
    it = item_cases(enc, [3, 5])
    assert torch.equal(it.features[1, 0, 0], enc.item_embeddings.weight[5].detach())
    with pytest.raises(ValueError, match="out of range"):
        item_cases(enc, [N_ITEMS])
    with pytest.raises(ValueError, match="unknown recovery input"):
        recovery_cases(enc, split, input="mean")


def test_examples_are_deterministic_and_use_held_out_phrasing_in_eval(world):
    enc, split, llm = world
    rec = recovery_cases(enc, split, input="all", dataset="movielens")
    a = make_examples(rec, range(4), TITLES, llm, 2, phase="train", seed=1, epoch=0, target_order="shuffle")
    b = make_examples(rec, range(4), TITLES, llm, 2, phase="train", seed=1, epoch=0, target_order="shuffle")
    c = make_examples(rec, range(4), TITLES, llm, 2, phase="train", seed=1, epoch=1, target_order="shuffle")
    assert [(e.prompt, e.target) for e in a] == [(e.prompt, e.target) for e in b]
    assert [e.target for e in a] != [e.target for e in c]  # reshuffled next epoch
    assert all(e.prompt.count(SLOT_TOKEN) == 2 and "movie" in e.prompt for e in a)
    keep = make_examples(rec, [1], TITLES, llm, 2)[0]
    assert keep.target == "; ".join(TITLES[j] for j in split.seqs[1, :3].tolist())
    ev = make_examples(rec, range(4), TITLES, llm, 2, phase="eval", prompt_index=1)
    assert len({e.prompt for e in ev}) == 1
    shuffled = make_examples(rec, [0, 1], TITLES, llm, 2, features_from=[1, 0])
    assert torch.equal(shuffled[0].features, rec.features[1]) and shuffled[0].target == keep_target(rec, 0)


def keep_target(cases, i):
    return "; ".join(TITLES[j] for j in cases.answers[i].tolist() if j >= 0)


def test_cases_cache_round_trip(world, tmp_path):
    enc, split, _ = world
    built = []

    def build():
        built.append(1)
        return residual_cases(enc, split, input="pair", dataset="steam")

    a = cached(tmp_path / "c", build)
    b = cached(tmp_path / "c", build)
    assert len(built) == 1
    assert torch.equal(a.features, b.features) and torch.equal(a.answers, b.answers)
    assert b.meta["dataset"] == "steam" and torch.equal(a.states["h_after"], b.states["h_after"])
    assert torch.equal(a.subset([2, 0]).features, a.features[[2, 0]])


def test_bad_cases_raise():
    with pytest.raises(ValueError, match="unknown task"):
        Cases("next", "all", torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown input"):
        Cases("residual", "all", torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="true answer"):
        Cases("item", "item", torch.zeros(1, 1, 1, 2), -torch.ones(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))


def test_run_task_item_then_residual_from_the_item_adapter(world, tmp_path):
    from recinterp.data.types import Catalogue, RecDataset
    from recinterp.adapter import load_adapter
    from recinterp.tasks import run_task

    enc, split, llm = world
    ds = RecDataset("movielens", N_ITEMS, split, split, split, Catalogue(TITLES, TITLES))
    train = {"max_steps": 2, "batch_size": 4, "warmup_steps": 1, "ckpt_every": 0}
    ev = {"n_cases": 3, "n_distractors": 3, "max_new_tokens": 3, "batch_size": 4}
    item = run_task("item", enc, ds, llm, out_dir=tmp_path / "item", adapter={"kind": "linear", "n_tokens": 2},
                    train=train, eval=ev, progress=False)
    assert set(item["eval"]) == {"train", "held_out"} and item["train"]["steps"] == 2
    assert item["eval"]["held_out"]["n"] == 2  # 10% of 20 items never trained on
    res = run_task("residual", enc, ds, llm, out_dir=tmp_path / "res", input="pair",
                   adapter={"kind": "linear", "n_tokens": 2}, train=train, eval={**ev, "samplers": ["own"]},
                   init_adapter=item["adapter_dir"], readout={"epochs": 1}, progress=False)
    r = res["eval"]["test"]["ranking"]["own"]
    assert {"model", "shuffled", "zero", "popularity", "encoder", "readout"} <= set(r)
    saved = load_adapter(res["adapter_dir"], d_llm=llm.hidden_size)
    assert saved.cfg.input == "pair" and saved.cfg.task == "residual" and saved.cfg.d_in == 16
    again = run_task("residual", enc, ds, llm, out_dir=tmp_path / "res", input="pair",
                     adapter={"kind": "linear", "n_tokens": 2}, train=train, progress=False)
    assert again["train"]["steps"] == 2 and len(again["train"]["history"]) == 2  # resumed, nothing retrained
    back = load_adapter(again["adapter_dir"], d_llm=llm.hidden_size)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in saved.state_dict().items())


@pytest.mark.parametrize("preset", ["smoke", "classroom", "cpu", "gpu"])
def test_preset_sections_fit_the_library(preset):
    import inspect

    from recinterp.plan import resolve_preset
    from recinterp.adapter import AdapterConfig
    from recinterp.tasks import EvalConfig, evaluate, run_task

    ev_args = set(inspect.signature(evaluate).parameters)
    run_args = set(inspect.signature(run_task).parameters)
    proj_fields = set(AdapterConfig.__dataclass_fields__) | {"positions"}
    for section in ("recovery", "residual"):
        cfg = resolve_preset(preset, section)  # every train / eval dict is checked against its dataclass
        evals = [cfg["eval"]] + ([cfg["item_stage"]["eval"]] if cfg.get("item_stage", {}).get("eval") else [])
        for e in evals:
            assert set(EvalConfig(**e).evaluate_kwargs()) <= ev_args
        adapters = cfg.get("adapters") or [cfg["adapter"]]
        for a in adapters:
            assert set(a) <= proj_fields
        assert {"max_train_cases", "readout"} <= run_args and cfg["llm"]
