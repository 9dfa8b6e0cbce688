"""The layout of a task's metrics.json, written by notebooks 03 and 04 and read by everything else.

Three jobs, three files: this one is the typed layout (writing a run's block, reading the
runs back, the headline readings); ``report.tables`` turns runs into the pandas tables the
notebooks and figures show; ``report.cli`` is the command line and the docs/measurements.md writer.

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
    tables.probe_rows(load_runs(results_dir))                            # read: long tables (report.tables)
    python -m recinterp.report results/cpu                               # the headline check (report.cli)

The headline check (``main``): for every main run, the generation metric (titles found
per window for recovery, the true title named for residual / item) and the probe's Hit@1
(first sampler), each against every control with n and the paired 95% CI; it exits 0 only
if every headline reading clears both soft-token controls (shuffled and zero): the CI of
the difference lies above 0.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np

from recinterp.config import NOTEBOOKS, read_json, rerun_fix
from recinterp.labels import encoder_label
from recinterp.metrics import paired_bootstrap_diff

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
    from recinterp.tasks import get_task  # writing runs beside the tasks; reading needs no torch

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
    from recinterp.tasks import get_task  # writing runs beside the tasks; reading needs no torch

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
            out += read_json(p, rerun_fix(p)).get("runs", [])
    return out


def select(runs: list[RunBlock], **where) -> list[RunBlock]:
    """The runs whose fields equal ``where`` (e.g. role="main", dataset="steam")."""
    return [r for r in runs if all(r.get(k) == v for k, v in where.items())]


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


# -- the headline readings (python -m recinterp.report RESULTS_DIR prints them) ---------------
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
    m = read_json(p, rerun_fix(p))
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


PAIR_LABELS = {"dreamrec": "DreamRec", "random": "random"}


def comparison_headline(results_dir: str | os.PathLike) -> list[dict]:
    """Task 3's judged comparison (notebook 05's metrics.json, ``recinterp.comparison``): per dataset, judge and
    pair (DreamRec − SASRec, DreamRec − random, SASRec − random), the mean preference with its paired 95% CI
    and n, as a reading of role ``comparison`` (reported, not part of the exit status).  ``valid`` is the
    judge's validity row (true next item picked over a random one, CI above 0.5); a row of a judge that
    failed it reads "cannot judge" and is not a result."""
    p = Path(results_dir) / NOTEBOOKS["instantiation"] / "metrics.json"
    if not p.exists():
        return []
    m = read_json(p, rerun_fix(p))
    enc = m.get("encoder", "")
    label = {**PAIR_LABELS, enc: encoder_label(enc)}
    out = []
    for d, blk in m.get("datasets", {}).items():
        for judge, c in (blk.get("comparisons") or {}).items():
            v = c["validity"]
            order = [f"{a}_vs_{b}" for a, b in (("dreamrec", enc), ("dreamrec", "random"), (enc, "random"))]
            for pair, r in sorted(c["rows"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 3):
                diff = r["diff"]
                out.append({"task": "instantiation", "dataset": d, "encoder": enc, "route": blk.get("headline_route"),
                            "role": "comparison", "judge": judge,
                            "reading": f"{label.get(r['a'], r['a'])} − {label.get(r['b'], r['b'])} ({judge})",
                            "n": diff["n"], "model": diff, "valid": bool(c["valid"]), "validity": v["picks_true"],
                            "vs": {}, "must_clear": [], "adapter_side": "",
                            "excludes_0": bool(diff["n"] and (diff["lo"] > 0 or diff["hi"] < 0)),
                            "clears": bool(c["valid"] and diff["n"] and diff["lo"] > 0)})
    return out
