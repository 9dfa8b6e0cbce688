"""Controls: every LLM reading is made again on the same cases without the recommender's signal.

- ``shuffled``: each case reads the features of another case (a derangement: no case keeps
  its own), with its own prompt and target: what the adapter says about *some* user.
- ``zero``: every soft token set to zero (the interpreter does it): what the prompt alone gets.
- ``popularity``: no LLM at all; the most popular items (a ranking by training counts, or
  the most popular titles as a generated answer): what "always name the favourites" gets.

``run_conditions`` makes the model's reading and its soft-token controls with one function
(generation and likelihood ranking both go through it); ``paired_differences`` compares the
model with each control on the same cases (paired bootstrap): a reading counts as signal
only when its interval excludes 0.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from recinterp.cases import Cases, make_examples
from recinterp.metrics import paired_bootstrap_diff
from recinterp.prompts import TITLE_SEP

CONTROLS = ("shuffled", "zero")  # the soft-token controls; "popularity" needs no LLM
ALL_CONTROLS = (*CONTROLS, "popularity")


def check_controls(controls, allowed=CONTROLS) -> tuple[str, ...]:
    unknown = set(controls) - set(allowed)
    if unknown:
        raise ValueError(f"unknown control(s) {sorted(unknown)}: choose from {allowed}")
    return tuple(controls)


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A permutation with no fixed point: case i gets the features of case perm[i] != i."""
    if n < 2:
        raise ValueError("the shuffled control needs at least 2 cases")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    return np.roll(perm, 1)[np.argsort(perm)]  # maps perm[j] -> perm[j-1]: a single n-cycle


def run_conditions(interp, cases: Cases, titles: list[str], read: Callable, controls=CONTROLS,
                   prompt_index: int = 0, seed: int = 0) -> dict:
    """``read(examples, control)`` for the model and each soft-token control, on the same cases.

    -> {"model": read(...), "shuffled": ..., "zero": ...} (the controls asked for).  The
    examples hold the held-out phrasing ``prompt_index`` and no targets; ``control`` is None
    or "zero" (the interpreter's own control).
    """
    controls = check_controls(controls)
    idx = range(len(cases))

    def examples(features_from=None):
        return make_examples(cases, idx, titles, interp.llm, interp.n_tokens, phase="eval", prompt_index=prompt_index,
                             features_from=features_from, with_targets=False, layout=interp.layout)

    out = {"model": read(examples(), None)}
    if "shuffled" in controls:
        out["shuffled"] = read(examples(derangement(len(cases), seed)), None)
    if "zero" in controls:
        out["zero"] = read(examples(), "zero")
    return out


def paired_diff(a, b, seed: int = 0) -> dict:
    """{mean, lo, hi} of a - b over the same cases (paired bootstrap 95% interval)."""
    m, lo, hi = paired_bootstrap_diff(a, b, seed=seed)
    return {"mean": m, "lo": lo, "hi": hi}


def paired_differences(per_case: dict, model: str = "model") -> dict:
    """{"model_vs_<c>": difference} for every condition c of ``per_case`` other than the model.

    ``per_case[c]`` is one array of per-case values, or a dict metric -> array (one
    difference per metric).
    """
    ref = per_case[model]
    out = {}
    for c, v in per_case.items():
        if c == model:
            continue
        out[f"{model}_vs_{c}"] = ({k: paired_diff(ref[k], v[k]) for k in ref} if isinstance(ref, dict)
                                  else paired_diff(ref, v))
    return out


# -- the popularity control ---------------------------------------------------------------
def popularity_answers(popularity: np.ndarray, truth: list[list[str]], titles: list[str]) -> list[str]:
    """Per case the most popular titles, as many as the case has true answers, as one answer text."""
    top = np.argsort(-np.asarray(popularity, float), kind="stable")
    return [TITLE_SEP.join(titles[j] for j in top[: len(t)]) for t in truth]


def popularity_scores(popularity: np.ndarray, candidates: torch.Tensor) -> torch.Tensor:
    """(N, C) training count of every candidate: the popularity ranking."""
    return torch.as_tensor(np.asarray(popularity, float))[candidates]
