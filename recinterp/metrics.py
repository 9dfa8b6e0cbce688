"""Metrics shared by every task, with the uncertainty that small CPU runs need.

- ``topk_metrics``: full-ranking HR@K / NDCG@K for next-item recommendation.
- ``ranks_from_scores``: the one ranking function (ties count against the target).
- ``bootstrap_ci`` / ``paired_bootstrap_diff``: 95% intervals, so a reader can tell
  signal from noise when n is a few hundred.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import math

import numpy as np

if TYPE_CHECKING:  # the functions take tensors, but only call their methods: reading metrics needs no torch
    import torch


def ranks_from_scores(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1-based rank of ``target`` in each row of ``scores`` (higher score = better).

    Ties are broken pessimistically (a tied competitor counts as ahead), so a constant
    scorer never looks better than chance.
    scores: (N, C) float; target: (N,) int64 column index -> (N,) int64 ranks in 1..C.
    """
    if scores.dim() != 2 or target.dim() != 1 or scores.shape[0] != target.shape[0]:
        raise ValueError(f"scores must be (N, C) and target (N,), got {tuple(scores.shape)} and {tuple(target.shape)}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= scores.shape[1]):
        raise ValueError(f"target index out of range 0..{scores.shape[1] - 1}")
    tgt = scores.gather(1, target.view(-1, 1))  # (N, 1)
    ahead = (scores > tgt).sum(1)
    ties = (scores == tgt).sum(1) - 1  # the target itself is not a competitor
    return (ahead + ties + 1).long()


def topk_metrics(scores: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (10, 20),
                 exclude: torch.Tensor | None = None) -> dict[str, float]:
    """Full-ranking HR@K and NDCG@K (one relevant item per row), averaged over rows.

    ``exclude``: optional (N, C) bool mask of items that may not be recommended
    (set to -inf before ranking), e.g. the padding column.
    """
    per_row = topk_metrics_per_row(scores, target, ks, exclude)
    return {k: float(v.mean()) if len(v) else float("nan") for k, v in per_row.items()}


def topk_metrics_per_row(scores, target, ks=(10, 20), exclude=None) -> dict[str, np.ndarray]:
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
    ranks = ranks_from_scores(scores.float(), target).cpu().numpy()
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"HR@{k}"] = hit.astype(float)
        out[f"NDCG@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0)
    return out


def bootstrap_ci(values: Sequence[float] | np.ndarray, n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0, stat=np.mean) -> tuple[float, float, float]:
    """(point estimate, lower, upper) percentile bootstrap interval of ``stat`` over cases."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    boots = stat(v[idx], axis=1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(stat(v)), float(lo), float(hi)


def paired_bootstrap_diff(a, b, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over the same cases, with a paired bootstrap interval.

    Use it to compare a metric with its control on the same evaluation cases: the
    difference counts as signal only when the interval excludes 0.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, n_boot=n_boot, alpha=alpha, seed=seed)


def summarize(values, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """{'mean', 'lo', 'hi', 'n'}: the form every metrics.json uses for a metric with a CI."""
    m, lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
    return {"mean": m, "lo": lo, "hi": hi, "n": int(np.asarray(values).size)}



def ci_values(s) -> tuple[float, float, float]:
    """(mean, lo, hi) of a {mean, lo, hi} summary (lo = hi = mean when it has no interval); NaNs when ``s`` is none."""
    if not isinstance(s, dict) or "mean" not in s:
        return math.nan, math.nan, math.nan
    return float(s["mean"]), float(s.get("lo", s["mean"])), float(s.get("hi", s["mean"]))


def format_ci(s, digits: int = 3, signed: bool = False) -> str:
    """'0.123 [0.100, 0.150]' from a {mean, lo, hi} summary ('+0.123 [...]' for a difference with ``signed``);
    "" when there is none or its mean is NaN.  The one CI formatter of tables, figures and the headline.

    A bound that lies off 0 but would round to it (lo = 0.0004 at 3 digits) keeps ``digits`` significant digits
    ('0.0004', not '0.000'), so an interval that excludes 0 never reads as one that touches it."""
    mean, lo, hi = ci_values(s)
    if mean != mean:
        return ""
    f = f"{'+' if signed else ''}.{digits}f"

    def bound(x: float) -> str:
        text = f"{x:{f}}"
        if x != 0 and float(text) == 0:  # the side of 0 would be lost in the rounding
            return f"{x:{'+' if signed else ''}.{digits}g}"
        return text

    return f"{mean:{f}} [{bound(lo)}, {bound(hi)}]"
