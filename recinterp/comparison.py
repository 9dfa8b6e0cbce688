"""Task 3's comparison, grounded in what the user did next: judges, their validity rows, paired rows.

For every evaluated history three answers are named (titles): DreamRec's ideal item, the encoder's
top-1 (SASRec) and a random catalogue item.  A *judge* says, for a history and two answers, which
one is the better next item.  Every judge is asked **both orders** (first/second swapped) and a
case's preference is the mean of the two, from A's side: +1 (A both times), 0 (a tie, or one order
each: a judge that always picks the first-shown answer scores 0 on every case), -1 (B both times).

The validity row
----------------
Before its comparison counts, a judge is offered, for every history, the *true next item's title*
against a *random catalogue item's title* (never the true one), both orders.  Its pick rate
``(1 + preference) / 2`` (1: always the true one, 0.5: chance or ties) gets a bootstrap 95% CI over
the histories; the judge is **valid** only when the CI's lower bound is above 0.5.  A judge that
fails is "cannot judge": its comparison rows are still recorded (``valid: false``) but no figure
or headline draws them as a result.

The rows
--------
DreamRec - SASRec, DreamRec - random, SASRec - random: the mean preference over the histories with
its paired bootstrap 95% CI and n (``metrics.summarize``), plus the win/tie/loss counts.  Score
judges also record each source's mean score and the paired difference of scores.

Judges (``JUDGES``, one registry; ``build_judges`` makes those that can run here)
----------------------------------------------------------------------------------
- ``recommender``: an *independent* recommender (GRU4Rec from notebook 02; Caser when the preset
  trains no GRU4Rec; a closed-form item-to-item co-occurrence model when it trains neither; never
  the encoder that produced one of the answers, never DreamRec) scores each answer mapped back to a
  catalogue item; the higher score for the history wins.
- ``next_cosine``: cosine, in that recommender's item-embedding space, between the answer's item and
  the held-out next item.
- ``next_tags``: Jaccard of the answer item's genres/tags with the held-out next item's (MovieLens
  genres; Steam genres and tags); histories whose next item has none are left out.
- ``llm_history``: the embedded LLM's mean per-token log-likelihood of the answer's title after the
  history (the LLM as a recommender of the answer); ``llm_next``: its log-likelihood of the
  held-out next title after the history and the answer.
- ``local_llm`` / ``openai``: the pairwise chat judges of ``recinterp.judges`` / ``recinterp.openai_judge``
  (the seed's prompt), read as +1 / -1 for "A" / "B", 0 for a tie or no answer.

The unmatched-answer rule
-------------------------
An answer is mapped to a catalogue item with ``novelty.match_catalogue`` (``textmatch``
normalisation, difflib ratio >= the notebook's novelty threshold, numbers must agree).  An answer
that maps to no item (a novel or empty name) scores **lowest** for the catalogue-based judges: it
loses to any matched answer, and two unmatched answers tie.  In score differences it takes the
score's floor (cosine -1, Jaccard 0, the lowest recommender score of that history, the LLM's lowest
score among the answers).  An empty
answer loses to any non-empty one for every judge (the text judges cannot read it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .metrics import summarize
from .novelty import CatalogueMatcher, match_catalogue

NAN = {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}


def _summ(v, seed: int = 0) -> dict:
    v = np.asarray(v, dtype=float)
    v = v[~np.isnan(v)]
    return summarize(v, seed=seed) if v.size else dict(NAN)


def pairs(sources) -> list[tuple[str, str]]:
    """The three comparisons: (DreamRec, encoder), (DreamRec, random), (encoder, random)."""
    dr, real, rand = sources
    return [(dr, real), (dr, rand), (real, rand)]


# ---------------------------------------------------------------------------------------
# What every judge sees: the histories, their true next items, the catalogue
# ---------------------------------------------------------------------------------------
@dataclass
class Histories:
    """The evaluated histories of one dataset: ids, titles, the held-out next item, the catalogue."""

    seqs: torch.Tensor  # (N, L) item ids, right-padded
    lens: torch.Tensor  # (N,)
    next: torch.Tensor  # (N,) the held-out next item
    titles: list[str]  # catalogue titles (normalised), by item id
    tags: list[list[str]]  # per item: genres (and tags), possibly empty
    noun: str = "item"
    threshold: float = 0.85  # catalogue matching (novelty.match_catalogue)

    def __post_init__(self):
        if not (len(self.seqs) == len(self.lens) == len(self.next)):
            raise ValueError(f"seqs, lens and next must have one row per history, got {len(self.seqs)}, "
                             f"{len(self.lens)}, {len(self.next)}")
        self._matcher, self._cache = None, {}

    def __len__(self) -> int:
        return int(len(self.next))

    def history_titles(self, i: int) -> list[str]:
        return [self.titles[j] for j in self.seqs[i, : int(self.lens[i])].tolist()]

    def match(self, answers: list[str]) -> np.ndarray:
        """Catalogue item id of each answer, -1 where it maps to none (the unmatched-answer rule)."""
        todo = [a for a in dict.fromkeys(answers) if a not in self._cache]
        if todo:
            self._matcher = self._matcher or CatalogueMatcher(self.titles)
            for a, m in zip(todo, match_catalogue(todo, self._matcher, threshold=self.threshold)):
                self._cache[a] = int(m["idx"]) if m["in_catalogue"] else -1
        return np.array([self._cache[a] for a in answers], dtype=np.int64)

    @classmethod
    def from_split(cls, ds, split, threshold: float = 0.85) -> "Histories":
        cat = ds.catalogue
        tags = [list(cat.genres[i]) + (list(cat.tags[i]) if cat.tags else []) for i in range(len(cat.norm_titles))]
        return cls(split.seqs, split.lens, split.next, list(cat.norm_titles), tags, ds.noun, threshold)


# ---------------------------------------------------------------------------------------
# The interface: verdicts for (history, first, second); scores for score judges
# ---------------------------------------------------------------------------------------
class ScoreJudge:
    """A judge that scores each answer on its own; the higher score wins.  ``scores`` returns, per case,
    the score (-inf: unmatched, the lowest; NaN: undefined for that history, the case is left out)."""

    name = "score"
    kind = "score"
    floor: float | None = None  # the score an unmatched answer takes in score differences (None: per-case min)

    def scores(self, h: Histories, idx: np.ndarray, answers: list[str]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def verdicts(self, h: Histories, idx: np.ndarray, first: list[str], second: list[str]) -> np.ndarray:
        a, b = self.scores(h, idx, first), self.scores(h, idx, second)
        with np.errstate(invalid="ignore"):
            v = np.sign(np.where(np.isinf(a) & np.isinf(b) & (a == b), 0.0, a - b))
        return np.where(np.isnan(a) | np.isnan(b), np.nan, v)


def preference(judge, h: Histories, idx, a: list[str], b: list[str]) -> dict:
    """Both orders: per case (A's side) the mean of the two verdicts, in [-1, 1] (NaN: left out), and the
    share of decided verdicts that chose the first-shown answer (0.5: no position bias)."""
    idx = np.asarray(idx, dtype=np.int64)
    if not (len(idx) == len(a) == len(b)):
        raise ValueError(f"idx, a and b must have one entry per case, got {len(idx)}, {len(a)}, {len(b)}")
    ea, eb = np.array([not s for s in a], bool), np.array([not s for s in b], bool)
    both = ~ea & ~eb
    v1, v2 = np.zeros(len(idx)), np.zeros(len(idx))
    if both.any():  # the judge is asked only where both answers name something
        k = np.flatnonzero(both)
        sa, sb = [a[i] for i in k], [b[i] for i in k]
        v1[k] = judge.verdicts(h, idx[k], sa, sb)
        v2[k] = -np.asarray(judge.verdicts(h, idx[k], sb, sa), dtype=float)  # back to A's side
    empty = np.where(ea & ~eb, -1.0, np.where(eb & ~ea, 1.0, 0.0))  # an empty answer loses
    pref = np.where(both, (v1 + v2) / 2, empty)
    shown_first = np.concatenate([v1[both], -v2[both]])  # +1 = the first-shown answer won
    shown_first = shown_first[~np.isnan(shown_first) & (shown_first != 0)]
    return {"per_case": pref, "first_shown": _summ(shown_first > 0) if shown_first.size else dict(NAN)}


def comparison_row(pref: np.ndarray, seed: int = 0) -> dict:
    """{diff: mean preference with paired 95% CI and n, wins/ties/losses from A's side}."""
    p = np.asarray(pref, dtype=float)
    p = p[~np.isnan(p)]
    return {"diff": _summ(p, seed), "wins": int((p > 0).sum()), "ties": int((p == 0).sum()),
            "losses": int((p < 0).sum())}


def random_other(next_ids, n_items: int, seed: int = 0) -> np.ndarray:
    """A uniformly random catalogue item per case, never the case's true next item."""
    if n_items < 2:
        raise ValueError("the validity row needs a catalogue of at least 2 items")
    rng = np.random.default_rng(seed)
    nxt = np.asarray(next_ids, dtype=np.int64)
    r = rng.integers(0, n_items - 1, size=len(nxt))
    return r + (r >= nxt)  # skip the true item


def validity_row(judge, h: Histories, seed: int = 0) -> dict:
    """Offered the true next title against a random item's title (both orders), how often does the judge
    pick the true one?  {picks_true: summary of (1 + preference) / 2, valid: CI lower bound > 0.5,
    first_shown, n}."""
    idx = np.arange(len(h))
    rand = random_other(h.next.numpy(), len(h.titles), seed)
    true_t, rand_t = [h.titles[int(i)] for i in h.next], [h.titles[int(i)] for i in rand]
    pr = preference(judge, h, idx, true_t, rand_t)
    picks = _summ((1 + pr["per_case"]) / 2, seed)
    return {"picks_true": picks, "valid": bool(picks["n"] > 0 and picks["lo"] > 0.5),
            "first_shown": pr["first_shown"], "n": picks["n"]}


def compare(judge, h: Histories, answers: dict, sources, seed: int = 0) -> dict:
    """One judge on one dataset: its validity row, then the three paired rows (and, for a score judge,
    each source's mean score and the paired score differences)."""
    validity = validity_row(judge, h, seed)
    idx = np.arange(len(h))
    out = {"judge": judge.name, "kind": judge.kind, "validity": validity, "valid": validity["valid"], "rows": {}}
    for a, b in pairs(sources):
        pr = preference(judge, h, idx, answers[a], answers[b])
        out["rows"][f"{a}_vs_{b}"] = {"a": a, "b": b, **comparison_row(pr["per_case"], seed),
                                      "first_shown": pr["first_shown"]}
    if judge.kind == "score":
        vals = {s: floored(judge, np.where([not a for a in answers[s]], -np.inf, judge.scores(h, idx, answers[s])), h, idx)
                for s in sources}  # an empty answer takes the floor too
        out["scores"] = {s: _summ(v, seed) for s, v in vals.items()}
        out["score_diffs"] = {}
        for a, b in pairs(sources):
            d = vals[a] - vals[b]
            out["score_diffs"][f"{a}_vs_{b}"] = _summ(d, seed)
    return out


def floored(judge, s: np.ndarray, h: Histories, idx) -> np.ndarray:
    """Scores with an unmatched or empty answer (-inf) at the judge's floor: its fixed ``floor``, else its
    ``case_floor`` per history (the recommender: the history's lowest score), else the lowest score seen."""
    s = np.asarray(s, dtype=float).copy()
    low = np.isneginf(s)
    if low.any():
        if judge.floor is not None:
            s[low] = judge.floor
        elif hasattr(judge, "case_floor"):
            s[low] = judge.case_floor(h, np.asarray(idx)[low])
        else:
            seen = s[np.isfinite(s)]
            s[low] = seen.min() if seen.size else math.nan
    return s


# ---------------------------------------------------------------------------------------
# The judges
# ---------------------------------------------------------------------------------------
class RecommenderJudge(ScoreJudge):
    """An independent recommender's score for the answer's item after the history (unmatched: lowest)."""

    def __init__(self, rec, label: str):
        self.rec, self.name = rec, f"recommender:{label}"
        self._scores = None

    def _all(self, h: Histories) -> torch.Tensor:
        if self._scores is None or self._scores[0] is not h:
            with torch.no_grad():
                self._scores = (h, self.rec.score_sequences(h.seqs, h.lens).float())
        return self._scores[1]

    def scores(self, h, idx, answers):
        item = h.match(answers)
        s = self._all(h)[torch.as_tensor(idx)]
        got = s.gather(1, torch.as_tensor(np.maximum(item, 0)).view(-1, 1)).squeeze(1).numpy().astype(float)
        return np.where(item < 0, -np.inf, got)

    def case_floor(self, h, idx):
        return self._all(h)[torch.as_tensor(idx)].min(1).values.numpy().astype(float)


class NextCosineJudge(ScoreJudge):
    """Cosine between the answer's item and the held-out next item in an item-embedding space."""

    kind, floor = "score", -1.0

    def __init__(self, vectors: torch.Tensor, label: str):
        v = torch.as_tensor(vectors, dtype=torch.float32)
        self.v = torch.nn.functional.normalize(v, dim=1).numpy()
        self.name = f"next_cosine:{label}"

    def scores(self, h, idx, answers):
        item = h.match(answers)
        nxt = h.next.numpy()[np.asarray(idx)]
        cos = (self.v[np.maximum(item, 0)] * self.v[nxt]).sum(1).astype(float)
        return np.where(item < 0, -np.inf, cos)


class NextTagsJudge(ScoreJudge):
    """Jaccard of the answer item's genres/tags with the held-out next item's (NaN: the next item has none)."""

    name, kind, floor = "next_tags", "score", 0.0

    def scores(self, h, idx, answers):
        item = h.match(answers)
        out = np.empty(len(item))
        for k, (i, c) in enumerate(zip(item, np.asarray(idx))):
            nxt = {t.casefold() for t in h.tags[int(h.next[c])]}
            got = {t.casefold() for t in h.tags[i]} if i >= 0 else set()
            out[k] = math.nan if not nxt else (-math.inf if i < 0 else len(got & nxt) / len(got | nxt))
        return out


class LLMLikelihoodJudge(ScoreJudge):
    """The frozen LLM's mean per-token log-likelihood of a text after a prompt, from the history.

    mode "history": of the answer's title after the history (no catalogue needed);
    mode "next": of the held-out next title after the history and the answer.
    """

    floor = None

    def __init__(self, llm, mode: str = "history", batch_size: int = 16):
        if mode not in ("history", "next"):
            raise ValueError(f"unknown mode {mode!r}: choose 'history' or 'next'")
        self.llm, self.mode, self.batch_size = llm, mode, batch_size
        self.name = f"llm_{mode}"
        self._memo = {}

    def _prompt(self, h: Histories, c: int, answer: str) -> tuple[str, str]:
        hist = "; ".join(h.history_titles(c))
        if self.mode == "history":
            return f"A user's {h.noun}s, oldest first: {hist}. The next {h.noun} they chose:", f" {answer}"
        return (f"A user's {h.noun}s, oldest first: {hist}; then {answer}. The next {h.noun} they chose:",
                f" {h.titles[int(h.next[c])]}")

    @torch.no_grad()
    def loglik(self, texts: list[tuple[str, str]]) -> np.ndarray:
        """Mean log P(continuation token | prompt, earlier tokens) per (prompt, continuation)."""
        tok, model = self.llm.tokenizer, self.llm.model
        out = np.empty(len(texts))
        for s in range(0, len(texts), self.batch_size):
            chunk = texts[s: s + self.batch_size]
            rows = [(tok(p, add_special_tokens=False)["input_ids"], tok(c, add_special_tokens=False)["input_ids"])
                    for p, c in chunk]
            L = max(len(p) + len(c) for p, c in rows)
            ids = torch.full((len(rows), L), self.llm.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, (p, c) in enumerate(rows):
                ids[r, : len(p) + len(c)] = torch.tensor(p + c)
                mask[r, : len(p) + len(c)] = 1
            with self.llm.autocast():
                logits = model(input_ids=ids.to(self.llm.device), attention_mask=mask.to(self.llm.device)).logits
            logp = torch.log_softmax(logits.float(), -1).cpu()
            for r, (p, c) in enumerate(rows):
                pos = torch.arange(len(p) - 1, len(p) + len(c) - 1)
                out[s + r] = float(logp[r, pos, torch.tensor(c)].mean()) if c else -math.inf
        return out

    def scores(self, h, idx, answers):
        keys = [(int(c), a) for c, a in zip(idx, answers)]
        todo = [k for k in dict.fromkeys(keys) if k not in self._memo]
        if todo:
            for k, v in zip(todo, self.loglik([self._prompt(h, c, a) for c, a in todo])):
                self._memo[k] = v
        return np.array([self._memo[k] for k in keys], dtype=float)


class PairwiseLLMJudge:
    """A chat judge of ``recinterp.judges`` (local or OpenAI-compatible), read as +1 / -1 / 0."""

    kind = "pairwise"

    def __init__(self, judge, name: str):
        self.judge, self.name = judge, name

    def verdicts(self, h, idx, first, second):
        self.judge.item_word = h.noun
        raw = self.judge.compare_batch([(h.history_titles(int(c)), a, b) for c, a, b in zip(idx, first, second)])
        return np.array([{"A": 1.0, "B": -1.0}.get(r, 0.0) for r in raw])


# ---------------------------------------------------------------------------------------
# The independent recommender, and the registry
# ---------------------------------------------------------------------------------------
class CooccurrenceRecommender:
    """Closed-form item-to-item model, for presets that train no second encoder: P(j follows i) from the
    training histories (next-item transitions, smoothed by ``SMOOTH``), a history scores j by the recency-
    weighted sum over its items; item vectors: the top singular vectors of log(1 + co-occurrence).

    Up to ``DENSE_MAX`` items the counts are a dense items x items matrix and the SVD is exact; above it the
    counts stay sparse, the scores are one sparse product and the vectors a seeded randomized SVD
    (``torch.svd_lowrank``), so time and memory grow with the transitions, not with the square of the items."""

    DENSE_MAX = 4096
    SMOOTH = 1e-3

    def __init__(self, n_items: int, d: int = 64):
        self.n_items, self.d = n_items, d

    def fit(self, split) -> "CooccurrenceRecommender":
        n, eps = self.n_items, self.SMOOTH
        seqs, lens, nxt = split.seqs.numpy(), split.lens.numpy(), split.next.numpy()
        full = np.concatenate([seqs, np.full((len(seqs), 1), -1)], 1)
        full[np.arange(len(seqs)), lens] = nxt  # each row: its history, then its next item
        pos = np.arange(full.shape[1] - 1)[None, :]
        a, b = full[:, :-1], full[:, 1:]
        ok = (pos < lens[:, None]) & (a >= 0) & (a < n) & (b >= 0) & (b < n)
        k = min(self.d, n)
        if n <= self.DENSE_MAX:
            c = np.zeros((n, n), dtype=np.float32)
            np.add.at(c, (a[ok], b[ok]), 1.0)
            self.trans, self.counts_t = torch.from_numpy((c + eps) / (c + eps).sum(1, keepdims=True)), None
            sym = np.log1p(c + c.T)
            u, sv, _ = np.linalg.svd(sym, full_matrices=False)
            self.vectors = torch.from_numpy((u[:, :k] * np.sqrt(sv[:k])).astype(np.float32))
            return self
        idx = torch.from_numpy(np.stack([a[ok], b[ok]]).astype(np.int64))
        c = torch.sparse_coo_tensor(idx, torch.ones(idx.shape[1]), (n, n), check_invariants=True).coalesce()
        self.trans, self.counts_t = None, c.t().coalesce()  # transposed once: every scoring multiplies by it
        self.row_z = torch.sparse.sum(c, 1).to_dense() + n * eps  # each row's sum of (counts + eps)
        sym = (c + c.t()).coalesce()
        sym = torch.sparse_coo_tensor(sym.indices(), torch.log1p(sym.values()), (n, n), check_invariants=True).coalesce()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            u, sv, _ = torch.svd_lowrank(sym, q=min(k + 16, n), niter=6)
        self.vectors = (u[:, :k] * sv[:k].sqrt()).float().contiguous()
        return self

    @torch.no_grad()
    def score_sequences(self, ids: torch.Tensor, lens: torch.Tensor, generator=None) -> torch.Tensor:
        B, L = ids.shape
        pos = torch.arange(L).view(1, L)
        w = torch.where(pos < lens.view(B, 1), 0.5 ** (lens.view(B, 1) - 1 - pos).float(), torch.zeros(B, L))
        safe = ids.clamp(0, self.n_items - 1)
        if self.counts_t is None:
            return torch.einsum("bl,bln->bn", w, self.trans[safe])
        # sum_l w_l (c[i_l, j] + eps) / z[i_l] = (W c)[j] + eps * sum_i W[i], with W[b, i] = sum_{l: i_l = i} w_l / z[i]
        W = torch.zeros(B, self.n_items).scatter_add_(1, safe, w / self.row_z[safe])
        return torch.sparse.mm(self.counts_t, W.t()).t() + self.SMOOTH * W.sum(1, keepdim=True)

    def item_vectors(self) -> torch.Tensor:
        return self.vectors


INDEPENDENT = ("gru4rec", "caser")  # notebook 02's encoders, in order of preference


def independent_recommender(checkpoints, dataset: str, ds, exclude: tuple[str, ...] = ("sasrec",), log=print):
    """(model, label, item vectors): GRU4Rec from notebook 02, else Caser, else the co-occurrence model
    fitted here on the training split -- never an encoder in ``exclude`` (the one whose top-1 is an answer)."""
    from .models import load_checkpoint
    from .models.checkpoint import checkpoint_dir

    for name in INDEPENDENT:
        if name in exclude or "dreamrec" == name:
            continue
        if (checkpoint_dir(checkpoints, dataset, name) / "config.json").exists():
            enc = load_checkpoint(checkpoints, dataset, name)
            return enc, name, enc.item_embeddings.weight[: enc.n_items].detach()
    log(f"{dataset}: no GRU4Rec or Caser checkpoint under {Path(checkpoints)} (the preset trains neither): the "
        "independent recommender is an item-to-item co-occurrence model fitted on the training split")
    rec = CooccurrenceRecommender(len(ds.catalogue.norm_titles)).fit(ds.train)
    return rec, "cooccurrence", rec.item_vectors()


JUDGES: dict[str, Callable] = {}  # name -> factory(resources) -> judge, or None where it cannot run here


def register_judge(name: str, factory: Callable) -> None:
    if name in JUDGES:
        raise ValueError(f"a judge named {name!r} is registered already")
    JUDGES[name] = factory


register_judge("recommender", lambda r: RecommenderJudge(r["recommender"], r["recommender_label"])
               if r.get("recommender") is not None else None)
register_judge("next_cosine", lambda r: NextCosineJudge(r["vectors"], r["recommender_label"])
               if r.get("vectors") is not None else None)
register_judge("next_tags", lambda r: NextTagsJudge() if r.get("has_tags") else None)
register_judge("llm_history", lambda r: LLMLikelihoodJudge(r["llm"], "history", r.get("batch_size", 16))
               if r.get("llm") is not None else None)
register_judge("llm_next", lambda r: LLMLikelihoodJudge(r["llm"], "next", r.get("batch_size", 16))
               if r.get("llm") is not None else None)
register_judge("local_llm", lambda r: PairwiseLLMJudge(r["local_llm"], "local_llm") if r.get("local_llm") else None)
register_judge("openai", lambda r: PairwiseLLMJudge(r["openai"], "openai") if r.get("openai") else None)


def build_judges(names, resources: dict) -> dict:
    """name -> judge for each registered ``names`` that can run with ``resources`` (the others are left out)."""
    unknown = [n for n in names if n not in JUDGES]
    if unknown:
        raise ValueError(f"unknown judge(s) {unknown}: choose from {sorted(JUDGES)}")
    return {n: j for n in names if (j := JUDGES[n](resources)) is not None}
