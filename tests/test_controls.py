"""recinterp.controls: one place that makes the model's reading and its controls on the same cases."""
import numpy as np
import pytest
import torch

from recinterp.adapter import build_adapter
from recinterp.tasks import Cases  # importing recinterp.tasks registers the built-in tasks
from recinterp.controls import derangement, paired_differences, popularity_answers, popularity_scores, run_conditions
from recinterp.interpreter import Interpreter
from recinterp.llm import tiny_llm


def test_run_conditions_reads_the_same_cases_with_each_control():
    llm = tiny_llm()
    interp = Interpreter(llm, build_adapter(kind="linear", d_in=4, d_llm=llm.hidden_size, n_tokens=1, input="pair"))
    feats = torch.arange(5, dtype=torch.float)[:, None, None, None].expand(5, 1, 1, 4).clone()  # case i reads i
    cases = Cases("residual", "pair", feats, torch.arange(5)[:, None], torch.full((5, 1), -1), meta={"n_items": 9})
    seen = {}

    def read(examples, control):
        seen[len(seen)] = control
        return [int(e.features[0, 0, 0]) for e in examples]

    out = run_conditions(interp, cases, [f"t{i}" for i in range(9)], read, ("shuffled", "zero"), seed=3)
    assert out["model"] == [0, 1, 2, 3, 4] and out["zero"] == [0, 1, 2, 3, 4]
    assert out["shuffled"] == derangement(5, seed=3).tolist()  # another case's features, never its own
    assert all(a != b for a, b in zip(out["shuffled"], range(5)))
    assert list(seen.values()) == [None, None, "zero"]
    with pytest.raises(ValueError, match="unknown control"):
        run_conditions(interp, cases, [], read, ("popularity",))


def test_paired_differences_by_hand():
    per = {"model": np.array([1.0, 1.0, 0.0, 1.0]), "shuffled": np.array([0.0, 1.0, 0.0, 1.0]),
           "zero": np.array([1.0, 1.0, 0.0, 1.0])}
    d = paired_differences(per)
    assert set(d) == {"model_vs_shuffled", "model_vs_zero"}
    assert d["model_vs_shuffled"]["mean"] == pytest.approx(0.25)
    assert d["model_vs_zero"] == {"mean": 0.0, "lo": 0.0, "hi": 0.0}  # identical readings: no difference at all
    metrics = paired_differences({"model": {"Hit@1": np.ones(3)}, "zero": {"Hit@1": np.zeros(3)}})
    assert metrics["model_vs_zero"]["Hit@1"] == {"mean": 1.0, "lo": 1.0, "hi": 1.0}


def test_popularity_control():
    pop = np.array([1.0, 5.0, 3.0, 5.0])
    assert popularity_answers(pop, [["x"], ["x", "y"]], ["a", "b", "c", "d"]) == ["b", "b; d"]  # ties: lower id first
    assert popularity_scores(pop, torch.tensor([[2, 0]])).tolist() == [[3.0, 1.0]]
