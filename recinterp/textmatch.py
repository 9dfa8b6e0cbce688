"""Which true titles appear in a generated text (task 1 recovery count, task 2 hit rate).

What it measures
----------------
For one generated text and the list of true titles of a sequence, ``found_titles`` says, per
title, whether the title occurs in the text as a *literal* string; ``count_titles_found`` is the
number of true titles found (the paper's "k of 10 recovered").

How a title is matched
----------------------
1. Both sides are put in one comparable form. Titles first go through
   ``recinterp.data.titles.normalize_title`` (drops a trailing " (YYYY)", moves ", The" to the
   front, ...), the same normalisation that builds the training targets. Then titles *and* the
   text go through :func:`normalize_text`: drop trademark signs (™ ® © ℠), Unicode NFKC, unify
   curly quotes and dashes, casefold, collapse whitespace. The text is never year-stripped:
   "Heat (1995)" in free text still contains "heat". The raw title (only text-normalised) is
   tried as a second spelling, so "Usual Suspects, The" written verbatim also counts.
2. Titles are plain strings, never regular expressions: ``(``, ``?``, ``+``, ``*`` and ``.``
   mean themselves (the authors' evaluator fed titles to ``re.search`` unescaped).
3. Word boundaries: if a title starts (ends) with a letter or digit, the character before
   (after) the occurrence must not be a letter or digit (Unicode-aware), so "Heat" is not
   found inside "Heathers". A title that starts or ends with punctuation has no boundary
   requirement on that side.
4. Longest title first, spans consumed: the spellings of all titles are matched from the
   longest to the shortest, and every accepted occurrence consumes its characters. A later
   (shorter) title is found only at an occurrence that touches no consumed character. So when
   the true titles are "Toy Story" and "Toy Story 2", the text "Toy Story 2" credits only
   "Toy Story 2"; "Toy Story 2 and Toy Story" credits both.
5. A title mentioned several times is found once (bool per title). Duplicate entries in the
   title list each get the same answer, so ``count_titles_found`` counts list entries
   (0..len(titles)).

Known limits
------------
- Literal matching: paraphrases ("The Godfather Part 2"), translations, dropped subtitles,
  or "Seven" for "Seven (Se7en)" are misses; this is deliberate (the paper's metric).
- Consumption is greedy by length: two *different* true titles that overlap in the text
  ("Star Wars" and "Wars of the Roses" in "Star Wars of the Roses") credit only the longer.
- Very short titles ("M", "Kids", "Heat") can be found in ordinary prose ("the heat was...");
  the word-boundary rule does not prevent that. Compare with a control (e.g. titles of a
  random other sequence) to see the chance level.
"""
from __future__ import annotations

import unicodedata
from typing import Sequence

import numpy as np

# Characters dropped before NFKC (NFKC would turn "™" into "TM" and glue it to the word).
_DROP = dict.fromkeys(map(ord, "\u2122\u00ae\u00a9\u2120"), None)
# Quote and dash variants unified after NFKC (NFKC leaves these alone).
_UNIFY = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
})


def normalize_text(s: str) -> str:
    """The comparison form of any string (title or generated text): see the module docstring."""
    s = unicodedata.normalize("NFKC", s.translate(_DROP)).translate(_UNIFY).casefold()
    return " ".join(s.split())


def _normalize_title(raw: str) -> str:
    # Imported lazily: the data layer is a heavier module and may not be needed by callers
    # that already hold normalised titles.
    from recinterp.data.titles import normalize_title

    return normalize_title(raw)


def title_spellings(title: str) -> list[str]:
    """The comparison forms under which ``title`` is searched (normalised first, then raw)."""
    forms = [normalize_text(_normalize_title(title)), normalize_text(title)]
    return [f for i, f in enumerate(forms) if f and f not in forms[:i]]


def _is_word_char(ch: str) -> bool:
    return ch.isalnum()


def _occurrences(text: str, pat: str):
    """Start offsets of ``pat`` in ``text`` (overlapping allowed), honouring word boundaries."""
    need_left, need_right = _is_word_char(pat[0]), _is_word_char(pat[-1])
    start = text.find(pat)
    while start != -1:
        end = start + len(pat)
        ok_left = not need_left or start == 0 or not _is_word_char(text[start - 1])
        ok_right = not need_right or end == len(text) or not _is_word_char(text[end])
        if ok_left and ok_right:
            yield start
        start = text.find(pat, start + 1)


def found_titles(text: str, titles: Sequence[str]) -> list[bool]:
    """Per title: does it occur literally in ``text``? (rules in the module docstring)"""
    if isinstance(titles, str):
        raise TypeError("titles must be a list of strings, got one string")
    found = [False] * len(titles)
    norm_text = normalize_text(text or "")
    if not norm_text or not titles:
        return found
    # Each distinct spelling is searched once and credits every title that has it, so a title
    # listed twice (same item twice, or two items sharing a name) gets the same answer.
    owners: dict[str, list[int]] = {}
    for i, t in enumerate(titles):
        for sp in title_spellings(t):
            owners.setdefault(sp, []).append(i)
    consumed = bytearray(len(norm_text))  # 1 where an accepted, longer spelling already sits
    for sp in sorted(owners, key=len, reverse=True):  # longest first (ties: first-seen order)
        for start in _occurrences(norm_text, sp):
            end = start + len(sp)
            if any(consumed[start:end]):
                continue  # inside a longer title's occurrence: not evidence for this title
            for i in owners[sp]:
                found[i] = True
            consumed[start:end] = b"\x01" * (end - start)
    return found


def is_title(text: str, title: str) -> bool:
    """Is ``text`` exactly ``title`` (in the comparison form, either spelling)? The "exact" answer rate."""
    return bool(text) and normalize_text(text) in title_spellings(title)


def count_titles_found(text: str, titles: Sequence[str]) -> int:
    """How many entries of ``titles`` occur in ``text`` (0..len(titles))."""
    return sum(found_titles(text, titles))


# -- shown beside the tables: what a generated text found -----------------------------------
def found_by_position(texts: list[str], answers, titles: list[str]) -> list[dict]:
    """Per case and position p (1 = oldest) of its true titles: is that title found in the text?"""
    rows = []
    for text, row in zip(texts, answers.tolist()):
        truth = [titles[j] for j in row if j >= 0]
        rows += [{"position": p + 1, "found": float(hit)} for p, hit in enumerate(found_titles(text, truth))]
    return rows


def inline(text: str, limit: int = 400) -> str:
    """``text`` as one Markdown inline-code span: line breaks shown as ↵ (a break inside backticks would end the
    span and turn the rest into a list), backticks as quotes, cut at ``limit`` characters."""
    t = text[:limit].replace("`", "'").replace("\r", "").replace("\n", " ↵ ")
    return f"`{t}`" + (" …" if len(text) > limit else "")


def examples_markdown(heading: str, generation: dict, answers, titles: list[str], n_show: int,
                      context=None, pick: str = "best", seed: int = 0) -> str:
    """``n_show`` cases: the true titles (found ones in bold), the answer, the shuffled control's answer, and
    (residual) the history before.  ``pick``: "best" (the best-answered first) or "random" (a seeded sample,
    what a typical case looks like); the heading says which, and the mean count over all cases."""
    per = np.asarray(generation["model"]["per_case"])
    if pick == "best":
        order, how = np.argsort(-per, kind="stable")[:n_show], "the best-answered"
    elif pick == "random":
        order = np.random.default_rng(seed).permutation(len(per))[:n_show]
        how = f"a random sample (seed {seed})"
    else:
        raise ValueError(f"unknown pick {pick!r}: choose 'best' or 'random'")
    lines = [f"### {heading}: {how} {len(order)} of {len(per)} cases (mean count over all: {per.mean():.2f})"]
    for i in order:
        truth = [titles[j] for j in answers[i].tolist() if j >= 0]
        text = generation["model"]["texts"][i]
        hits = found_titles(text, truth)
        if context is not None:
            lines.append(f"- before: {'; '.join(titles[j] for j in context[i].tolist() if j >= 0)[:300]}")
        lines += [f"- truth ({sum(hits)}/{len(truth)} found): " + "; ".join(f"**{t}**" if h else t for t, h in zip(truth, hits)),
                  f"  - answer: {inline(text)}"]
        if "shuffled" in generation:
            lines.append(f"  - shuffled control: {inline(generation['shuffled']['texts'][i], 200)}")
    return "\n".join(lines)
