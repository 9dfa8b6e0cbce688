"""Task 3, ideal-item instantiation: let the LLM name an item that may not exist.

DreamRec generates, for a history, the embedding of an oracle next item.  To make the
LLM name it we reuse the task-2 route: append the item to the history *as an embedding*,
take the recommender's representation before and after, and ask the residual adapter's
LLM which item was added.  The same route instantiates a real item (SASRec's top-1, a
random item), which gives both the comparison the paper makes and a fidelity control:
for a real item we know what the LLM should have said.

Windows follow task 2 exactly: ``after`` = the last ``max_len`` items of history + [new],
``before`` = ``after`` without its last item.  For a full history of 10 the oldest item
falls out of both, as it does in the data's sliding windows.

The measurements of task 3 (notebook 05) live here too: route fidelity (is a real item's
true title named, against a shuffled pairing), novelty, how often the named item is the
true next one and how the recommenders retrieve it, genre overlap of the named and the
appended item with the history, and how often a judge agrees with that content proxy.
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch

from .cases import Cases, make_examples
from .controls import paired_diff
from .metrics import ranks_from_scores, summarize
from .models import SeqEncoder
from .novelty import genre_overlap, novel_flags
from .prompts import TITLE_SEP
from .tasks.residual import residual_features
from .textmatch import found_titles


def trim_full(enc: SeqEncoder, ids: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the oldest item of every full window (as sliding windows do), to make room for one more."""
    ids, lens = enc.check_ids(ids, lens)
    B, L = ids.shape
    full = lens == L
    shifted = torch.cat([ids[:, 1:], ids.new_full((B, 1), enc.pad_id)], 1)
    return torch.where(full.view(B, 1), shifted, ids), torch.where(full, lens - 1, lens)


@torch.no_grad()
def residual_states(enc: SeqEncoder, ids: torch.Tensor, lens: torch.Tensor, item: torch.Tensor):
    """Hidden states before/after appending ``item`` (B, d), an embedding in the encoder's item space.

    Returns (h_before, lens_before, h_after, lens_after), each h (B, L, d): exactly what task 2
    computes for a window whose last item is ``item``.
    """
    if item.shape != (ids.shape[0], enc.d):
        raise ValueError(f"item must be ({ids.shape[0]}, {enc.d}) embeddings in the encoder's item space, "
                         f"got {tuple(item.shape)}")
    ids_b, lens_b = trim_full(enc, ids, lens)
    x_a, lens_a = enc.append_embedding(ids_b, lens_b, item)
    return enc.hidden_states(ids_b, lens_b), lens_b, enc.hidden_states_from_embeddings(x_a, lens_a), lens_a


# ---------------------------------------------------------------------------------------
# The three candidates, and naming them through the residual adapter
# ---------------------------------------------------------------------------------------
SOURCES = ("dreamrec", "sasrec", "random")


@torch.no_grad()
def candidate_items(enc: SeqEncoder, dreamrec, ids: torch.Tensor, lens: torch.Tensor, seed: int = 0,
                    w: float | None = None) -> dict[str, dict]:
    """The three next items to instantiate, all as embeddings in ``enc``'s item space.

    - ``dreamrec``: DreamRec's generated x0 (a frozen-table DreamRec built on ``enc``'s table,
      so ``to_source_space`` makes it readable by ``enc``; otherwise fit a bridge first);
      ``ids`` = the nearest catalogue item by inner product in ``enc``'s space (for reference).
    - ``sasrec``: ``enc``'s own top-1 recommendation (its real embedding).
    - ``random``: a uniformly random catalogue item.
    Returns {source: {"emb": (B, d), "ids": (B,) int64}}.
    """
    g = torch.Generator().manual_seed(seed)
    table = enc.item_embeddings.weight[: enc.n_items]
    x0 = dreamrec.to_source_space(dreamrec.sample_ideal(ids, lens, w=w, generator=g))
    top1 = enc.scores(enc.user_state(ids, lens)).argmax(1)
    rand = torch.randint(0, enc.n_items, (ids.shape[0],), generator=g)
    return {"dreamrec": {"emb": x0, "ids": (x0 @ table.T).argmax(1)},
            "sasrec": {"emb": table[top1], "ids": top1},
            "random": {"emb": table[rand], "ids": rand}}


@torch.no_grad()
def name_items(interp, enc: SeqEncoder, ids: torch.Tensor, lens: torch.Tensor, items: dict, titles: list[str],
               dataset: str = "", input: str = "pair", positions: str = "last", max_new_tokens: int = 24,
               batch_size: int = 16, prompt_index: int = 0, control: str | None = None) -> list[str]:
    """The LLM's answer to "which item was added?" for each history + ``items["emb"]``.

    The residual features are built exactly as task 2 builds them (``residual_features``),
    so the task-2 adapter reads them in distribution whenever the item is a real one.
    """
    h_b, l_b, h_a, l_a = residual_states(enc, ids, lens, items["emb"])
    feats = residual_features(h_b.float(), l_b, h_a.float(), l_a, input, positions)
    ids_b, _ = trim_full(enc, ids, lens)
    context = torch.where(ids_b == enc.pad_id, torch.full_like(ids_b, -1), ids_b)
    cases = Cases("residual", input, feats.contiguous(), items["ids"].view(-1, 1).long(), context,
                  meta={"dataset": dataset, "encoder": enc.name})
    examples = make_examples(cases, range(len(cases)), titles, interp.llm, interp.n_tokens, phase="eval",
                             prompt_index=prompt_index, with_targets=False, layout=interp.layout)
    return interp.generate(examples, max_new_tokens=max_new_tokens, batch_size=batch_size, control=control)


@torch.no_grad()
def name_embeddings(interp, items: dict, titles: list[str], dataset: str = "", max_new_tokens: int = 24,
                    batch_size: int = 16, prompt_index: int = 0, control: str | None = None) -> list[str]:
    """The LLM's answer to "which item is this embedding?" for each ``items["emb"]`` (B, d): the direct
    route, for an item adapter (the token-space aligner of recinterp.align) that reads one
    embedding of the encoder's item space.  DreamRec's x0 lives in that space (frozen table),
    so the aligner reads it as it reads a real item; the real items (SASRec's top-1, a random
    item) on exactly this route measure its fidelity.
    """
    emb = items["emb"].detach().float().cpu()
    d = interp.adapter_cfg.d_in
    if emb.dim() != 2 or emb.shape[1] != d:
        raise ValueError(f"items must be (B, {d}) embeddings, got {tuple(emb.shape)}")
    B = emb.shape[0]
    cases = Cases("item", "item", emb[:, None, None, :].contiguous(), items["ids"].view(-1, 1).long().cpu(),
                  torch.full((B, 1), -1, dtype=torch.long), meta={"dataset": dataset})
    examples = make_examples(cases, range(B), titles, interp.llm, interp.n_tokens, phase="eval",
                             prompt_index=prompt_index, with_targets=False, layout=interp.layout)
    return interp.generate(examples, max_new_tokens=max_new_tokens, batch_size=batch_size, control=control)


# A quoted span ("...", “...”, «...») is the title when the answer wraps it in a sentence.
_QUOTED = re.compile(r'["\u201c\u00ab]([^"\u201d\u00bb\n]{1,150})["\u201d\u00bb]')
# "The movie is X", "The game behind the history update is X", "It's X": a lead-in naming the kind of item.
_LEAD_IN = re.compile(r"^(?:(?:the|this|that)\s+(?:\w+\s+){0,3}?(?:movie|film|game|item|title|answer)\b[^.\"]{0,50}?"
                      r"\b(?:is|was|would be)|it(?:'s| is))\s+", re.IGNORECASE)
# Where an unquoted title ends: the first sentence break, dash or "by <someone>" after it.
_TAIL = re.compile(r"\.\s|\.$|\s[-\u2013\u2014]\s|,\s(?:a|an|the)\s|\sby\s")


def first_title(answer: str) -> str:
    """The title an answer names: the adapter was trained to answer with titles alone, but a
    held-out phrasing often gets a sentence ("The movie is "Heat" - a 1995 film ..."), whose
    wrapper must not count as part of the title (it would make every answer "novel").

    First line; a quoted span if there is one; else the text after a short lead-in
    ("The movie is ..."), cut at the first sentence break, dash or " by "; else the first
    ``; ``-separated title.
    """
    line = answer.strip().splitlines()[0].strip() if answer.strip() else ""
    quoted = _QUOTED.search(line)
    if quoted:
        return quoted.group(1).strip()
    rest = _LEAD_IN.sub("", line, count=1)
    if rest != line:
        rest = _TAIL.split(rest, maxsplit=1)[0]
    return rest.split(TITLE_SEP)[0].strip().strip('"').strip()


# ---------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------
NAN_SUMMARY = {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}


def _summary(values, seed: int) -> dict:
    values = np.asarray(values, dtype=float)
    return summarize(values, seed=seed) if values.size else dict(NAN_SUMMARY)


def title_hits(answers: list[str], true_ids, titles: list[str]) -> np.ndarray:
    """1.0 where an answer names the title of its item (literal match, recinterp.textmatch)."""
    return np.array([found_titles(a, [titles[int(i)]])[0] for a, i in zip(answers, true_ids)], dtype=float)


def route_fidelity(answers: list[str], true_ids: torch.Tensor, titles: list[str], seed: int = 0) -> dict:
    """For real appended items: how often the answer names the item, against the same answers
    scored for another case's item (a shuffled pairing: the chance level of naming it)."""
    hit = title_hits(answers, true_ids, titles)
    shuffled = title_hits(answers, torch.as_tensor(true_ids).roll(1), titles)
    return {"hit": summarize(hit, seed=seed), "shuffled": summarize(shuffled, seed=seed),
            "diff": paired_diff(hit, shuffled, seed=seed)}


def novelty_summary(matches: list[dict], seed: int = 0) -> dict:
    """Share of non-empty named titles that are not in the catalogue ({mean, lo, hi, n}; n = 0: none)."""
    return _summary(novel_flags(matches), seed)


def named_is_next(matches: list[dict], next_ids, seed: int = 0) -> dict:
    """How often the named title is the catalogue title of the true next item."""
    return _summary([float(m["in_catalogue"] and m["idx"] == int(t)) for m, t in zip(matches, next_ids)], seed)


def retrieval(scores: torch.Tensor, next_ids: torch.Tensor, ks=(1, 10)) -> dict:
    """HR@k of the true next item in a recommender's full ranking (``metrics.ranks_from_scores``)."""
    ranks = ranks_from_scores(scores.float(), torch.as_tensor(next_ids).long())
    return {f"retrieval_HR@{k}": float((ranks <= k).float().mean()) for k in ks}


def item_tags(catalogue, i: int) -> list[str]:
    """An item's content tags: its genres, and its user tags where the catalogue has them (Steam)."""
    return list(catalogue.genres[i]) + (list(catalogue.tags[i]) if catalogue.tags else [])


def history_tags(catalogue, seqs: torch.Tensor, lens: torch.Tensor) -> list[list[list[str]]]:
    return [[item_tags(catalogue, j) for j in seqs[i, : int(lens[i])].tolist()] for i in range(len(seqs))]


def content_overlap(hist_tags: list, matches: list[dict], appended_ids, catalogue, seed: int = 0) -> dict:
    """Genre overlap with the history (``novelty.genre_overlap``) of the named item (where it is in the
    catalogue) and of the appended item; None where no case has both sides' genres."""
    named = [genre_overlap(h, item_tags(catalogue, m["idx"])) for h, m in zip(hist_tags, matches) if m["in_catalogue"]]
    appended = [genre_overlap(h, item_tags(catalogue, int(j))) for h, j in zip(hist_tags, appended_ids)]
    named, appended = [v for v in named if not math.isnan(v)], [v for v in appended if not math.isnan(v)]
    return {"named_item": summarize(named, seed=seed) if named else None,
            "appended_item": summarize(appended, seed=seed) if appended else None}


def proxy_agreement(verdicts: list[str], hist_tags: list, matches_a: list[dict], matches_b: list[dict], catalogue,
                    seed: int = 0) -> dict | None:
    """Share of judged pairs where the judge's winner ("A" / "B") has the higher genre overlap with the
    history, over pairs whose named items are both in the catalogue with distinct, known overlaps."""
    agree = []
    for verdict, h, ma, mb in zip(verdicts, hist_tags, matches_a, matches_b):
        if not (ma["in_catalogue"] and mb["in_catalogue"]) or verdict not in ("A", "B"):
            continue
        oa, ob = genre_overlap(h, item_tags(catalogue, ma["idx"])), genre_overlap(h, item_tags(catalogue, mb["idx"]))
        if math.isnan(oa) or math.isnan(ob) or oa == ob:
            continue
        agree.append(float((verdict == "A") == (oa > ob)))
    return summarize(agree, seed=seed) if agree else None
