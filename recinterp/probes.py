"""Likelihood-ranking probes with their controls, and the encoder-space references.

Free-text generation from a small LLM trained for minutes collapses to a few
frequent titles, so every task is also measured by *ranking*: the frozen LLM scores
the true title(s) and N distractor titles by their log-likelihood as the answer,
given the soft tokens, and we report Hit@1, Hit@5 and MRR of the truth.

Score = the *sum* of the answer tokens' log-probabilities (``reduce="sum"``), i.e. the
log-probability of the whole answer, the quantity greedy decoding would prefer.  Its
length bias (long titles score lower) is the same under the model and under every
control, since all conditions rank the same candidates; the per-token mean
(``reduce="mean"``) removes that bias but rewards titles whose later tokens are
predictable from their first ones, whatever the soft tokens say.

Candidate samplers (the distractors):
- ``random``   uniform over the catalogue;
- ``own``      items visible in the same input (the residual task: the other items of
               the window, which the representation also contains: the hard case),
               topped up with random items when the window is short;
- ``popular``  popularity-matched: items of nearly the same training popularity as a
               true answer, so "always say the popular title" does not win.

Controls (``recinterp.controls``), always on the same cases and candidates: ``shuffled``
(features of another case: a derangement), ``zero`` (all soft tokens set to zero), the
popularity ranking, and the encoder-space references (``residual_encoder_scores``; a fitted
``LinearReadout``), which say how much the representation itself holds.
Every metric comes as per-case values + ``summarize`` (mean, bootstrap 95% CI, n) and
paired differences against the controls.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from recinterp.align import train_linear
from recinterp.cases import Cases, get_task
from recinterp.controls import CONTROLS, paired_differences, run_conditions
from recinterp.metrics import summarize

SAMPLERS = ("random", "own", "popular")
KS = (1, 5)


# -- candidates ---------------------------------------------------------------------------
def sample_candidates(cases: Cases, n_distractors: int, kind: str = "random", n_items: int | None = None,
                      popularity: np.ndarray | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """-> (candidates (N, A + M) item ids, n_true (N,), info).

    Columns 0..A-1 hold the true answers (padded columns repeat the first answer and are
    ignored through ``n_true``), columns A.. hold M distractors, never a true answer.
    """
    if kind not in SAMPLERS:
        raise ValueError(f"unknown candidate sampler {kind!r}: choose one of {SAMPLERS}")
    n_items = n_items or int(cases.meta.get("n_items", 0))
    if n_items <= 0:
        raise ValueError("sample_candidates needs n_items (the catalogue size)")
    if kind == "popular" and popularity is None:
        raise ValueError("the popularity-matched sampler needs item popularity counts")
    rng = np.random.default_rng(seed)
    answers = cases.answers.cpu().numpy()
    n_true = (answers >= 0).sum(1)
    M = int(n_distractors)
    if M < 1 or M > n_items - answers.shape[1]:
        raise ValueError(f"n_distractors must be in 1..{n_items - answers.shape[1]}, got {M}")
    if kind == "popular":
        order = np.lexsort((rng.random(n_items), -np.asarray(popularity, float)))  # by count, ties random
        rank_of = np.empty(n_items, int)
        rank_of[order] = np.arange(n_items)
    out, topped_up = [], 0
    for i in range(len(cases)):
        true = [int(a) for a in answers[i] if a >= 0]
        banned = set(true)
        picks: list[int] = []
        if kind == "own":
            own = [int(c) for c in dict.fromkeys(cases.context[i].tolist()) if c >= 0 and c not in banned]
            rng.shuffle(own)
            picks = own[:M]
            topped_up += M - len(picks)
        elif kind == "popular":
            anchors = [rank_of[t] for t in true]
            used = set(banned)
            while len(picks) < M:
                r0 = anchors[len(picks) % len(anchors)]
                for off in _spiral():  # nearest popularity ranks first: r0+1, r0-1, r0+2, ...
                    r = r0 + off
                    if 0 <= r < n_items and int(order[r]) not in used:
                        picks.append(int(order[r]))
                        used.add(int(order[r]))
                        break
        while len(picks) < M:  # random sampler, or topping up
            c = int(rng.integers(0, n_items))
            if c not in banned and c not in picks:
                picks.append(c)
        row = true + [true[0]] * (answers.shape[1] - len(true)) + picks
        out.append(row)
    info = {"sampler": kind, "n_distractors": M, "topped_up_with_random": topped_up}
    return torch.tensor(out, dtype=torch.long), torch.as_tensor(n_true, dtype=torch.long), info


def _spiral():
    k = 1
    while True:
        yield k
        yield -k
        k += 1


# -- ranks and metrics ------------------------------------------------------------------
def true_ranks(scores: torch.Tensor, n_true: torch.Tensor, A: int) -> np.ndarray:
    """(N, A) rank of each true answer among itself + the M distractors (1 = best; ties count
    against the truth); 0 where the answer column is padding."""
    s = torch.as_tensor(scores).float()
    tru, dis = s[:, :A], s[:, A:]  # (N, A), (N, M)
    ranks = 1 + (dis[:, None, :] >= tru[:, :, None]).sum(-1)
    valid = torch.arange(A)[None, :] < torch.as_tensor(n_true)[:, None]
    return torch.where(valid, ranks, torch.zeros_like(ranks)).numpy()


def per_case(ranks: np.ndarray, ks=KS) -> dict[str, np.ndarray]:
    """Per case: Hit@k and reciprocal rank, averaged over the case's true answers."""
    valid = ranks > 0
    n = valid.sum(1).clip(min=1)
    r = np.where(valid, ranks, np.inf)
    out = {f"Hit@{k}": ((r <= k) & valid).sum(1) / n for k in ks}
    out["MRR"] = np.where(valid, 1.0 / r, 0.0).sum(1) / n
    return out


def summary(metrics: dict[str, np.ndarray]) -> dict[str, dict]:
    return {k: summarize(v) for k, v in metrics.items()}


def scored(scores: torch.Tensor, n_true: torch.Tensor, A: int) -> dict:
    """Everything a notebook shows for one condition: per-case values and their summaries."""
    pc = per_case(true_ranks(scores, n_true, A))
    return {"summary": summary(pc), "per_case": pc}


# -- the LLM probe ------------------------------------------------------------------------
def candidate_texts(cases: Cases, candidates: torch.Tensor, titles: list[str]) -> tuple[list[list[str]], bool]:
    """Answer text per candidate, and whether it ends with EOS (``Task.answer_texts``).

    Item / residual: the title is the whole answer (then EOS).  Recovery: the title as the
    first entry of the list ("Title;"), which, with targets in shuffled order, is a
    membership score.
    """
    return get_task(cases.task).answer_texts(candidates.tolist(), titles)


def llm_ranking(interp, cases: Cases, titles: list[str], candidates: torch.Tensor, n_true: torch.Tensor,
                controls=CONTROLS, reduce: str = "sum", prompt_index: int = 0, seed: int = 0,
                max_pairs: int = 128) -> dict:
    """The likelihood-ranking probe and its soft-token controls on the same cases/candidates.

    -> {"model": {...}, "shuffled": {...}, "zero": {...}, "model_vs_shuffled": {...}, ...,
        "n": N, "n_candidates": C, "reduce": reduce}
    """
    A = cases.answers.shape[1]
    texts, eos = candidate_texts(cases, candidates, titles)

    def read(examples, control):
        scores = interp.score_candidates(examples, texts, reduce=reduce, eos=eos, control=control, max_pairs=max_pairs)
        return scored(scores, n_true, A)

    conds = run_conditions(interp, cases, titles, read, controls, prompt_index, seed)
    out = {"n": len(cases), "n_candidates": int(candidates.shape[1] - A + 1), "reduce": reduce,
           "prompt_index": prompt_index, **conds}
    out.update(paired_differences({c: r["per_case"] for c, r in conds.items()}))
    return out


# -- encoder-space references -------------------------------------------------------------
def residual_encoder_scores(item_embeddings: torch.Tensor, h_before: torch.Tensor, h_after: torch.Tensor,
                            candidates: torch.Tensor) -> torch.Tensor:
    """(N, C) item_embedding . (h_after - h_before): does the state move toward the added item?"""
    delta = (h_after - h_before).float()  # (N, d)
    return (item_embeddings.detach().float()[candidates] * delta[:, None, :]).sum(-1)


def mean_state_scores(item_embeddings: torch.Tensor, h_mean: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(N, C) item_embedding . mean state (a parameter-free membership score for recovery)."""
    return (item_embeddings.detach().float()[candidates] * h_mean.float()[:, None, :]).sum(-1)


class LinearReadout(nn.Module):
    """A linear map from the encoder's states to item logits, fitted on training cases.

    It is the reference for how much the representation holds: if a linear readout
    finds the answer and the LLM does not, the LLM channel is the bottleneck.
    Single answer (item, residual): softmax cross-entropy; several (recovery): one
    sigmoid per item (multi-label).
    """

    def __init__(self, d_in: int, n_items: int):
        super().__init__()
        self.lin = nn.Linear(d_in, n_items)

    def forward(self, x):
        return self.lin(x)

    @torch.enable_grad()
    def fit(self, x: torch.Tensor, answers: torch.Tensor, epochs: int = 30, batch_size: int = 512, lr: float = 3e-3,
            weight_decay: float = 1e-4, seed: int = 0) -> "LinearReadout":
        x = x.float()
        n_items = self.lin.out_features
        multi = answers.dim() == 2 and answers.shape[1] > 1
        if multi:
            y = torch.zeros(len(x), n_items)
            rows, cols = (answers >= 0).nonzero(as_tuple=True)
            y[rows, answers[rows, cols]] = 1.0
        else:
            y = answers.reshape(-1)
        loss_fn = F.binary_cross_entropy_with_logits if multi else F.cross_entropy
        train_linear(self.lin, x, y, loss_fn, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                     seed=seed)
        self.eval()
        return self

    @torch.no_grad()
    def candidate_scores(self, x: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return self(x.float()).gather(1, candidates)


def readout_inputs(cases: Cases) -> torch.Tensor:
    """What the readout sees: the same states the adapter could use, as one vector per case (``Task.readout_inputs``)."""
    return get_task(cases.task).readout_inputs(cases)


def reference_readout(train: Cases, n_items: int, seed: int = 0, **kw) -> LinearReadout:
    """The encoder-space reference of the probes: a ``LinearReadout`` fitted on the training cases (not
    the aligned route's adapter readout, ``recinterp.tasks.aligned.fit_readout``)."""
    x = readout_inputs(train)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        ro = LinearReadout(x.shape[1], n_items)
    return ro.fit(x, train.answers, seed=seed, **kw)
