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
appended item with the history; the judged comparison lives in ``recinterp.comparison``;
and notebook 05's steps, per dataset, on an :class:`Instantiation`.  The real-item source
is named after the encoder it comes from (``sources(enc.name)``: its top-1 recommendation).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from .adapter import load_adapter
from .cases import Cases, make_examples, nouns_meta
from .controls import paired_diff
from .data import load_dataset
from .interpreter import Interpreter
from .comparison import Histories, compare, independent_recommender
from .config import REPETITION_PENALTY, TITLE_TOKENS
from .metrics import format_ci, ranks_from_scores, summarize
from .models import SeqEncoder, load_checkpoint
from .novelty import CatalogueMatcher, genre_overlap, match_catalogue, novel_flags
from .prompts import TITLE_SEP, chat_prompt
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
def sources(encoder: str) -> tuple[str, str, str]:
    """Task 3's three candidates, by where they come from: DreamRec, ``encoder``'s own top-1, a random item."""
    return ("dreamrec", encoder, "random")


@torch.no_grad()
def candidate_items(enc: SeqEncoder, dreamrec, ids: torch.Tensor, lens: torch.Tensor, seed: int = 0,
                    w: float | None = None) -> dict[str, dict]:
    """The three next items to instantiate, all as embeddings in ``enc``'s item space.

    - ``dreamrec``: DreamRec's generated x0 (a frozen-table DreamRec built on ``enc``'s table,
      so ``to_source_space`` makes it readable by ``enc``; otherwise fit a bridge first);
      ``ids`` = the nearest catalogue item by inner product in ``enc``'s space (for reference).
    - ``enc.name`` (e.g. ``sasrec``): ``enc``'s own top-1 recommendation (its real embedding).
    - ``random``: a uniformly random catalogue item.
    Returns {source: {"emb": (B, d), "ids": (B,) int64}}.
    """
    g = torch.Generator().manual_seed(seed)
    table = enc.item_embeddings.weight[: enc.n_items]
    x0 = dreamrec.to_source_space(dreamrec.sample_ideal(ids, lens, w=w, generator=g))
    top1 = enc.scores(enc.user_state(ids, lens)).argmax(1)
    rand = torch.randint(0, enc.n_items, (ids.shape[0],), generator=g)
    return {"dreamrec": {"emb": x0, "ids": (x0 @ table.T).argmax(1)},
            enc.name: {"emb": table[top1], "ids": top1},
            "random": {"emb": table[rand], "ids": rand}}


@torch.no_grad()
def name_items(interp, enc: SeqEncoder, ids: torch.Tensor, lens: torch.Tensor, items: dict, titles: list[str],
               dataset: str = "", input: str = "pair", positions: str = "last", max_new_tokens: int = TITLE_TOKENS,
               batch_size: int = 16, prompt_index: int = 0, control: str | None = None,
               nouns: tuple[str, str] | None = None) -> list[str]:
    """The LLM's answer to "which item was added?" for each history + ``items["emb"]``.

    The residual features are built exactly as task 2 builds them (``residual_features``),
    so the task-2 adapter reads them in distribution whenever the item is a real one.
    """
    h_b, l_b, h_a, l_a = residual_states(enc, ids, lens, items["emb"])
    feats = residual_features(h_b.float(), l_b, h_a.float(), l_a, input, positions)
    ids_b, _ = trim_full(enc, ids, lens)
    context = torch.where(ids_b == enc.pad_id, torch.full_like(ids_b, -1), ids_b)
    cases = Cases("residual", input, feats.contiguous(), items["ids"].view(-1, 1).long(), context,
                  meta={"dataset": dataset, "encoder": enc.name, **nouns_meta(nouns)})
    examples = make_examples(cases, range(len(cases)), titles, interp.llm, interp.n_tokens, phase="eval",
                             prompt_index=prompt_index, with_targets=False, layout=interp.layout)
    return interp.generate(examples, max_new_tokens=max_new_tokens, batch_size=batch_size, control=control)


@torch.no_grad()
def name_embeddings(interp, items: dict, titles: list[str], dataset: str = "", max_new_tokens: int = TITLE_TOKENS,
                    batch_size: int = 16, prompt_index: int = 0, control: str | None = None,
                    nouns: tuple[str, str] | None = None) -> list[str]:
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
                  torch.full((B, 1), -1, dtype=torch.long), meta={"dataset": dataset, **nouns_meta(nouns)})
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


# ---------------------------------------------------------------------------------------
# Notebook 05, step by step: one Instantiation per dataset
# ---------------------------------------------------------------------------------------
ROUTE_ADAPTERS = {"appended": "residual", "appended_aligned": "residual_aligned", "direct": "aligner"}  # notebook 04's


@dataclass
class Instantiation:
    """Task 3 on one dataset: the encoder, DreamRec, the routes notebook 04 saved, the test histories,
    and what each step measured (filled in by the methods, in the notebook's order)."""

    name: str
    ds: object
    enc: SeqEncoder
    dr: object
    interps: dict  # route -> Interpreter reading through notebook 04's adapter
    test: object  # the first n_cases test windows
    headline: str  # the route whose answers are the task's answers
    items: dict = field(default_factory=dict)  # source -> {"emb", "ids"}
    routes: dict = field(default_factory=dict)  # route -> source -> named title per history
    fidelity: dict = field(default_factory=dict)  # (route, source) -> route_fidelity, real sources
    novelty: dict = field(default_factory=dict)  # (route, source) -> novelty_summary
    matches: dict = field(default_factory=dict)  # source -> catalogue matches of the headline route's answers
    accuracy: dict = field(default_factory=dict)  # source -> named_is_next (+ retrieval HR@k of its recommender)
    content: dict = field(default_factory=dict)  # source -> content_overlap
    hist_tags: list = field(default_factory=list)  # per history, per item: its content tags
    comparisons: dict = field(default_factory=dict)  # judge -> comparison.compare result

    @classmethod
    def load(cls, llm, checkpoints, name: str, source, encoder: str, n_cases: int, headline_route: str = "end_to_end",
             log=print) -> "Instantiation":
        """The dataset (``source``: a name or a folder), its encoder and DreamRec, and every route notebook 04
        saved (a missing one is skipped, saying so); ``headline_route`` aligned: the direct route."""
        ds = load_dataset(source)
        enc = load_checkpoint(checkpoints, name, encoder)
        dr = load_checkpoint(checkpoints, name, "dreamrec")
        saved = checkpoints / "adapters" / name / encoder
        interps = {}
        for route, adapter in ROUTE_ADAPTERS.items():
            folder = saved / adapter
            if (folder / "adapter_config.json").exists():
                interps[route] = Interpreter(llm, load_adapter(folder, d_llm=llm.hidden_size))
            else:
                log(f"{name}: no {route} route ({folder} is missing: run notebook 04 with that route)")
        if not interps:
            raise FileNotFoundError(f"no adapter of notebook 04 under {saved}: run notebook 04 first")
        test = ds.test.subset(range(min(n_cases, len(ds.test))))
        head = "direct" if headline_route == "aligned" and "direct" in interps else next(iter(interps))
        for route, it in interps.items():
            c = it.adapter_cfg
            log(f"{name}/{route}: {c.kind} adapter, input={c.input}, n_tokens={c.n_tokens}"
                + (f", temperature={c.temperature}" if c.kind == "structured" else "") + f", fitted for {c.encoder}/{c.dataset}")
        log(f"{name}: {len(test)} test histories; headline route: {head}")
        return cls(name, ds, enc, dr, interps, test, head)

    @property
    def sources(self) -> tuple[str, str, str]:
        return sources(self.enc.name)

    @property
    def answers(self) -> dict:
        """source -> the headline route's named titles."""
        return self.routes[self.headline]

    @property
    def titles(self) -> list[str]:
        return self.ds.catalogue.norm_titles

    @property
    def nouns(self) -> tuple[str, str]:
        return self.ds.noun, self.ds.nouns

    def name_candidates(self, max_new_tokens: int, batch_size: int, seed: int = 0, w: float | None = None) -> dict:
        """Every source named on every route: the direct route reads the embedding itself, the appended
        routes read it appended to the history through the residual adapter.  -> route -> source -> titles"""
        t = self.test
        self.items = candidate_items(self.enc, self.dr, t.seqs, t.lens, seed=seed, w=w)
        for route, it in self.interps.items():
            self.routes[route] = {}
            for src in self.sources:
                if route == "direct":
                    raw = name_embeddings(it, self.items[src], self.titles, dataset=self.name,
                                          max_new_tokens=max_new_tokens, batch_size=batch_size, nouns=self.nouns)
                else:
                    raw = name_items(it, self.enc, t.seqs, t.lens, self.items[src], self.titles, dataset=self.name,
                                     input=it.adapter_cfg.input, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                     nouns=self.nouns)
                self.routes[route][src] = [first_title(a) for a in raw]
        return self.routes

    def measure_fidelity(self, seed: int = 0) -> dict:
        """Route fidelity of the real sources (the encoder's top-1, a random item) on every route."""
        self.fidelity = {(route, src): route_fidelity(answers[src], self.items[src]["ids"], self.titles, seed=seed)
                         for route, answers in self.routes.items() for src in self.sources[1:]}
        return self.fidelity

    def measure_novelty(self, threshold: float, seed: int = 0) -> dict:
        """Not-in-catalogue share per route and source; the headline route's catalogue matches kept."""
        matcher = CatalogueMatcher(self.titles)
        for route, answers in self.routes.items():
            for src in self.sources:
                m = match_catalogue(answers[src], matcher, threshold=threshold)
                self.novelty[(route, src)] = novelty_summary(m, seed=seed)
                if route == self.headline:
                    self.matches[src] = m
        return self.novelty

    def example_rows(self, n: int) -> list[dict]:
        """The first ``n`` histories (last 3 titles), the true next title and each source's named title
        (with its nearest catalogue title when it is not in the catalogue)."""
        rows, t = [], self.test
        for i in range(min(n, len(t))):
            hist = [self.titles[j] for j in t.seqs[i, : int(t.lens[i])].tolist()]
            row = {"dataset": self.name, "history (last 3)": " | ".join(hist[-3:]), "true next": self.titles[int(t.next[i])]}
            for src in self.sources:
                m = self.matches[src][i]
                near = f" (≈ {m['nearest_title']}, {m['score']:.2f})" if m["nearest_title"] and not m["in_catalogue"] else ""
                row[src] = f"{self.answers[src][i]}{near}"
            rows.append(row)
        return rows

    def measure_accuracy(self, seed: int = 0) -> None:
        """Is the named item the true next one (and how the two recommenders retrieve it); genre overlap
        of the named and the appended item with the history."""
        t, cat = self.test, self.ds.catalogue
        self.hist_tags = history_tags(cat, t.seqs, t.lens)
        with torch.no_grad():
            ret = {self.enc.name: self.enc.score_sequences(t.seqs, t.lens),
                   "dreamrec": self.dr.score_sequences(t.seqs, t.lens, generator=torch.Generator().manual_seed(seed))}
        for src in self.sources:
            m = self.matches[src]
            self.accuracy[src] = {"named_is_next": named_is_next(m, t.next, seed=seed),
                                  **(retrieval(ret[src], t.next) if src in ret else {})}
            self.content[src] = content_overlap(self.hist_tags, m, self.items[src]["ids"], cat, seed=seed)

    def accuracy_rows(self) -> dict:
        return {f"{self.name} / {src}": {
            "named = next": a["named_is_next"]["mean"], "retrieval HR@1": a.get("retrieval_HR@1"),
            "retrieval HR@10": a.get("retrieval_HR@10"),
            "genre overlap (named)": self.content[src]["named_item"]["mean"] if self.content[src]["named_item"] else None,
            "genre overlap (appended)": self.content[src]["appended_item"]["mean"] if self.content[src]["appended_item"] else None}
            for src, a in self.accuracy.items()}

    def comparison_resources(self, checkpoints, llm=None, local_judge=None, openai_judge=None,
                             batch_size: int = 16, log=print) -> dict:
        """What the judges of ``comparison.JUDGES`` need on this dataset: the independent recommender (never
        this encoder, never DreamRec), its item vectors, whether items have genres/tags, the LLM(s)."""
        rec, label, vectors = independent_recommender(checkpoints, self.name, self.ds, exclude=(self.enc.name,), log=log)
        cat = self.ds.catalogue
        return {"recommender": rec, "recommender_label": label, "vectors": vectors, "llm": llm,
                "has_tags": any(cat.genres) or any(cat.tags or []), "local_llm": local_judge, "openai": openai_judge,
                "batch_size": batch_size}

    def compare(self, judges: dict, threshold: float, seed: int = 0) -> dict:
        """Every judge's validity row and the three paired comparisons of the headline route's answers on
        every evaluated history (``comparison.compare``). -> judge name -> result"""
        h = Histories.from_split(self.ds, self.test, threshold)
        self.comparisons = {name: compare(j, h, self.answers, self.sources, seed=seed) for name, j in judges.items()}
        return self.comparisons

    def comparison_rows(self) -> dict:
        """One row per judge and pair: the judge's validity row beside the paired comparison."""
        rows = {}
        for name, c in self.comparisons.items():
            v = c["validity"]
            for pair, r in c["rows"].items():
                rows[f"{self.name} / {name} / {r['a']} − {r['b']}"] = {
                    "validity: picks true [95% CI]": format_ci(v["picks_true"], 2), "valid": v["valid"],
                    "A − B [95% CI]": format_ci(r["diff"], 2, signed=True) if v["valid"] else "cannot judge",
                    "n": r["diff"]["n"], "wins / ties / losses": f"{r['wins']} / {r['ties']} / {r['losses']}"}
        return rows

    def metrics(self, n_examples: int) -> dict:
        """This dataset's block of notebook 05's metrics.json."""
        hl = self.headline
        d = {"n_cases": len(self.test), "headline_route": hl, "sources": {}, "routes": {}}
        for src in self.sources:
            d["sources"][src] = {"novelty": self.novelty[(hl, src)], "accuracy": self.accuracy[src],
                                 "content": self.content[src], "fidelity": self.fidelity.get((hl, src)),
                                 "examples": self.answers[src][:n_examples]}
        for route, answers in self.routes.items():
            c = self.interps[route].adapter_cfg
            d["routes"][route] = {"adapter": {"kind": c.kind, "input": c.input, "temperature": c.temperature},
                                  "sources": {src: {"novelty": self.novelty[(route, src)],
                                                    "fidelity": self.fidelity.get((route, src)),
                                                    "examples": answers[src][:n_examples]} for src in self.sources}}
        d["comparisons"] = self.comparisons
        return d


def describe_items(llm, titles: list[str], noun: str, n: int, max_new_tokens: int = 40) -> list[dict]:
    """The LLM's one-sentence description of each of the first ``n`` non-empty titles (greedy)."""
    out, tok = [], llm.tokenizer
    for title in titles[:n]:
        if not title:
            continue
        # through the prompt builder: the chat template when the tokenizer has one, a plain prompt otherwise
        text = chat_prompt(tok, f"Describe the {noun} \"{title}\" in one sentence.", system=None)
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        ids = {k: v.to(llm.device) for k, v in ids.items()}
        with torch.no_grad(), llm.autocast():
            gen = llm.model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=REPETITION_PENALTY,
                                     pad_token_id=llm.pad_token_id)
        out.append({"ideal item": title,
                    "description": tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()})
    return out
