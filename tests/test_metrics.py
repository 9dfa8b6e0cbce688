"""recinterp.metrics: the bootstrap intervals every metrics.json reports, checked against known distributions."""
import numpy as np
import pytest
import torch

from recinterp.metrics import bootstrap_ci, paired_bootstrap_diff, ranks_from_scores, summarize


def test_bootstrap_ci_by_hand():
    assert bootstrap_ci([0.5] * 7) == (0.5, 0.5, 0.5)  # no spread, no interval
    m, lo, hi = bootstrap_ci([0.0, 1.0, 1.0, 1.0])
    assert m == 0.75 and 0.0 <= lo <= m <= hi <= 1.0
    assert bootstrap_ci([1.0, 2.0], seed=3) == bootstrap_ci([1.0, 2.0], seed=3)  # seeded
    assert summarize([0.0, 1.0])["n"] == 2
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])


@pytest.mark.parametrize("draw, true_mean", [
    (lambda rng, n: rng.normal(2.0, 1.0, n), 2.0),
    (lambda rng, n: (rng.random(n) < 0.3).astype(float), 0.3),  # a hit rate
])
def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time(draw, true_mean):
    rng = np.random.default_rng(0)
    reps, n = 300, 80
    covered = sum(lo <= true_mean <= hi for lo, hi in
                  (bootstrap_ci(draw(rng, n), n_boot=400, seed=r)[1:] for r in range(reps)))
    assert 0.90 <= covered / reps <= 0.99  # the percentile bootstrap at n = 80 covers a little under 95%


def test_paired_difference_covers_the_true_difference_and_is_narrower_than_unpaired():
    rng = np.random.default_rng(1)
    reps, n, delta = 300, 80, 0.2
    covered, paired_w, unpaired_w = 0, [], []
    for r in range(reps):
        case = rng.normal(0.0, 1.0, n)  # what the cases share (a hard case is hard for both)
        a, b = case + delta + rng.normal(0, 0.3, n), case + rng.normal(0, 0.3, n)
        m, lo, hi = paired_bootstrap_diff(a, b, n_boot=400, seed=r)
        covered += lo <= delta <= hi
        paired_w.append(hi - lo)
        _, alo, ahi = bootstrap_ci(a, n_boot=400, seed=r)
        _, blo, bhi = bootstrap_ci(b, n_boot=400, seed=r)
        unpaired_w.append((ahi - alo) + (bhi - blo))
    assert 0.90 <= covered / reps <= 0.99
    assert np.mean(paired_w) < 0.5 * np.mean(unpaired_w)  # pairing removes the shared case difficulty
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap_diff([1.0, 2.0], [1.0])


def test_ranks_count_ties_against_the_target():
    scores = torch.tensor([[0.1, 0.5, 0.5], [0.9, 0.2, 0.3]])
    assert ranks_from_scores(scores, torch.tensor([1, 0])).tolist() == [2, 1]
    with pytest.raises(ValueError, match="out of range"):
        ranks_from_scores(scores, torch.tensor([3, 0]))


def test_format_ci_never_rounds_a_bound_onto_zero():
    from recinterp.metrics import format_ci

    assert format_ci({"mean": 0.1, "lo": 0.05, "hi": 0.19}) == "0.100 [0.050, 0.190]"
    assert format_ci({"mean": 0.09, "lo": 0.00042, "hi": 0.19}) == "0.090 [0.00042, 0.190]"  # excludes 0: says so
    assert format_ci({"mean": -0.09, "lo": -0.19, "hi": -0.0004}, signed=True) == "-0.090 [-0.190, -0.0004]"
    assert format_ci({"mean": 0.0, "lo": 0.0, "hi": 0.0}) == "0.000 [0.000, 0.000]"  # a true 0 stays as it is
