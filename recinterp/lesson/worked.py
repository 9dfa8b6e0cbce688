"""The worked case: one test window through both routes, every step made visible.

    case = worked_case(grid, end_to_end + aligned, dataset="movielens", encoder="sasrec")
    case                      # Markdown: the window, the states, each route's adapter, prompt, soft tokens, answer
    case.record(metrics)      # metrics["worked_case"]: what the notebook tests read

A task notebook shows one real test window before any table (d2l.ai: a small worked example
before the general code).  Nothing is recomputed for the answers: they are the texts the
evaluation generated for this very case (the model and its shuffled and zero controls), so
the case and the tables agree.  What the evaluation does not keep is rebuilt here from the
saved adapter: the prompt as the LLM receives it (slot positions marked), the soft tokens and
the tokens of the LLM's vocabulary they lie closest to, and (token-space route) the item the
readout picks at each position.

The case is drawn at random (seeded) from the evaluated cases, not picked as the best one; its
count is shown beside the mean over all cases so a reader sees whether it is typical.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from recinterp.adapter import load_adapter
from recinterp.cases import Cases, make_examples
from recinterp.controls import derangement
from recinterp.interpreter import Interpreter
from recinterp.llm import SLOT_TOKEN
from recinterp.models import encoder_label
from recinterp.novelty import CatalogueMatcher, match_catalogue
from recinterp.textmatch import found_titles, inline

MARK = "⟨{}⟩"  # how a slot position is shown in the printed prompt


@dataclass
class RouteView:
    """One route's reading of the case: its adapter, the prompt, the soft tokens, the answers."""

    route: str  # "aligned" or the end-to-end adapter's name ("linear10")
    role: str  # the report role: main | contrast
    kind: str  # the adapter's kind
    n_params: int  # trainable parameters (the structured adapter: readout + aligner, its item table excluded)
    n_soft: int  # soft tokens the prompt carries
    per_position: int  # soft tokens per window position (the "k" of "10 x k")
    prompt: str  # the prompt text with each slot position shown as ⟨i⟩
    nearest: list[str]  # per soft token: the nearest vocabulary token (cosine), in prompt order
    readout_picks: list[str] | None  # token-space route: the readout's top item at each position
    answer: str
    found: list[bool]  # per true title: named in the answer
    shuffled: str
    shuffled_found: list[bool]
    shuffled_from: int  # the case whose states the shuffled control spliced in
    zero: str | None
    zero_found: list[bool] | None
    mean_found: float  # the route's mean count over every evaluated case (what the table reports)
    train: str  # how it was made: "10 steps, 95 s" / "fitted in 4 s, no LLM pass"

    @property
    def count(self) -> int:
        return int(sum(self.found))


@dataclass
class WorkedCase:
    task: str
    dataset: str
    encoder: str
    index: int  # the case's index among the evaluated cases
    n: int  # evaluated cases it was drawn from
    seed: int
    window: list[str]  # the titles the encoder read, oldest first
    truth: list[str]  # the titles a right answer names
    features_shape: tuple  # (S, P, d_in): what the adapter reads
    routes: list[RouteView] = field(default_factory=list)

    # -- rendering --------------------------------------------------------------------------
    def markdown(self) -> str:
        L = [f"### One test window of {self.dataset}, read by {encoder_label(self.encoder)}",
             f"Case {self.index + 1} of the {self.n} evaluated (drawn at random with seed {self.seed}, not picked).",
             ""]
        if self.task == "residual":
            L.append(f"**The window before** ({len(self.window) - 1} items, oldest first): "
                     + "; ".join(self.window[:-1]))
            L.append(f"\n**The item added last** (what the LLM should name): **{self.truth[0]}**")
        else:
            L.append(f"**The window** ({len(self.window)} items, oldest first): "
                     + "; ".join(f"{i + 1}. {t}" for i, t in enumerate(self.window)))
        S, P, d = self.features_shape
        L.append(f"\n**What the adapter reads:** the encoder's states, a tensor of shape ({S}, {P}, {d}): "
                 f"{S} placeholder{'s' if S > 1 else ''} in the prompt, {P} position{'s' if P > 1 else ''} each, "
                 f"a {d}-dimensional state per position. No title, no item id reaches the LLM.")
        for r in self.routes:
            L += ["", f"#### Route {r.route} ({r.role}): {r.train}",
                  f"- adapter `{r.kind}`, {r.n_params:,} "
                  + ("parameters, all *fitted* without the LLM (the readout's and the aligner's weights; the item "
                     "table is not counted)" if r.kind == "structured" else "trainable parameters")
                  + f", {r.n_soft} soft tokens "
                  f"({r.n_soft // max(r.per_position, 1)} x k with k = {r.per_position} per position)",
                  "- the prompt as the LLM receives it (each ⟨i⟩ is one position whose embedding is a soft token):",
                  "", "```text", r.prompt.strip(), "```", ""]
            if r.readout_picks is not None:
                L.append("- the readout's pick at each position (what the soft tokens spell): "
                         + "; ".join(f"{i + 1}. {t}" for i, t in enumerate(r.readout_picks)))
            L.append("- nearest vocabulary token to each soft token (cosine): "
                     + " ".join(f"`{t}`" for t in r.nearest[:40]) + (" ..." if len(r.nearest) > 40 else ""))
            L.append(f"- **the answer** (names {r.count} of {len(self.truth)}; this route's mean over the {self.n} "
                     f"cases: {r.mean_found:.2f}): {inline(r.answer)}")
            L.append(f"- shuffled control (case {r.shuffled_from + 1}'s states in the same prompt; names {int(sum(r.shuffled_found))}): "
                     f"{inline(r.shuffled, 300)}")
            if r.zero is not None:
                L.append(f"- zero control (all soft tokens zero; names {int(sum(r.zero_found))}): {inline(r.zero, 300)}")
        # a list, not a Markdown table: the book renders output Markdown without the table extension
        L += ["", "**The true titles**, and which route's answer names each:", ""]
        for j, t in enumerate(self.truth):
            L.append(f"- {t}: " + "; ".join(f"{r.route} **names it**" if r.found[j] else f"{r.route} misses"
                                            for r in self.routes))
        return "\n".join(L) + "\n"

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def to_dict(self) -> dict:
        return {"task": self.task, "dataset": self.dataset, "encoder": self.encoder, "case": self.index, "n": self.n,
                "seed": self.seed, "window": self.window, "truth": self.truth,
                "features_shape": list(self.features_shape),
                "routes": {r.route: {"role": r.role, "kind": r.kind, "n_params": r.n_params, "n_soft_tokens": r.n_soft,
                                     "per_position": r.per_position, "found": r.count,
                                     "shuffled_found": int(sum(r.shuffled_found)), "mean_found": r.mean_found,
                                     "answer": r.answer, "prompt_slots": r.prompt.count("⟨")}
                           for r in self.routes}}

    def record(self, metrics: dict) -> dict:
        metrics["worked_case"] = self.to_dict()
        return metrics


# -- building --------------------------------------------------------------------------------
def marked_prompt(prompt: str) -> str:
    """The prompt with its slot tokens numbered: '<|rec_slot|><|rec_slot|>' -> '⟨1⟩⟨2⟩'."""
    parts = prompt.split(SLOT_TOKEN)
    return "".join(p + (MARK.format(i + 1) if i < len(parts) - 1 else "") for i, p in enumerate(parts))


@torch.no_grad()
def nearest_tokens(llm, soft: torch.Tensor) -> list[str]:
    """(n, d_llm) soft tokens -> the LLM vocabulary token whose input embedding is closest (cosine) to each."""
    E = llm.model.get_input_embeddings().weight.detach().float()  # (V, d_llm)
    s = soft.detach().float().to(E.device)
    sim = torch.nn.functional.normalize(s, dim=-1) @ torch.nn.functional.normalize(E, dim=-1).T  # (n, V)
    zero = s.abs().sum(-1) == 0  # a padded position's soft tokens are all zero: no nearest token
    ids = sim.argmax(-1).tolist()
    return ["·" if z else llm.tokenizer.convert_ids_to_tokens(i).replace("Ġ", " ").replace("Ċ", "\\n")
            for i, z in zip(ids, zero.tolist())]


def _trainable(adapter) -> int:
    return sum(p.numel() for p in adapter.parameters() if p.requires_grad)


def _same_case(a: Cases, i: int, b: Cases) -> int | None:
    """The index in ``b`` of the case ``i`` of ``a`` (same answers and visible items), or None."""
    hit = ((b.answers == a.answers[i]).all(1) & (b.context == a.context[i]).all(1)).nonzero(as_tuple=True)[0]
    return int(hit[0]) if len(hit) else None


def route_view(run, i: int, llm, titles: list[str], seed: int = 0) -> RouteView:
    """One evaluated run's view of its case ``i`` (a ``grid.Run`` with cases and a generation block)."""
    cases, ev = run.cases, run.eval
    gen = ev.get("generation") if ev else None
    if cases is None or not gen:
        raise ValueError(f"run {run.key} kept no evaluated cases with generated answers: a worked case reads both "
                         f"(evaluate it with generate=True)")
    adapter = load_adapter(run.result["adapter_dir"], d_llm=llm.hidden_size).eval()
    interp = Interpreter(llm, adapter, max_target_tokens=None)  # puts the adapter on the LLM's device
    (ex,) = make_examples(cases, [i], titles, llm, adapter.cfg.n_tokens, phase="eval", with_targets=False,
                          layout=adapter.cfg.layout)
    feats = cases.features[i:i + 1].to(llm.device)
    soft = interp.soft_tokens(feats)[0]  # (S * k, d_llm)
    picks = None
    if adapter.cfg.kind == "structured":  # what the readout decodes at each position, before the aligner
        s = adapter.layers
        real = cases.features[i, 0].abs().sum(-1) > 0  # (P,)
        top = s.item_probs(cases.features[i].to(llm.device)).argmax(-1)[0]  # (P,)
        picks = [titles[int(t)] if r else "·" for t, r in zip(top.tolist(), real.tolist())]
    truth = [titles[a] for a in cases.answers[i].tolist() if a >= 0]
    src = derangement(len(cases), seed)[i]  # the case whose states the shuffled control gave this one
    tx = {c: gen[c]["texts"][i] for c in ("model", "shuffled", "zero") if c in gen}
    metric = "found" if "found" in gen["model"] else "hit"
    P = int(cases.features.shape[2])
    fit = run.result.get("fit") or {}
    h = run.result.get("train") or {}
    made = (f"fitted in {fit['seconds_total']:.0f} s, no pass through the LLM" if fit else
            f"trained through the LLM for {h.get('steps', 0)} steps ({h.get('seconds_total', 0):.0f} s)")
    return RouteView(route=run.key[2], role=run.block["role"], kind=adapter.cfg.kind, n_params=_trainable(adapter),
                     n_soft=int(soft.shape[0]), per_position=max(int(soft.shape[0]) // (cases.features.shape[1] * P), 1),
                     prompt=marked_prompt(ex.prompt), nearest=nearest_tokens(llm, soft), readout_picks=picks,
                     answer=tx["model"], found=found_titles(tx["model"], truth), shuffled=tx.get("shuffled", ""),
                     shuffled_found=found_titles(tx.get("shuffled", ""), truth), shuffled_from=int(src), zero=tx.get("zero"),
                     zero_found=found_titles(tx["zero"], truth) if "zero" in tx else None,
                     mean_found=float(gen["model"][metric]["mean"]), train=made)


def worked_case(grid, runs: list, dataset: str | None = None, encoder: str | None = None, seed: int = 0,
                roles=("main", "contrast")) -> WorkedCase:
    """One evaluated test case of ``dataset`` / ``encoder`` (default: the grid's first of each) through every
    run of ``roles`` on it (a route each), drawn at random with ``seed``."""
    dataset = dataset or grid.names[0]
    encoder = encoder or grid.encoder_names[0]
    mine = [r for r in runs if r.key[:2] == (dataset, encoder) and r.block["role"] in roles
            and r.cases is not None and (r.eval or {}).get("generation")]
    if not mine:
        have = sorted({(r.key, r.block["role"]) for r in runs})
        raise ValueError(f"no evaluated run of {dataset}/{encoder} with roles {roles} and generated answers "
                         f"among {have}: run the grid first, or pick another dataset or encoder")
    mine.sort(key=lambda r: roles.index(r.block["role"]))
    first = mine[0].cases
    i = random.Random(seed).randrange(len(first))
    titles = grid.data[dataset].catalogue.norm_titles
    views = []
    for r in mine:
        j = i if r is mine[0] else _same_case(first, i, r.cases)
        if j is not None:  # a route evaluated on other cases has no answer for this one: left out
            views.append(route_view(r, j, grid.llm, titles, seed=grid.seed))
    truth = [titles[a] for a in first.answers[i].tolist() if a >= 0]
    window = [titles[a] for a in first.context[i].tolist() if a >= 0]
    if first.task == "residual":
        window = window + truth
    return WorkedCase(first.task, dataset, encoder, i, len(first), seed, window, truth,
                      tuple(first.features.shape[1:]), views)


# -- task 3: one DreamRec ideal item ------------------------------------------------------------
@dataclass
class IdealItemCase:
    """One test history of notebook 05: DreamRec's ideal item, what lies near it, and what each route names."""

    dataset: str
    index: int
    n: int
    seed: int
    history: list[str]
    true_next: str
    x0_shape: tuple
    x0_norm: float
    nearest_items: list[tuple[str, float]]  # the catalogue items nearest x0 (inner product in the encoder's space)
    routes: dict  # route -> {"answer", "in_catalogue", "nearest_title", "score", "prompt", "nearest_tokens"}
    real: dict  # source -> {"title": the appended real item, route -> {"answer", "named"}}
    threshold: float

    def markdown(self) -> str:
        L = [f"### One history of {self.dataset} and the item DreamRec dreams up for it",
             f"History {self.index + 1} of the {self.n} (drawn at random with seed {self.seed}, not picked).", "",
             f"**The history** ({len(self.history)} items, oldest first): " + "; ".join(self.history),
             f"\n**The true next item** (not shown to DreamRec): {self.true_next}",
             f"\n**DreamRec's ideal item x0**: a vector of shape {self.x0_shape} (norm {self.x0_norm:.2f}) in the "
             "recommender's item space, not a catalogue row. The catalogue items nearest to it (inner product): "
             + "; ".join(f"{t} ({s:.2f})" for t, s in self.nearest_items), ""]
        for route, r in self.routes.items():
            novel = ("**not in the catalogue**" if not r["in_catalogue"] else "in the catalogue") if r["answer"] else "nothing named"
            L += [f"#### Route {route}",
                  f"- the LLM names: {inline(r['answer'] or '(empty)', 200)}: {novel} (nearest catalogue title "
                  f"{r['nearest_title']!r}, similarity {r['score']:.2f}; threshold {self.threshold})"]
            if r.get("prompt"):
                L += ["- the prompt it read (⟨i⟩: the soft tokens made from x0):", "", "```text", r["prompt"].strip(), "```",
                      "- nearest vocabulary token to each soft token: " + " ".join(f"`{t}`" for t in r["nearest_tokens"])]
        L += ["", "**The same routes on real items** (the true title is known, so the route can be checked):", ""]
        for src, v in self.real.items():
            named = "; ".join(f"`{route}` {'**names it**' if a['named'] else 'misses'} ({inline(a['answer'], 60)})"
                              for route, a in v.items() if route != "title")
            L.append(f"- {src}: {v['title']}: {named}")
        return "\n".join(L) + "\n"

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "case": self.index, "n": self.n, "seed": self.seed, "history": self.history,
                "true_next": self.true_next, "nearest_items": [t for t, _ in self.nearest_items],
                "routes": {k: {kk: vv for kk, vv in v.items() if kk not in ("prompt", "nearest_tokens")}
                           | {"prompt_slots": v.get("prompt", "").count("⟨")} for k, v in self.routes.items()},
                "real": self.real}

    def record(self, metrics: dict) -> dict:
        metrics["worked_case"] = self.to_dict()
        return metrics


@torch.no_grad()
def ideal_item_case(inst, threshold: float, seed: int = 0, k: int = 3) -> IdealItemCase:
    """One history of an :class:`recinterp.instantiation.Instantiation` whose candidates are named (``name_candidates``)."""
    if not inst.routes or not inst.items:
        raise ValueError(f"{inst.name}: name the candidates first (Instantiation.name_candidates), then draw the case")
    t, titles = inst.test, inst.titles
    i = random.Random(seed).randrange(len(t))
    x0 = inst.items["dreamrec"]["emb"][i].detach().float().cpu()  # (d,)
    table = inst.enc.item_embeddings.weight[: inst.enc.n_items].detach().float().cpu()
    top = (table @ x0).topk(k)
    matcher = CatalogueMatcher(titles)
    routes = {}
    for route, answers in inst.routes.items():
        a = answers["dreamrec"][i]
        (m,) = match_catalogue([a], matcher, threshold=threshold)
        r = {"answer": a, "in_catalogue": bool(m["in_catalogue"]), "nearest_title": m["nearest_title"] or "",
             "score": float(m["score"])}
        it = inst.interps[route]
        if route == "direct":  # the aligner reads x0 itself: show its prompt and soft tokens
            cases = Cases("item", "item", x0[None, None, None, :].contiguous(), torch.zeros(1, 1, dtype=torch.long),
                          torch.full((1, 1), -1), meta={"dataset": inst.name})
            (ex,) = make_examples(cases, [0], titles, it.llm, it.n_tokens, phase="eval", with_targets=False,
                                  layout=it.layout)
            r["prompt"] = marked_prompt(ex.prompt)
            r["nearest_tokens"] = nearest_tokens(it.llm, it.soft_tokens(cases.features.to(it.device))[0])
        routes[route] = r
    real = {}
    for src in inst.sources[1:]:
        title = titles[int(inst.items[src]["ids"][i])]
        real[src] = {"title": title, **{route: {"answer": ans[src][i], "named": bool(found_titles(ans[src][i], [title])[0])}
                                        for route, ans in inst.routes.items()}}
    hist = [titles[j] for j in t.seqs[i, : int(t.lens[i])].tolist()]
    return IdealItemCase(inst.name, i, len(t), seed, hist, titles[int(t.next[i])], tuple(x0.shape), float(x0.norm()),
                         [(titles[int(j)], float(s)) for s, j in zip(top.values, top.indices)], routes, real, threshold)
