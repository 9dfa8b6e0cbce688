"""recinterp.probes + tasks.evaluate: ranks, candidates, controls, encoder-space references."""
import numpy as np
import pytest
import torch

from recinterp import probes
from recinterp.adapter import build_adapter
from recinterp.controls import derangement
from recinterp.data.types import Split
from recinterp.interpreter import Interpreter
from recinterp.llm import tiny_llm
from recinterp.models import build_encoder
from recinterp.models.train import Popularity
from recinterp.tasks import Cases, evaluate_task, recovery_cases, residual_cases


def test_true_ranks_and_metrics_by_hand():
    # one true answer (col 0) + 3 distractors
    s = torch.tensor([[5.0, 1.0, 2.0, 3.0],   # rank 1
                      [2.0, 3.0, 1.0, 4.0],   # rank 3
                      [2.0, 2.0, 0.0, 0.0]])  # tie with a distractor counts against: rank 2
    r = probes.true_ranks(s, torch.tensor([1, 1, 1]), A=1)
    assert r[:, 0].tolist() == [1, 3, 2]
    pc = probes.per_case(r)
    assert pc["Hit@1"].tolist() == [1, 0, 0]
    assert pc["MRR"].tolist() == pytest.approx([1, 1 / 3, 1 / 2])


def test_multi_answer_ranks_are_against_distractors_only():
    # 2 true answers (cols 0-1; the second row has only one) + 2 distractors
    s = torch.tensor([[1.0, 9.0, 5.0, 0.0],
                      [3.0, 3.0, 5.0, 4.0]])
    r = probes.true_ranks(s, torch.tensor([2, 1]), A=2)
    assert r.tolist() == [[2, 1], [3, 0]]  # true answers do not compete with each other
    pc = probes.per_case(r, ks=(1,))
    assert pc["Hit@1"].tolist() == [0.5, 0.0]
    assert pc["MRR"].tolist() == pytest.approx([(1 / 2 + 1) / 2, 1 / 3])


def test_derangement_has_no_fixed_point():
    for n in (2, 3, 17, 300):
        p = derangement(n, seed=n)
        assert sorted(p.tolist()) == list(range(n)) and (p != np.arange(n)).all()
    with pytest.raises(ValueError):
        derangement(1)


def _cases(answers, context, n=None):
    answers = torch.as_tensor(answers)
    N = len(answers)
    return Cases("residual", "pair", torch.zeros(N, 1, 1, 4), answers, torch.as_tensor(context),
                 meta={"n_items": n or 50})


def test_samplers():
    cases = _cases([[3], [7]], [[1, 2, 3, -1], [7, 8, -1, -1]])
    cand, n_true, info = probes.sample_candidates(cases, 3, "own", seed=0)
    assert cand[:, 0].tolist() == [3, 7] and n_true.tolist() == [1, 1]
    assert set(cand[0, 1:].tolist()) >= {1, 2} and 3 not in cand[0, 1:]
    assert 8 in cand[1, 1:].tolist() and 7 not in cand[1, 1:].tolist()
    assert info["topped_up_with_random"] == 1 + 2
    assert all(len(set(row)) == len(row) for row in cand.tolist())
    rnd, _, _ = probes.sample_candidates(cases, 10, "random", seed=0)
    assert (rnd[:, 1:] != rnd[:, :1]).all()
    pop = np.arange(50, dtype=float)  # item i seen i times: popularity rank of item i is 49 - i
    near, _, _ = probes.sample_candidates(cases, 4, "popular", popularity=pop, seed=0)
    assert sorted(near[0, 1:].tolist()) == [1, 2, 4, 5] and sorted(near[1, 1:].tolist()) == [5, 6, 8, 9]
    with pytest.raises(ValueError, match="sampler"):
        probes.sample_candidates(cases, 3, "hard")
    with pytest.raises(ValueError, match="popularity"):
        probes.sample_candidates(cases, 3, "popular")


def test_recovery_distractors_exclude_every_item_of_the_window():
    cases = Cases("recovery", "all", torch.zeros(2, 1, 10, 4), torch.tensor([[0, 1, 2], [4, -1, -1]]),
                  torch.tensor([[0, 1, 2], [4, -1, -1]]), meta={"n_items": 8})
    cand, n_true, _ = probes.sample_candidates(cases, 4, "random", seed=1)
    assert n_true.tolist() == [3, 1] and cand.shape == (2, 7)
    assert not set(cand[0, 3:].tolist()) & {0, 1, 2} and 4 not in cand[1, 3:].tolist()


def test_popularity_counts_history_and_next_items_once():
    seqs = torch.tensor([[0, 1, 3], [1, 3, 3]])
    pop = Popularity.from_split(Split(seqs, torch.tensor([2, 1]), torch.tensor([2, 1])), n_items=3).counts
    assert pop.tolist() == [1, 3, 1]  # padding id 3 not counted


def test_encoder_residual_scores():
    E = torch.eye(4)
    hb, ha = torch.zeros(1, 4), torch.tensor([[0.0, 0.0, 2.0, 0.0]])
    s = probes.residual_encoder_scores(E, hb, ha, torch.tensor([[2, 0, 1]]))
    assert s.tolist() == [[2.0, 0.0, 0.0]]


def test_linear_readout_learns_a_separable_mapping():
    torch.manual_seed(0)
    x = torch.randn(200, 6)
    y = x[:, :3].argmax(1)  # the answer is readable linearly
    ro = probes.LinearReadout(6, 3).fit(x, y[:, None], epochs=60, lr=5e-2)
    assert (ro(x).argmax(1) == y).float().mean() > 0.9
    multi = torch.stack([y, (y + 1) % 3], 1)
    ro2 = probes.LinearReadout(6, 3).fit(x, multi, epochs=60, lr=5e-2)
    top2 = ro2(x).topk(2, 1).indices.sort(1).values
    assert (top2 == multi.sort(1).values).all(1).float().mean() > 0.8


@pytest.fixture(scope="module")
def world():
    torch.manual_seed(0)
    n = 30
    enc = build_encoder("sasrec", n, d=8)
    lens = torch.randint(3, 11, (16,))
    seqs = torch.full((16, 10), n)
    for i in range(16):
        seqs[i, : lens[i]] = torch.randperm(n)[: lens[i]]
    split = Split(seqs, lens, torch.zeros(16, dtype=torch.long))
    return enc, split, [f"Film {i}" for i in range(n)], Popularity.from_split(split, n).counts.numpy(), tiny_llm()


def test_evaluate_residual_reports_every_control_with_n_and_ci(world):
    enc, split, titles, pop, llm = world
    cases = residual_cases(enc, split, input="two_slots", dataset="movielens")
    interp = Interpreter(llm, build_adapter(kind="linear", d_in=8, d_llm=llm.hidden_size, n_tokens=1))
    ro = probes.reference_readout(cases, 30, epochs=3)
    res = evaluate_task(interp, cases, titles, popularity=pop, item_embeddings=enc.item_embeddings.weight,
                            readout=ro, max_new_tokens=4, n_distractors=5)
    g = res["generation"]
    assert set(g) >= {"model", "shuffled", "zero", "popularity", "model_vs_shuffled", "model_vs_zero"}
    assert g["model"]["hit"]["n"] == 16 and len(g["model"]["per_case"]) == 16 and len(g["model"]["texts"]) == 16
    for sampler in ("own", "random", "popular"):
        r = res["ranking"][sampler]
        for cond in ("model", "shuffled", "zero", "popularity", "encoder", "readout"):
            s = r[cond]["summary"]
            assert set(s) == {"Hit@1", "Hit@5", "MRR"}
            assert s["MRR"]["n"] == 16 and s["MRR"]["lo"] <= s["MRR"]["mean"] <= s["MRR"]["hi"]
        assert r["n_candidates"] == 6 and set(r["model_vs_shuffled"]) == {"Hit@1", "Hit@5", "MRR"}
    assert res["ranking"]["own"]["model"]["per_case"]["MRR"].shape == (16,)


def test_results_write_as_json(world, tmp_path):
    import json

    from recinterp.config import write_json_atomic
    enc, split, titles, pop, llm = world
    cases = residual_cases(enc, split, input="diff", dataset="movielens")
    interp = Interpreter(llm, build_adapter(kind="linear", d_in=8, d_llm=llm.hidden_size, n_tokens=2))
    res = evaluate_task(interp, cases, titles, popularity=pop, max_new_tokens=2, n_distractors=3)
    back = json.loads(write_json_atomic(tmp_path / "m.json", res).read_text())
    assert back["ranking"]["own"]["model"]["summary"]["Hit@1"]["n"] == 16


def test_evaluate_recovery_distribution(world):
    enc, split, titles, pop, llm = world
    cases = recovery_cases(enc, split, input="all", dataset="movielens")
    interp = Interpreter(llm, build_adapter(kind="conv_pool", d_in=8, d_llm=llm.hidden_size, n_positions=10))
    res = evaluate_task(interp, cases, titles, popularity=pop, item_embeddings=enc.item_embeddings.weight,
                            max_new_tokens=4, n_distractors=5)
    g = res["generation"]
    assert len(g["model"]["distribution"]) == 11 and sum(g["model"]["distribution"]) == pytest.approx(1.0)
    # the popularity control answers with the n most popular titles (n = the window's length)
    order = np.argsort(-pop, kind="stable")
    expect = [len(set(order[: len(w)].tolist()) & set(w))
              for w in ([a for a in row if a >= 0] for row in cases.answers.tolist())]
    assert g["popularity"]["per_case"].tolist() == expect and max(expect) > 0
    assert set(res["ranking"]) == {"random", "popular"}
