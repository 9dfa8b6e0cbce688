"""The layout of a task's metrics.json, written by notebooks 03 and 04 and read by everything else.

A task notebook trains adapters with ``recinterp.tasks.run_task`` and writes one
:class:`TaskMetrics`: a flat list of :class:`RunBlock`, one per (task, dataset, encoder,
route, role, split).  ``route`` names the adapter (``linear10``, ``pair_item``, ``aligned``,
...), ``role`` says what the run is for: ``main`` (a headline reading), ``contrast`` (the other
route, shown beside the headline one: on a CPU the paper's end-to-end adapter, on a GPU the
token-space one), ``comparison`` (the headline route on the other encoders: the encoder
comparison, reported with its controls but not part of the headline check), ``variant`` (another adapter, compared with the main one), ``ablation`` (a
choice among inputs), ``item`` (the item-alignment stage).  Every reading carries its conditions: the model, its
controls (shuffled, zero soft tokens; popularity) and, for the probe, the encoder-space
references (encoder, readout), each a ``{mean, lo, hi, n}`` summary, and the paired
difference of the model against each of them on the same cases (``diff_vs``).  A result
may carry more conditions or runs than these: readers iterate over what is there.

    block = run_block(run_task(...), route="linear10", role="main")      # write
    write_json_atomic(out / "metrics.json", task_metrics("recovery", [block, ...], preset=...))
    probe_rows(load_runs(results_dir))                                   # read: long tables
    python -m recinterp.report results/cpu                               # the headline check

The headline check (``main``): for every main run, the generation metric (titles found
per window for recovery, the true title named for residual / item) and the probe's Hit@1
(first sampler), each against every control with n and the paired 95% CI; it exits 0 only
if every headline reading clears both soft-token controls (shuffled and zero): the CI of
the difference lies above 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np

from recinterp.config import NOTEBOOKS, write_text_atomic
from recinterp.metrics import format_ci, paired_bootstrap_diff
from recinterp.models import encoder_label
from recinterp.tasks import get_task

ROLES = ("main", "contrast", "comparison", "variant", "ablation", "item")
CONTROLS = ("shuffled", "zero", "popularity")  # what a reading is compared with
MUST_CLEAR = ("shuffled", "zero")  # a headline reading is signal only above both
PROBE_METRICS = ("Hit@1", "Hit@5", "MRR")
TASK_NOTEBOOKS = ("recovery", "residual")  # the sections whose metrics.json has this layout


# -- the layout ------------------------------------------------------------------------
class Summary(TypedDict):
    mean: float
    lo: float
    hi: float
    n: int


class Diff(TypedDict):
    mean: float
    lo: float
    hi: float


class TrainBlock(TypedDict):
    steps: int
    seconds: float
    loss_first: float | None
    loss_last: float | None  # mean of the last 10 steps
    curve: list[list[float]]  # [[step, loss], ...]
    n_train_cases: int
    config: dict  # the TrainConfig used


class GenCondition(TypedDict, total=False):
    mean: Summary  # of the task's generation_metric per case
    exact: Summary  # one title: the answer is the title
    hist: list[float]  # several titles: share of cases with k = 0.. titles found


class GenBlock(TypedDict):
    n: int
    metric: str  # "found" | "hit"
    conditions: dict[str, GenCondition]  # "model", "shuffled", "zero", "popularity", ...
    diff_vs: dict[str, Diff]  # model - condition, on the metric
    decoding: dict


class ProbeBlock(TypedDict):
    n: int
    n_candidates: int
    candidates: dict  # sampler info
    conditions: dict[str, dict[str, Summary]]  # condition -> metric -> summary
    diff_vs: dict[str, dict[str, Diff]]  # condition -> metric -> model - condition


class RunBlock(TypedDict):
    task: str
    dataset: str
    encoder: str
    route: str
    role: Literal["main", "contrast", "comparison", "variant", "ablation", "item"]
    input: str
    split: str
    n_eval: int
    adapter: dict
    saved_to: str | None
    train: TrainBlock | None  # None: an adapter not trained by train_adapter (e.g. fitted in closed form)
    generation: GenBlock | None
    samplers: list[str]  # the probe's samplers in evaluation order; the first is the headline one
    probe: dict[str, ProbeBlock]  # sampler -> block (a JSON object: its key order is not kept)
    signal: dict[str, bool]  # comparison -> does the model clear it
    extra: dict  # what a notebook adds (ablation: chosen, init, steps_at_eval)


class TaskMetrics(TypedDict, total=False):
    task: str
    preset: str
    llm: dict
    llm_name: str
    seed: int
    encoders: list[str]
    datasets: dict[str, dict]  # per-dataset notes of the notebook (truncation, saved adapters)
    runs: list[RunBlock]
    seconds: float


# -- writing -------------------------------------------------------------------------------
def train_block(history: dict) -> TrainBlock:
    """From ``train_adapter``'s history."""
    curve = [[x["step"], x["loss"]] for x in history["history"]]
    return {"steps": history["steps"], "seconds": history["seconds_total"],
            "loss_first": curve[0][1] if curve else None,
            "loss_last": float(np.mean([c[1] for c in curve[-10:]])) if curve else None, "curve": curve,
            "n_train_cases": history["n_cases"], "config": history["config"]}


def generation_block(g: dict | None, task: str) -> GenBlock | None:
    """From ``tasks.evaluate.generation_eval``'s result."""
    if g is None:
        return None
    metric = get_task(task).generation_metric
    conds = {}
    for c, r in g.items():  # the model, its controls, and any further condition a caller added
        if isinstance(r, dict) and ("found" in r or "hit" in r):
            conds[c] = {"mean": r["found"], "hist": r["distribution"]} if "found" in r else \
                {"mean": r["hit"], "exact": r["exact"]}
    return {"n": g["n"], "metric": metric, "conditions": conds,
            "diff_vs": {c: g[f"model_vs_{c}"] for c in conds if f"model_vs_{c}" in g}, "decoding": g["decoding"]}


def probe_block(rk: dict) -> ProbeBlock:
    """From ``tasks.evaluate.ranking_eval``'s result (one sampler)."""
    conds = {c: v["summary"] for c, v in rk.items() if isinstance(v, dict) and "summary" in v}  # model, controls,
    # references, and any further condition a caller added
    return {"n": rk["n"], "n_candidates": rk["n_candidates"], "candidates": rk["candidates"], "conditions": conds,
            "diff_vs": {c: rk[f"model_vs_{c}"] for c in conds if f"model_vs_{c}" in rk}}


def signals(block: RunBlock) -> dict[str, bool]:
    """Every comparison of a run with a control -> does the paired CI of model - control lie above 0?"""
    s = {}
    g = block.get("generation")
    if g:
        for c in CONTROLS:
            if c in g["diff_vs"]:
                s[f"generation_{g['metric']}_vs_{c}"] = bool(g["diff_vs"][c]["lo"] > 0)
    for sampler, p in block["probe"].items():
        for c in CONTROLS:
            for m in PROBE_METRICS:
                if m in p["diff_vs"].get(c, {}):
                    s[f"probe_{sampler}_{m}_vs_{c}"] = bool(p["diff_vs"][c][m]["lo"] > 0)
    return s


def run_block(result: dict, *, route: str, role: str, split: str | None = None, saved_to: str | None = None,
              extra: dict | None = None) -> RunBlock:
    """One run of ``run_task`` (trained and evaluated) as a block of the layout.

    ``split``: which of its evaluations (item alignment has two: train and held-out items);
    default: the only one.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {ROLES}")
    evals = result.get("eval") or {}
    if split is None:
        if len(evals) > 1:
            raise ValueError(f"the run was evaluated on {sorted(evals)}: say which split")
        split = next(iter(evals), "")
    ev = evals.get(split, {})
    block: RunBlock = {
        "task": result["task"], "dataset": result["dataset"], "encoder": result["encoder"], "route": route,
        "role": role, "input": result["input"], "split": ev.get("meta", {}).get("split", split),
        "n_eval": ev.get("n", 0), "adapter": ev.get("adapter", {}), "saved_to": saved_to,
        "train": train_block(result["train"]) if result.get("train") else None, "generation": generation_block(ev.get("generation"), result["task"]),
        "samplers": list(ev.get("ranking", {})),
        "probe": {s: probe_block(rk) for s, rk in ev.get("ranking", {}).items()}, "signal": {},
        "extra": dict(extra or {})}
    block["signal"] = signals(block)
    return block


def task_metrics(task: str, runs: list[RunBlock], **info) -> TaskMetrics:
    """The whole metrics.json of a task notebook (``info``: preset, llm, seed, datasets, seconds, ...)."""
    bad = [r for r in runs if r["task"] not in (task, "item")]
    if bad:
        raise ValueError(f"runs of task {bad[0]['task']!r} in the metrics of {task!r}")
    return {"task": task, **info, "runs": list(runs)}


def before_after(before: dict, after: dict, seed: int = 0) -> dict:
    """Two evaluations of the same cases (the aligned adapter, then the same adapter trained on through
    the LLM): per reading (generation; probe Hit@1 of each sampler both have), both means and the
    paired 95% CI of after − before, from the evaluations' per-case values."""
    splits = [e.get("meta", {}).get("split") for e in (before, after)]
    if before["n"] != after["n"] or splits[0] != splits[1]:
        raise ValueError(f"before/after need the same cases: n {before['n']} vs {after['n']}, split "
                         f"{splits[0]!r} vs {splits[1]!r}")
    pairs = {}
    if before.get("generation") and after.get("generation"):
        pairs[f"generation {get_task(before['task']).generation_metric}"] = (before["generation"]["model"]["per_case"], after["generation"]["model"]["per_case"])
    for s in [s for s in before["ranking"] if s in after["ranking"]]:
        pairs[f"probe Hit@1 ({s})"] = (before["ranking"][s]["model"]["per_case"]["Hit@1"],
                                       after["ranking"][s]["model"]["per_case"]["Hit@1"])
    out = {}
    for name, (b, a) in pairs.items():
        mean, lo, hi = paired_bootstrap_diff(a, b, seed=seed)
        out[name] = {"n": int(len(b)), "before": float(np.mean(b)), "after": float(np.mean(a)),
                     "after_minus_before": {"mean": mean, "lo": lo, "hi": hi}}
    return out


# -- reading -------------------------------------------------------------------------------
def load_runs(results_dir: str | os.PathLike) -> list[RunBlock]:
    """Every run of every task notebook's metrics.json under ``results_dir`` (missing ones are left out)."""
    out = []
    for section in TASK_NOTEBOOKS:
        p = Path(results_dir) / NOTEBOOKS[section] / "metrics.json"
        if p.exists():
            out += json.loads(p.read_text()).get("runs", [])
    return out


def select(runs: list[RunBlock], **where) -> list[RunBlock]:
    """The runs whose fields equal ``where`` (e.g. role="main", dataset="steam")."""
    return [r for r in runs if all(r.get(k) == v for k, v in where.items())]


_KEY = ("task", "dataset", "encoder", "route", "role", "split")


def _diff_cols(d: dict | None) -> dict:
    d = d or {}
    return {"diff": d.get("mean", np.nan), "diff_lo": d.get("lo", np.nan), "diff_hi": d.get("hi", np.nan)}


def generation_rows(runs: list[RunBlock]):
    """Long table: one row per run x condition x measure (the metric, and "exact" where there is one)."""
    import pandas as pd

    rows = []
    for r in runs:
        g = r.get("generation")
        if not g:
            continue
        for cond, v in g["conditions"].items():
            key = {k: r[k] for k in _KEY}
            rows.append({**key, "condition": cond, "measure": g["metric"], **v["mean"],
                         **_diff_cols(g["diff_vs"].get(cond))})
            if "exact" in v:
                rows.append({**key, "condition": cond, "measure": "exact", **v["exact"], **_diff_cols(None)})
    return pd.DataFrame(rows)


def histogram_rows(runs: list[RunBlock]):
    """Long table of the recovered-titles distribution: run x condition x k -> share."""
    import pandas as pd

    rows = []
    for r in runs:
        for cond, v in ((r.get("generation") or {}).get("conditions") or {}).items():
            rows += [{**{k: r[k] for k in _KEY}, "condition": cond, "k": k, "share": s}
                     for k, s in enumerate(v.get("hist", []))]
    return pd.DataFrame(rows)


def probe_rows(runs: list[RunBlock], metrics=PROBE_METRICS):
    """Long table: one row per run x sampler x condition x metric, with model - condition."""
    import pandas as pd

    rows = []
    for r in runs:
        for sampler, p in r["probe"].items():
            for cond, ms in p["conditions"].items():
                for m in metrics:
                    if m in ms:
                        rows.append({**{k: r[k] for k in _KEY}, "sampler": sampler, "condition": cond, "measure": m,
                                     **ms[m], "candidates": p["n_candidates"],
                                     **_diff_cols(p["diff_vs"].get(cond, {}).get(m))})
    return pd.DataFrame(rows)


def curve_rows(runs: list[RunBlock], window: int = 10):
    """Long table of training curves: run x step -> loss and its ``window``-step running mean."""
    import pandas as pd

    key = [k for k in _KEY if k != "split"]  # one training, however many splits it was evaluated on
    seen, rows = set(), []
    for r in runs:
        if r["train"] and (ident := tuple(r[k] for k in key)) not in seen:
            seen.add(ident)
            rows += [{**{k: r[k] for k in key}, "step": s, "loss": loss} for s, loss in r["train"]["curve"]]
    df = pd.DataFrame(rows)
    if len(df):
        df["smoothed"] = df.groupby(key)["loss"].transform(lambda s: s.rolling(window, min_periods=1).mean())
    return df


def ci_table(long, index: list[str], digits: int = 3):
    """A long table (``*_rows``) as the notebooks show it: "mean [lo, hi]" per measure, model - this."""
    import pandas as pd

    if not len(long):
        return pd.DataFrame()
    df = long.assign(value=[format_ci({"mean": a, "lo": b, "hi": c}, digits) for a, b, c in zip(long["mean"], long.lo, long.hi)],
                     diff_ci=[format_ci({"mean": a, "lo": b, "hi": c}, digits)
                              for a, b, c in zip(long["diff"], long.diff_lo, long.diff_hi)])
    keys = [*index, "condition"]
    wide = df.pivot_table(index=keys, columns="measure", values="value", aggfunc="first", sort=False)
    diffs = df[df.diff_ci != ""].pivot_table(index=keys, columns="measure", values="diff_ci", aggfunc="first", sort=False)
    diffs.columns = [f"model − this ({m})" for m in diffs.columns]
    n = df.groupby(keys, sort=False)["n"].first()
    return pd.concat([n, wide, diffs], axis=1).fillna("")


def signal_lines(runs: list[RunBlock]) -> str:
    """Markdown: per run, which comparisons it clears."""
    lines = []
    for r in runs:
        cleared = [k for k, ok in r["signal"].items() if ok]
        lines.append(f"- **{r['dataset']}/{r['encoder']}/{r['route']}** ({r['role']}): clears {len(cleared)} of "
                     f"{len(r['signal'])} comparisons"
                     + (f" ({', '.join(cleared)})" if cleared else " — nothing is distinguishable from its controls"))
    return "\n".join(lines)


def pick_best(runs: list[RunBlock]) -> tuple[str | None, str]:
    """The route with the best model Hit@1 (ties: MRR) on its first sampler, and a note when that
    choice does not clear its shuffled control (a pick among noise)."""
    def first(r):
        return r["probe"][r["samplers"][0]]

    def score(r):
        m = first(r)["conditions"]["model"]
        return m["Hit@1"]["mean"], m["MRR"]["mean"]

    scored = [r for r in runs if r["probe"]]
    if not scored:
        return None, ""
    best = max(scored, key=score)  # the first of equals wins, in the order the runs were made
    vs = first(best)["diff_vs"].get("shuffled", {}).get("Hit@1")
    note = "" if vs is None or vs["lo"] > 0 else (
        f"{best['route']} does not clear its shuffled control (Hit@1 difference {vs['mean']:+.3f} "
        f"[{vs['lo']:+.3f}, {vs['hi']:+.3f}]): at this budget the choice is noise.")
    return best["route"], note


# -- what the notebooks show beside the tables --------------------------------------------
def adapter_side_rows(runs: list[RunBlock]):
    """The token-space route's own accuracy beside the LLM's: per aligned run, what the adapter alone
    gets right (the aligner's nearest title, the readout's top-1 among all items) and the LLM's
    headline readings on the same cases.  An LLM reading far below the adapter's says the LLM
    drops what it was handed; near it, the LLM reads what the adapter decoded."""
    import pandas as pd

    rows = []
    for r in runs:
        side = r["extra"].get("adapter_side")
        if not side:
            continue
        row = {k: r[k] for k in ("task", "dataset", "encoder", "route", "role", "split")}
        row.update({k: v for k, v in side.items()})
        g = r.get("generation")
        if g:
            row[f"LLM generation {g['metric']}"] = g["conditions"]["model"]["mean"]["mean"]
        if r["probe"]:
            row["LLM probe Hit@1"] = r["probe"][r["samplers"][0]]["conditions"]["model"]["Hit@1"]["mean"]
        rows.append(row)
    return pd.DataFrame(rows)


def truncation_report(tokenizer, split, titles: list[str], max_tokens: int, n: int = 500, seed: int = 0) -> dict:
    """How much of a recovery target (titles joined by "; ", + EOS) the first ``max_tokens`` tokens hold,
    over a seeded sample of ``n`` training windows."""
    import torch

    from recinterp.prompts import TITLE_SEP

    g = torch.Generator().manual_seed(seed)
    n_titles, n_tokens, inside = [], [], []
    for i in torch.randperm(len(split), generator=g)[:n].tolist():
        ts = [titles[j] for j in split.seqs[i, : int(split.lens[i])].tolist()]
        ends = [len(tokenizer(TITLE_SEP.join(ts[: k + 1]), add_special_tokens=False)["input_ids"]) for k in range(len(ts))]
        n_titles.append(len(ts))
        n_tokens.append(ends[-1] + 1)  # + EOS
        inside.append(sum(e <= max_tokens for e in ends))
    return {"max_target_tokens": max_tokens, "n_windows": len(n_titles), "mean_target_tokens": float(np.mean(n_tokens)),
            "mean_titles": float(np.mean(n_titles)), "mean_titles_supervised": float(np.mean(inside)),
            "share_titles_supervised": float(np.sum(inside) / np.sum(n_titles))}


def found_by_position(texts: list[str], answers, titles: list[str]) -> list[dict]:
    """Per case and position p (1 = oldest) of its true titles: is that title found in the text?"""
    from recinterp.textmatch import found_titles

    rows = []
    for text, row in zip(texts, answers.tolist()):
        truth = [titles[j] for j in row if j >= 0]
        rows += [{"position": p + 1, "found": float(hit)} for p, hit in enumerate(found_titles(text, truth))]
    return rows


def examples_markdown(heading: str, generation: dict, answers, titles: list[str], n_show: int,
                      context=None) -> str:
    """The best-answered cases first: the true titles (found ones in bold), the answer, the shuffled
    control's answer, and (residual) the history before."""
    from recinterp.textmatch import found_titles

    lines = [f"### {heading}"]
    for i in np.argsort(-np.asarray(generation["model"]["per_case"]), kind="stable")[:n_show]:
        truth = [titles[j] for j in answers[i].tolist() if j >= 0]
        text = generation["model"]["texts"][i]
        hits = found_titles(text, truth)
        if context is not None:
            lines.append(f"- before: {'; '.join(titles[j] for j in context[i].tolist() if j >= 0)[:300]}")
        lines += [f"- truth ({sum(hits)}/{len(truth)} found): " + "; ".join(f"**{t}**" if h else t for t, h in zip(truth, hits)),
                  f"  - answer: `{text[:400]}`"]
        if "shuffled" in generation:
            lines.append(f"  - shuffled control: `{generation['shuffled']['texts'][i][:200]}`")
    return "\n".join(lines)


# -- the headline check (python -m recinterp.report RESULTS_DIR) ----------------------------
def _side(r: RunBlock) -> str:
    side = (r.get("extra") or {}).get("adapter_side") or {}
    return "; ".join(f"{k} {v:.3f}" for k, v in side.items() if k.endswith("top1") and v == v)


def headline(runs: list[RunBlock], roles=("main",)) -> list[dict]:
    """Per run of ``roles`` and reading (generation; probe Hit@1 of the first sampler): the model,
    every control with the paired CI of the difference, and whether it clears shuffled and zero."""
    out = []
    for r in [r for r in runs if r["role"] in roles]:
        readings = []
        g = r.get("generation")
        if g:
            readings.append((f"generation {g['metric']}", g["n"], {c: v["mean"] for c, v in g["conditions"].items()},
                             g["diff_vs"]))
        if r["probe"]:
            sampler = r["samplers"][0]
            p = r["probe"][sampler]
            readings.append((f"probe Hit@1 ({sampler})", p["n"],
                             {c: v["Hit@1"] for c, v in p["conditions"].items() if "Hit@1" in v},
                             {c: v["Hit@1"] for c, v in p["diff_vs"].items() if "Hit@1" in v}))
        for name, n, conds, diffs in readings:
            vs = {c: {**diffs[c], "value": conds.get(c, {}).get("mean"),
                      "excludes_0": bool(diffs[c]["lo"] > 0 or diffs[c]["hi"] < 0), "above_0": bool(diffs[c]["lo"] > 0)}
                  for c in diffs if c in CONTROLS}
            out.append({**{k: r[k] for k in ("task", "dataset", "encoder", "route", "role")}, "reading": name, "n": n,
                        "model": conds["model"], "vs": vs, "must_clear": list(MUST_CLEAR), "adapter_side": _side(r),
                        "clears": all(c in vs and vs[c]["above_0"] for c in MUST_CLEAR)})
    return out


def instantiation_headline(results_dir: str | os.PathLike) -> list[dict]:
    """Task 3 (notebook 05's metrics.json): per dataset, the route fidelity of its headline route (the true
    title of a real appended item named) against the shuffled control (another history's item), and the
    not-in-catalogue share of each source on that route.  Fidelity has one control, so it must clear it."""
    p = Path(results_dir) / NOTEBOOKS["instantiation"] / "metrics.json"
    if not p.exists():
        return []
    m = json.loads(p.read_text())
    out = []
    for d, blk in m.get("datasets", {}).items():
        route = blk.get("headline_route") or next(iter(blk.get("routes", {})), None)
        srcs = blk.get("routes", {}).get(route, {}).get("sources", {}) if route else {}
        novelty = {s: v["novelty"] for s, v in srcs.items() if v.get("novelty")}
        enc = m.get("encoder", "")  # the real-item source is the encoder's own top-1 (instantiation.sources)
        for s, label in ((enc, f"{encoder_label(enc)}'s top-1"), ("random", "a random item")):
            f = (srcs.get(s) or {}).get("fidelity")
            if not f:
                continue
            diff = f["diff"]
            vs = {"shuffled": {**diff, "value": f["shuffled"]["mean"], "excludes_0": bool(diff["lo"] > 0 or diff["hi"] < 0),
                               "above_0": bool(diff["lo"] > 0)}}
            out.append({"task": "instantiation", "dataset": d, "encoder": m.get("encoder", ""), "route": route,
                        "role": "main", "reading": f"route fidelity ({label})", "n": f["hit"]["n"], "model": f["hit"],
                        "vs": vs, "must_clear": ["shuffled"], "adapter_side": "", "clears": vs["shuffled"]["above_0"],
                        "novelty": novelty})
    return out


def headline_table(runs: list[RunBlock], roles=("main",)):
    """The paper's table: one row per run of ``roles`` and reading, the model and every control with the CI
    of the difference, and whether it clears shuffled and zero."""
    import pandas as pd

    rows = []
    for h in headline(runs, roles):
        row = {k: h[k] for k in ("task", "dataset", "encoder", "route", "role", "reading", "n")}
        row["model"] = format_ci(h["model"])
        for c, v in h["vs"].items():
            row[f"{c}"] = "" if v["value"] is None else f"{v['value']:.3f}"
            row[f"model − {c}"] = format_ci(v)
        row["clears shuffled and zero"] = h["clears"]
        rows.append(row)
    return pd.DataFrame(rows)


def format_headline(rows: list[dict]) -> str:
    lines = []
    for h in rows:
        lines.append(f"{h['task']} / {h['dataset']} / {h['encoder']} / {h['route']}: {h['reading']} = "
                     f"{format_ci(h['model'])} (n={h['n']})  -> {'CLEARS' if h['clears'] else 'does NOT clear'} "
                     f"{' and '.join(h.get('must_clear', MUST_CLEAR))}")
        for c, v in h["vs"].items():
            lines.append(f"    vs {c:10s} {v['value'] if v['value'] is not None else float('nan'):.3f}   "
                         f"model - {c}: {format_ci(v, signed=True)}  "
                         f"{('CI above 0' if v['above_0'] else 'CI below 0') if v['excludes_0'] else 'CI includes 0'}")
    return "\n".join(lines)


def _cell(v: dict | None) -> str:
    if not v:
        return ""
    val = "" if v.get("value") is None else f"{v['value']:.3f} "
    return f"{val}({format_ci(v, signed=True)})"


def markdown_headline(rows: list[dict]) -> str:
    """The readings as a Markdown table: each control's value with the paired CI of model − control,
    the adapter's own accuracy (aligned route), and whether the reading clears its controls."""
    head = ("| task | dataset | encoder | route | role | reading | n | model [95% CI] | shuffled (model − it) | "
            "zeroed (model − it) | popularity (model − it) | adapter alone | clears |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for h in rows:
        clears = ("yes" if h["clears"] else "**no**") + f" ({' + '.join(h['must_clear'])})"
        lines.append("| " + " | ".join([h["task"], h["dataset"], h["encoder"], str(h["route"]), h["role"], h["reading"],
                                        str(h["n"]), format_ci(h["model"]), _cell(h["vs"].get("shuffled")),
                                        _cell(h["vs"].get("zero")), _cell(h["vs"].get("popularity")),
                                        h.get("adapter_side", ""), clears]) + " |")
    novelty = {(h["dataset"], h["route"]): h["novelty"] for h in rows if h.get("novelty")}  # one per dataset and route
    for (d, route), n in novelty.items():
        lines.append(f"\nTask 3, {d}, {route} route, share of named items not in the catalogue: "
                     + "; ".join(f"{s} {format_ci(v)} (n={v['n']})" for s, v in n.items()) + ".")
    return "\n".join(lines)


BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"


def write_readme_block(readme: str | os.PathLike, text: str) -> None:
    """Replace what lies between the README's report markers with ``text`` (atomically)."""
    path = Path(readme)
    doc = path.read_text()
    if doc.count(BEGIN) != 1 or doc.count(END) != 1 or doc.index(BEGIN) > doc.index(END):
        raise ValueError(f"{path} needs exactly one {BEGIN} ... {END} block")
    pre, rest = doc.split(BEGIN)
    post = rest.split(END)[1]
    write_text_atomic(path, f"{pre}{BEGIN}\n{text}\n{END}{post}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recinterp.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results_dir", help="a results folder (results/<preset>) holding notebooks 03-05's metrics.json")
    ap.add_argument("--json", action="store_true", help="print the readings as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the readings (headline, contrast route, encoder "
                                                            "comparison) as a Markdown table")
    ap.add_argument("--readme", metavar="PATH", help="write that table between the report markers of PATH "
                                                     f"({BEGIN} ... {END})")
    a = ap.parse_args(argv)
    readings = (headline(load_runs(a.results_dir), roles=("main", "contrast", "comparison"))
                + instantiation_headline(a.results_dir))
    rows = [h for h in readings if h["role"] == "main"]  # the headline: what the exit status checks
    if not rows:
        print(f"no headline reading in {a.results_dir} (run notebooks 03-05 first)", file=sys.stderr)
        return 2
    if a.markdown or a.readme:
        table = markdown_headline(readings)
        if a.readme:
            write_readme_block(a.readme, f"Generated by `python -m recinterp.report {a.results_dir} --readme {a.readme}`"
                                         f" from the metrics.json files of notebooks 03-05.\n\n{table}")
        else:
            print(table)
    else:
        print(json.dumps(rows, indent=1) if a.json else format_headline(rows))
    ok = all(h["clears"] for h in rows)
    print(f"\n{sum(h['clears'] for h in rows)} of {len(rows)} headline readings clear their controls "
          f"({' and '.join(MUST_CLEAR)}; task 3's fidelity: shuffled).", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
