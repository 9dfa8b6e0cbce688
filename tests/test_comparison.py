"""Task 3's grounded comparison (recinterp.comparison): validity rows, both orders, paired rows, the
unmatched-answer rule, the report's rows and the figure that draws valid judges only.  Tiny worlds made here."""
import json

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from recinterp import comparison as C  # noqa: E402
from recinterp import figures as F  # noqa: E402
from recinterp.config import NOTEBOOKS  # noqa: E402
from recinterp.data.types import Split  # noqa: E402
from recinterp.report import cli, comparison_headline  # noqa: E402

TITLES = [f"Film Number {w}" for w in ("One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight")]
SOURCES = ("dreamrec", "sasrec", "random")


def world(n=40, seed=0):
    """n histories over 8 items; the next item is (last item + 1) mod 8; genres: even / odd items."""
    g = torch.Generator().manual_seed(seed)
    seqs = torch.randint(0, 8, (n, 3), generator=g)
    lens = torch.full((n,), 3)
    nxt = (seqs[:, -1] + 1) % 8
    tags = [["even"] if i % 2 == 0 else ["odd"] for i in range(8)]
    return C.Histories(seqs, lens, nxt, list(TITLES), tags, "movie", 0.85)


class Oracle:
    """Knows the true next item: picks the answer that names it (pairwise interface)."""
    name, kind = "oracle", "pairwise"

    def verdicts(self, h, idx, first, second):
        truth = [h.titles[int(h.next[i])] for i in idx]
        return np.array([1.0 if a == t else (-1.0 if b == t else 0.0) for a, b, t in zip(first, second, truth)])


class FirstShown:
    name, kind = "first", "pairwise"

    def verdicts(self, h, idx, first, second):
        return np.ones(len(idx))


class Ties:
    name, kind = "ties", "pairwise"

    def verdicts(self, h, idx, first, second):
        return np.zeros(len(idx))


class Table:
    """A recommender whose scores are a fixed (n_histories, n_items) table."""

    def __init__(self, s):
        self.s = torch.as_tensor(s, dtype=torch.float32)

    def score_sequences(self, ids, lens, generator=None):
        return self.s[: len(ids)]


def test_validity_row_fails_ties_and_first_shown_passes_an_oracle():
    h = world()
    assert not C.validity_row(Ties(), h)["valid"]
    first = C.validity_row(FirstShown(), h)
    assert not first["valid"] and first["picks_true"]["mean"] == 0.5 and first["first_shown"]["mean"] == 1.0
    oracle = C.validity_row(Oracle(), h)
    assert oracle["valid"] and oracle["picks_true"]["mean"] == 1.0 and oracle["n"] == len(h)


def test_the_validity_rows_random_item_is_never_the_true_one():
    nxt = np.arange(200) % 5
    r = C.random_other(nxt, 5, seed=3)
    assert (r != nxt).all() and r.min() >= 0 and r.max() <= 4 and len(set(r.tolist())) == 5


def test_both_orders_cancel_position_bias():
    h = world(n=6)
    a, b = [TITLES[0]] * 6, [TITLES[1]] * 6
    pr = C.preference(FirstShown(), h, np.arange(6), a, b)
    assert (pr["per_case"] == 0).all() and pr["first_shown"]["mean"] == 1.0

    class Content:  # prefers "One" whatever the order
        name, kind = "content", "pairwise"

        def verdicts(self, h, idx, first, second):
            return np.array([1.0 if f == TITLES[0] else -1.0 for f in first])

    pr = C.preference(Content(), h, np.arange(6), a, b)
    assert (pr["per_case"] == 1).all() and pr["first_shown"]["mean"] == 0.5


def test_paired_row_on_hand_computed_values():
    row = C.comparison_row(np.array([1.0, 0.0, -1.0, 1.0, 0.5, np.nan]))
    assert row["diff"]["n"] == 5 and row["diff"]["mean"] == pytest.approx(0.3)
    assert (row["wins"], row["ties"], row["losses"]) == (3, 1, 1)
    assert -1.0 <= row["diff"]["lo"] <= 0.3 <= row["diff"]["hi"] <= 1.0
    const = C.comparison_row(np.ones(7))
    assert const["diff"] == {"mean": 1.0, "lo": 1.0, "hi": 1.0, "n": 7}


def test_unmatched_answer_loses_and_takes_the_floor():
    h = world(n=2)
    s = np.array([[5.0, 1.0, 9.0, 0, 0, 0, 0, -2.0]] * 2)
    j = C.RecommenderJudge(Table(s), "table")
    got = j.scores(h, np.arange(2), [TITLES[1], "A Film Nobody Made"])
    assert got[0] == 1.0 and np.isneginf(got[1])
    # a matched answer with a low score still beats an unmatched one; two unmatched answers tie; empty loses
    v = C.preference(j, h, np.arange(2), [TITLES[7], "Not A Title"], ["Made Up Movie", "Also Made Up"])["per_case"]
    assert v.tolist() == [1.0, 0.0]
    assert C.preference(j, h, np.arange(1), [""], [TITLES[7]])["per_case"].tolist() == [-1.0]
    assert C.floored(j, got, h, np.arange(2)).tolist() == [1.0, -2.0]  # the history's lowest score
    assert C.NextCosineJudge(torch.eye(8), "eye").floor == -1.0 and C.NextTagsJudge().floor == 0.0


def test_grounded_judges_against_the_next_item():
    h = world(n=3)
    true = [h.titles[int(i)] for i in h.next]
    cos = C.NextCosineJudge(torch.eye(8), "eye")
    assert cos.scores(h, np.arange(3), true).tolist() == [1.0, 1.0, 1.0]
    other = [h.titles[(int(i) + 1) % 8] for i in h.next]  # the opposite parity
    assert cos.scores(h, np.arange(3), other).tolist() == [0.0, 0.0, 0.0]
    tags = C.NextTagsJudge()
    assert tags.scores(h, np.arange(3), other).tolist() == [0.0, 0.0, 0.0]
    h.tags[int(h.next[0])] = []  # no tags for the next item: that history is left out
    assert np.isnan(tags.scores(h, np.arange(3), true)[0])
    assert C.validity_row(cos, world())["valid"]  # the true item is their reference: valid by construction


def test_compare_writes_validity_and_three_rows_and_scores():
    h = world()
    true = [h.titles[int(i)] for i in h.next]
    answers = {"dreamrec": true, "sasrec": true[1:] + true[:1], "random": ["Invented Title"] * len(h)}
    res = C.compare(C.NextCosineJudge(torch.eye(8), "eye"), h, answers, SOURCES)
    assert res["valid"] and set(res["rows"]) == {"dreamrec_vs_sasrec", "dreamrec_vs_random", "sasrec_vs_random"}
    assert res["rows"]["dreamrec_vs_random"]["diff"]["mean"] == 1.0  # matched beats unmatched every time
    assert res["scores"]["random"]["mean"] == -1.0 and res["score_diffs"]["dreamrec_vs_random"]["mean"] == 2.0
    bad = C.compare(FirstShown(), h, answers, SOURCES)
    assert not bad["valid"] and bad["rows"]["dreamrec_vs_sasrec"]["diff"]["mean"] == 0.0


def test_cooccurrence_recommender_learns_transitions():
    seqs = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 0]] * 5)
    rec = C.CooccurrenceRecommender(4, d=2).fit(Split(seqs, torch.full((15,), 3), (seqs[:, -1] + 1) % 4))
    s = rec.score_sequences(torch.tensor([[0, 1, 2]]), torch.tensor([3]))
    assert int(s.argmax()) == 3 and rec.item_vectors().shape == (4, 2)
    assert C.RecommenderJudge(rec, "co").scores(world(n=1), np.arange(1), ["Nothing"])[0] == -np.inf


def test_cooccurrence_sparse_path_matches_the_dense_one(monkeypatch):
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, 30, (200, 6), generator=g)
    lens = torch.randint(1, 7, (200,), generator=g)
    split = Split(seqs, lens, torch.randint(0, 30, (200,), generator=g))
    dense = C.CooccurrenceRecommender(30, d=4).fit(split)
    monkeypatch.setattr(C.CooccurrenceRecommender, "DENSE_MAX", 10)  # 30 items: above it, the sparse path
    sparse = C.CooccurrenceRecommender(30, d=4).fit(split)
    assert dense.counts_t is None and sparse.trans is None
    ids, ls = seqs[:8], lens[:8]
    assert torch.allclose(sparse.score_sequences(ids, ls), dense.score_sequences(ids, ls), rtol=1e-5, atol=1e-7)
    # the randomized SVD's vectors span what the exact ones do: the same Gram matrix (signs may flip)
    gd, gs = dense.item_vectors() @ dense.item_vectors().T, sparse.item_vectors() @ sparse.item_vectors().T
    assert sparse.item_vectors().shape == (30, 4) and torch.allclose(gs, gd, atol=1e-3 * float(gd.abs().max()))


def test_registry_builds_what_can_run_and_rejects_unknown_names():
    res = {"recommender": Table(np.zeros((2, 8))), "recommender_label": "t", "vectors": torch.eye(8), "has_tags": True}
    assert set(C.build_judges(list(C.JUDGES), res)) == {"recommender", "next_cosine", "next_tags"}
    with pytest.raises(ValueError, match="unknown judge"):
        C.build_judges(["oracle"], res)
    with pytest.raises(ValueError, match="already"):
        C.register_judge("recommender", lambda r: None)


def _metrics(tmp_path):
    def row(a, b, mean):
        return {"a": a, "b": b, "diff": {"mean": mean, "lo": mean - 0.1, "hi": mean + 0.1, "n": 30},
                "wins": 1, "ties": 0, "losses": 0}

    def judge(valid, mean):
        return {"judge": "x", "kind": "score", "valid": valid,
                "validity": {"picks_true": {"mean": 0.8 if valid else 0.5, "lo": 0.7 if valid else 0.4,
                                            "hi": 0.9 if valid else 0.6, "n": 30}, "valid": valid, "n": 30},
                "rows": {f"{a}_vs_{b}": row(a, b, mean) for a, b in C.pairs(SOURCES)}}

    srcs = {
        "dreamrec": {"novelty": {"mean": 0.3, "lo": 0.2, "hi": 0.4, "n": 30}, "fidelity": None},
        "sasrec": {"novelty": {"mean": 0.1, "lo": 0.0, "hi": 0.2, "n": 30},
                   "fidelity": {"hit": {"mean": 0.5, "lo": 0.3, "hi": 0.7, "n": 30},
                                "shuffled": {"mean": 0.0, "lo": 0.0, "hi": 0.0, "n": 30},
                                "diff": {"mean": 0.5, "lo": 0.3, "hi": 0.7}}}}
    m = {"encoder": "sasrec", "datasets": {"movielens": {
        "headline_route": "direct", "routes": {"direct": {"sources": srcs}}, "sources": srcs,
        "comparisons": {"recommender:gru4rec": judge(True, 0.4), "local_llm": judge(False, 0.0)}}}}
    out = tmp_path / NOTEBOOKS["instantiation"]
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps(m))
    return m


def test_report_reads_the_comparison_rows(tmp_path, capsys):
    _metrics(tmp_path)
    rows = comparison_headline(tmp_path)
    assert len(rows) == 6 and {r["role"] for r in rows} == {"comparison"}
    good = [r for r in rows if r["judge"] == "recommender:gru4rec"]
    assert [r["reading"] for r in good] == ["DreamRec − SASRec (recommender:gru4rec)",
                                            "DreamRec − random (recommender:gru4rec)", "SASRec − random (recommender:gru4rec)"]
    assert all(r["valid"] and r["clears"] and r["n"] == 30 for r in good)
    assert not any(r["valid"] or r["clears"] for r in rows if r["judge"] == "local_llm")
    assert cli.main([str(tmp_path), "--markdown"]) == 0  # the comparison rows do not decide the exit status
    md = capsys.readouterr().out
    assert "| movielens | local_llm |" in md and "cannot judge" in md and "+0.400 [+0.300, +0.500]" in md
    assert cli.main([str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "instantiation / movielens / DreamRec − SASRec (recommender:gru4rec): +0.400 [+0.300, +0.500] (n=30)" in text
    assert "DreamRec − SASRec (local_llm): cannot judge" in text


def test_a_failed_judge_is_not_drawn(tmp_path):
    nov, compared = F.instantiation_tables(_metrics(tmp_path))
    assert set(compared.judge) == {"recommender:gru4rec", "local_llm"} and len(compared) == 6
    fig = F.plot_instantiation(nov, compared)
    ax = fig.axes[1]  # one dataset: top (novelty), bottom (comparisons)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["recommender:gru4rec"] and "cannot judge: local_llm" in ax.get_title()
    assert len(ax.patches) == 3  # three bars: the valid judge's three comparisons, none for the failed one
    none_valid = compared.assign(valid=False)
    fig = F.plot_instantiation(nov, none_valid)
    assert fig.axes[1].get_legend() is None and len(fig.axes[1].patches) == 0


def test_llm_likelihood_is_the_same_in_any_batch_and_memoised():
    from recinterp.llm import tiny_llm

    llm, h = tiny_llm(hidden=16, layers=1, heads=2), world(n=3)
    answers = [TITLES[0], "A much longer made-up title here", TITLES[5]]
    one = C.LLMLikelihoodJudge(llm, "history", batch_size=1).scores(h, np.arange(3), answers)
    many = C.LLMLikelihoodJudge(llm, "history", batch_size=3)
    assert np.allclose(one, many.scores(h, np.arange(3), answers), atol=1e-5) and np.isfinite(one).all()
    assert len(many._memo) == 3 and (one < 0).all()  # mean log-probabilities
    nxt = C.LLMLikelihoodJudge(llm, "next")
    assert nxt._prompt(h, 0, "X")[1] == f" {h.titles[int(h.next[0])]}"  # scores the held-out title
    with pytest.raises(ValueError, match="unknown mode"):
        C.LLMLikelihoodJudge(llm, "both")
    # an empty answer takes the lowest score seen in a score difference
    assert C.floored(many, np.array([-2.0, -np.inf, -5.0]), h, np.arange(3)).tolist() == [-2.0, -5.0, -5.0]
