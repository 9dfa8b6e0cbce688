"""Catalogue membership of generated titles and genre consistency (recinterp.novelty)."""
import math
import random

import numpy as np
import pytest

from recinterp.metrics import summarize
from recinterp.novelty import (CatalogueMatcher, genre_overlap, match_catalogue, novel_flags,
                               novelty_share, similarity)

CATALOGUE = ["Toy Story (1995)", "Toy Story 2 (1999)", "Usual Suspects, The (1995)", "Heat (1995)",
             "Babe (1995)", "Star Wars (1977)", "Die Hard (1988)", "Die Hard 2 (1990)", "Amélie (2001)",
             "What's Eating Gilbert Grape? (1993)"]


def test_exact_titles_are_found_with_score_one():
    gen = ["The Usual Suspects", "toy story", "HEAT (1995)", "Usual Suspects, The", "Ame\u0301lie"]
    m = match_catalogue(gen, CATALOGUE)
    assert [r["idx"] for r in m] == [2, 0, 3, 2, 8]
    assert all(r["score"] == 1.0 and r["in_catalogue"] and not r["empty"] for r in m)
    assert m[0]["nearest_title"] == "Usual Suspects, The (1995)"


def test_typos_are_in_the_catalogue_new_titles_are_not():
    m = match_catalogue(["The Usual Suspect", "Toy Strory", "Whats Eating Gilbert Grape",
                         "The Midnight Garden of Echoes", "Heat Wave Over Paris"], CATALOGUE)
    assert [r["in_catalogue"] for r in m] == [True, True, True, False, False]
    assert m[1]["idx"] == 0 and 0.85 <= m[1]["score"] < 1.0
    assert m[3]["score"] < 0.85
    assert novelty_share(m) == pytest.approx(2 / 5)


def test_numbers_must_match_for_sequels():
    m = match_catalogue(["Toy Story 3", "Die Hard 4"], CATALOGUE)
    assert m[0]["score"] > 0.85 and not m[0]["in_catalogue"]  # ratio 0.91 to "Toy Story 2", still new
    assert not m[1]["in_catalogue"]
    loose = match_catalogue(["Toy Story 3"], CATALOGUE, numbers_must_match=False)
    assert loose[0]["in_catalogue"]
    # Existing sequels still match exactly.
    assert match_catalogue(["Die Hard 2"], CATALOGUE)[0]["idx"] == 7


def test_threshold_is_applied_and_validated():
    # "Babe" vs "Babel": ratio 8/9.
    assert similarity("babel", "babe") == pytest.approx(8 / 9)
    assert match_catalogue(["Babel"], CATALOGUE)[0]["in_catalogue"]
    assert not match_catalogue(["Babel"], CATALOGUE, threshold=0.9)[0]["in_catalogue"]
    with pytest.raises(ValueError, match="threshold"):
        match_catalogue(["Babel"], CATALOGUE, threshold=0.0)


def test_empty_generation_is_neither_new_nor_known():
    m = match_catalogue(["", "   ", "Heat"], CATALOGUE)
    assert m[0] == {"idx": None, "nearest_title": None, "score": 0.0, "in_catalogue": False, "empty": True}
    assert m[1]["empty"]
    assert novelty_share(m) == 0.0
    assert math.isnan(novelty_share(m[:2]))
    assert novel_flags(m).tolist() == [0.0]
    assert CatalogueMatcher(CATALOGUE).nearest("") == []


def test_nearest_titles_k_and_order():
    matcher = CatalogueMatcher(CATALOGUE)
    res = [matcher.nearest("Die Hard 3", k=3)]
    idx = [i for i, _ in res[0]]
    assert set(idx[:2]) == {6, 7} and len(idx) == 3
    scores = [s for _, s in res[0]]
    assert scores == sorted(scores, reverse=True)
    # k larger than the catalogue returns the whole catalogue.
    assert len(matcher.nearest("Heat", k=50)) == len(CATALOGUE)
    with pytest.raises(ValueError, match="k must be"):
        matcher.nearest("Heat", k=0)


def test_bad_catalogue_is_rejected():
    with pytest.raises(ValueError, match="empty catalogue"):
        CatalogueMatcher([])
    with pytest.raises(TypeError, match="list of strings"):
        CatalogueMatcher("Heat")


def test_prefilter_agrees_with_exhaustive_search_on_decisions():
    rng = random.Random(0)
    words = ["night", "red", "river", "city", "lost", "dark", "summer", "king", "moon", "blue", "road", "ghost"]
    cat = sorted({" ".join(rng.sample(words, rng.randint(1, 4))).title() for _ in range(400)})
    gen = []
    for _ in range(60):
        t = rng.choice(cat)
        i = rng.randrange(len(t))
        gen.append(rng.choice([t, t[:i] + "x" + t[i + 1:], t + " Returns", " ".join(rng.sample(words, 3))]))
    matcher = CatalogueMatcher(cat)
    fast = match_catalogue(gen, matcher, prefilter=5)
    slow = match_catalogue(gen, matcher, prefilter=None)
    assert [r["in_catalogue"] for r in fast] == [r["in_catalogue"] for r in slow]
    for f, s in zip(fast, slow):
        assert f["score"] <= s["score"] + 1e-12
        if s["score"] >= 0.85:  # above the threshold the best title is guaranteed
            assert f["score"] == pytest.approx(s["score"])


def test_ratio_upper_bound_is_an_upper_bound():
    matcher = CatalogueMatcher(CATALOGUE)
    for g in ["toy stroy", "heat wave", "the usual suspects", "zzz", "gilbert"]:
        bound = matcher.ratio_upper_bound(g)
        exact = np.array([similarity(g, f) for f in matcher.forms])
        assert (bound >= exact - 1e-12).all()


def test_novelty_share_feeds_a_bootstrap_ci():
    m = match_catalogue(["Heat", "Brand New Film", "Another Unseen Story", "Babe"], CATALOGUE)
    s = summarize(novel_flags(m))
    assert s["n"] == 4 and s["mean"] == pytest.approx(0.5) and s["lo"] <= 0.5 <= s["hi"]


def test_genre_overlap_union_jaccard():
    hist = [["Action", "Thriller"], ["Comedy"], []]
    assert genre_overlap(hist, ["action"]) == pytest.approx(1 / 3)  # {action} vs {action,thriller,comedy}
    assert genre_overlap(hist, ["Action", "Thriller", "Comedy"]) == 1.0
    assert genre_overlap(hist, ["Horror"]) == 0.0
    assert genre_overlap(hist, ["Action", "Horror"]) == pytest.approx(1 / 4)


def test_genre_overlap_weighted():
    hist = [["Drama"], ["Drama"], ["Drama", "Romance"], ["Comedy"]]
    # f = {drama: .75, romance: .25, comedy: .25}; item {drama}: .75 / (1 + .25 + .25)
    assert genre_overlap(hist, ["Drama"], mode="weighted") == pytest.approx(0.75 / 1.5)
    assert genre_overlap(hist, ["Comedy"], mode="weighted") == pytest.approx(0.25 / (1 + 0.75 + 0.25))
    # Same genres everywhere: weighted equals union.
    same = [["A", "B"], ["A", "B"]]
    for item in (["A"], ["A", "C"], ["A", "B"]):
        assert genre_overlap(same, item, mode="weighted") == pytest.approx(genre_overlap(same, item))


def test_genre_overlap_unknown_and_bad_input():
    assert math.isnan(genre_overlap([["Drama"]], []))
    assert math.isnan(genre_overlap([[], []], ["Drama"]))
    assert math.isnan(genre_overlap([], ["Drama"]))
    with pytest.raises(ValueError, match="unknown mode"):
        genre_overlap([["Drama"]], ["Drama"], mode="cosine")
    with pytest.raises(TypeError, match="list of genre strings"):
        genre_overlap([["Drama"]], "Drama")
