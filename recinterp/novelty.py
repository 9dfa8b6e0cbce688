"""Is an instantiated (generated) title in the catalogue? And does it fit the history's content?

What it measures
----------------
Task 3 names DreamRec's "ideal item" with the LLM; the paper reports that more than 20% of those
names are not items of the dataset. ``match_catalogue`` finds, for each generated title, the
nearest catalogue title and calls it *in the catalogue* when the two are near-identical;
``novelty_share`` is the share of (non-empty) generated titles that are not.

Similarity (stated, so the number can be re-derived)
----------------------------------------------------
Both sides are put in comparison form: ``recinterp.data.titles.normalize_title`` (year dropped,
article in front, ...) then ``recinterp.textmatch.normalize_text`` (NFKC, casefold, quotes,
dashes, whitespace). The score is ``difflib.SequenceMatcher(None, gen, cat, autojunk=False)
.ratio()`` = 2·M / (len(gen) + len(cat)), M = matched characters, in [0, 1]; 1.0 means equal
comparison forms. Computing it for every (generated, catalogue) pair is slow in pure Python, so
a character-3-gram cosine prefilter (inverted index over the catalogue, numpy) keeps the
``prefilter`` most similar catalogue titles per generated title and only those are scored
exactly, plus every catalogue title whose ratio *upper bound* (difflib's quick_ratio: shared
character counts, one numpy operation over the catalogue) reaches the threshold. So the
in/out decision is exact (no title that could reach the threshold is skipped); only the
reported nearest title of a clearly novel generation (score below the threshold) may be a
near-best rather than the best. ``prefilter=None`` scores the whole catalogue.

A title is *in the catalogue* when ``score >= threshold`` (default 0.85: tolerates a typo or a
dropped article in a medium-length title) *and*, by default, the nearest title has the same
numbers (the multiset of digit runs): "Toy Story 3" is a different film from "Toy Story 2"
although their ratio is 0.91.

Known limits
------------
- Character similarity, not identity: a short made-up title can sit within 0.85 of a short real
  one ("Heat" vs "Beat": 0.75, "Babe" vs "Babel": 0.89 -> counted as in the catalogue), and a
  real film written differently ("The Godfather Part II" vs "The Godfather: Part II" is fine,
  "Se7en" vs "Seven (Se7en)" is not) can count as new. Report the threshold with the share and
  look at the nearest titles of a sample.
- "In the catalogue" means this dataset's catalogue, not "a real item": a real film missing
  from MovieLens-100K counts as new, as in the paper.
- Below the threshold the prefilter can drop the best-ratio title (3-gram cosine and ratio
  disagree): the reported nearest title may then be a near-best one; the in/out decision is
  not affected (see above).
- ``genre_overlap`` needs genre lists; Steam items without metadata give NaN.
"""
from __future__ import annotations

import math
from collections import Counter
from difflib import SequenceMatcher
from typing import Sequence

import numpy as np

from .textmatch import normalize_text


def comparison_form(title: str) -> str:
    """The normalised form both sides are compared in."""
    from recinterp.data.titles import normalize_title  # lazy: keeps this module light

    return normalize_text(normalize_title(title))


def similarity(a: str, b: str) -> float:
    """SequenceMatcher ratio of two strings already in comparison form."""
    if not a and not b:
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _trigrams(s: str) -> Counter:
    s = f"  {s} "  # pad so that first/last characters and very short titles still give grams
    return Counter(s[i:i + 3] for i in range(len(s) - 2))


class _TrigramIndex:
    """Inverted index gram -> (catalogue rows, tf weights / row norm) for cosine scoring."""

    def __init__(self, forms: Sequence[str]):
        self.n = len(forms)
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for row, form in enumerate(forms):
            grams = _trigrams(form)
            norm = math.sqrt(sum(c * c for c in grams.values())) or 1.0
            for g, c in grams.items():
                rows, ws = postings.setdefault(g, ([], []))
                rows.append(row)
                ws.append(c / norm)
        self.postings = {g: (np.asarray(r, dtype=np.int64), np.asarray(w, dtype=np.float64))
                         for g, (r, w) in postings.items()}

    def cosine(self, form: str) -> np.ndarray:
        """(n,) cosine similarity of ``form``'s 3-gram counts to every catalogue row."""
        scores = np.zeros(self.n)
        grams = _trigrams(form)
        norm = math.sqrt(sum(c * c for c in grams.values())) or 1.0
        for g, c in grams.items():
            hit = self.postings.get(g)
            if hit is not None:
                scores[hit[0]] += hit[1] * (c / norm)  # rows are unique within one posting
        return scores


class CatalogueMatcher:
    """Reusable nearest-title search over one catalogue (build once, query many times)."""

    def __init__(self, catalogue_titles: Sequence[str]):
        if isinstance(catalogue_titles, str):
            raise TypeError("catalogue_titles must be a list of strings, got one string")
        if len(catalogue_titles) == 0:
            raise ValueError("empty catalogue: nothing to match against")
        self.titles = list(catalogue_titles)
        self.forms = [comparison_form(t) for t in self.titles]
        self.exact: dict[str, int] = {}
        for i, f in enumerate(self.forms):
            self.exact.setdefault(f, i)  # first item wins when two items share a name
        self.index = _TrigramIndex(self.forms)
        # Character counts per title: sum_c min(count_gen(c), count_cat(c)) bounds the number of
        # matched characters, so 2 * that / (len_gen + len_cat) bounds the ratio from above
        # (difflib's quick_ratio), for the whole catalogue in one numpy operation.
        alphabet = sorted(set("".join(self.forms)))
        self.char_col = {ch: j for j, ch in enumerate(alphabet)}
        self.char_counts = np.zeros((len(self.forms), len(alphabet)), dtype=np.int32)
        for i, f in enumerate(self.forms):
            for ch, c in Counter(f).items():
                self.char_counts[i, self.char_col[ch]] = c
        self.lengths = np.asarray([len(f) for f in self.forms], dtype=np.int64)

    def ratio_upper_bound(self, form: str) -> np.ndarray:
        """(n,) upper bound of the ratio of ``form`` to every catalogue title."""
        cnt = Counter(ch for ch in form if ch in self.char_col)
        if not cnt:
            return np.zeros(len(self.forms))
        cols = np.asarray([self.char_col[ch] for ch in cnt])
        q = np.asarray(list(cnt.values()), dtype=np.int32)
        common = np.minimum(self.char_counts[:, cols], q).sum(1)
        return 2.0 * common / (len(form) + self.lengths)

    def nearest(self, generated: str, k: int = 1, prefilter: int | None = 50,
                exact_above: float | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` (catalogue index, ratio) pairs, best first; [] for an empty title.

        Scored exactly: the ``prefilter`` titles nearest by 3-gram cosine, plus (when
        ``exact_above`` is given) every title whose ratio upper bound reaches ``exact_above``,
        so no title scoring >= ``exact_above`` is ever missed.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        form = comparison_form(generated or "")
        if not form:
            return []
        m = len(self.forms) if prefilter is None else min(max(prefilter, k), len(self.forms))
        if m == len(self.forms):
            cand = np.arange(len(self.forms))
        else:
            cos = self.index.cosine(form)
            cand = np.argpartition(-cos, m - 1)[:m]
            if form in self.exact:  # equal forms may tie with others on cosine: always keep it
                cand = np.union1d(cand, [self.exact[form]])
            if exact_above is not None:
                cand = np.union1d(cand, np.flatnonzero(self.ratio_upper_bound(form) >= exact_above - 1e-12))
        scored = [(int(i), similarity(form, self.forms[i])) for i in cand]
        scored.sort(key=lambda p: (-p[1], p[0]))  # best ratio, then lowest index (deterministic)
        return scored[:k]


def _numbers(form: str) -> Counter:
    out, cur = Counter(), ""
    for ch in form + " ":
        if ch.isdigit():
            cur += ch
        elif cur:
            out[cur.lstrip("0") or "0"] += 1
            cur = ""
    return out


def match_catalogue(generated: Sequence[str], catalogue_norm_titles: Sequence[str] | CatalogueMatcher,
                    threshold: float = 0.85, numbers_must_match: bool = True,
                    prefilter: int | None = 50) -> list[dict]:
    """Per generated title: {idx, nearest_title, score, in_catalogue, empty}.

    ``idx``/``nearest_title`` are None and ``score`` 0.0 for an empty generation (``empty`` True);
    such rows are neither novel nor known and ``novelty_share`` leaves them out.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    matcher = catalogue_norm_titles if isinstance(catalogue_norm_titles, CatalogueMatcher) \
        else CatalogueMatcher(catalogue_norm_titles)
    out = []
    for g in generated:
        best = matcher.nearest(g, k=1, prefilter=prefilter, exact_above=threshold)
        if not best:
            out.append({"idx": None, "nearest_title": None, "score": 0.0, "in_catalogue": False, "empty": True})
            continue
        idx, score = best[0]
        same_numbers = _numbers(comparison_form(g)) == _numbers(matcher.forms[idx])
        inside = score >= threshold and (same_numbers or not numbers_must_match or score == 1.0)
        out.append({"idx": idx, "nearest_title": matcher.titles[idx], "score": float(score),
                    "in_catalogue": bool(inside), "empty": False})
    return out


def novel_flags(matches: Sequence[dict]) -> np.ndarray:
    """1.0 / 0.0 per non-empty generation (1 = not in the catalogue), for bootstrap CIs."""
    return np.asarray([0.0 if m["in_catalogue"] else 1.0 for m in matches if not m["empty"]])


def novelty_share(matches: Sequence[dict]) -> float:
    """Share of non-empty generated titles that are not in the catalogue (NaN if none)."""
    flags = novel_flags(matches)
    return float(flags.mean()) if flags.size else float("nan")


def _genre_set(genres: Sequence[str]) -> set[str]:
    return {g.strip().casefold() for g in genres if g and g.strip()}


def genre_overlap(history_genres: Sequence[Sequence[str]], item_genres: Sequence[str],
                  mode: str = "union") -> float:
    """Content consistency of a candidate next item with a history, in [0, 1] (NaN if unknown).

    mode="union": Jaccard |G_item ∩ G_hist| / |G_item ∪ G_hist|, G_hist = union of the history
    items' genres. Simple, but a history that touches many genres dilutes every candidate.
    mode="weighted": weighted Jaccard (Ruzicka) between the history's genre frequencies
    f(g) = share of history items with genre g and the item's 0/1 genre indicator:
    sum_g min(f, 1[g in item]) / sum_g max(f, 1[g in item]). It rewards the genres the history
    returns to most; equals "union" when every history item has the same genres.
    Genres compare case-insensitively. NaN when the item or every history item lacks genres
    (unknown, not 0): history items without genres are left out of f.
    """
    if mode not in ("union", "weighted"):
        raise ValueError(f"unknown mode {mode!r}: choose 'union' or 'weighted'")
    if isinstance(item_genres, str):
        raise TypeError("item_genres must be a list of genre strings, got one string")
    item = _genre_set(item_genres)
    hist = [_genre_set(h) for h in history_genres]
    hist = [h for h in hist if h]
    if not item or not hist:
        return float("nan")
    union = set().union(*hist)
    if mode == "union":
        return len(item & union) / len(item | union)
    freq = Counter(g for h in hist for g in h)
    f = {g: c / len(hist) for g, c in freq.items()}
    num = sum(f.get(g, 0.0) for g in item)
    den = len(item) + sum(v for g, v in f.items() if g not in item)
    return num / den
