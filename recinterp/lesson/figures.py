"""Notebook 06's generated prose: how to read each of the paper's figures, and its Summary.

The readings take what notebook 06 already holds: notebook 02's metrics (the recommender figure),
the task runs of notebooks 03-04 (``report.load_runs``), the tables of notebook 05's figure; the
Summary takes 06's own metrics.json, where the notebook records the headline readings it drew
(``headline``: ``report.headline`` + ``report.instantiation_headline``) and the recommenders'
verdicts against popularity (``recommenders_vs_popularity``, from ``recommender_verdicts``).
"""
from __future__ import annotations

from recinterp import report
from recinterp.lesson import Summary, against, ci, excludes_zero, share
from recinterp.lesson.recommenders import verdicts
from recinterp.metrics import format_ci
from recinterp.models import encoder_label

TASK_NAMES = {"recovery": "Task 1 (sequence recovery)", "residual": "Task 2 (sequence residual)",
              "instantiation": "Task 3 (ideal-item instantiation)"}
SOFT_CONTROLS = ("shuffled", "zero")


def recommender_verdicts(m02: dict) -> dict:
    """Notebook 02's encoders and DreamRec against popularity (HR@10, paired 95% interval): how many readings
    (dataset x model x split) are clearly above, and which."""
    if not isinstance(m02, dict) or "datasets" not in m02:
        raise ValueError("recommender_verdicts needs notebook 02's metrics.json ({'datasets': ...})")
    v = verdicts(m02["datasets"])
    return {"readings": len(v), "clearly_above": sorted("/".join(k) for k, side in v.items() if side is True),
            "clearly_below": sorted("/".join(k) for k, side in v.items() if side is False)}


def read_recommenders(m02: dict) -> str:
    """After the recommender figure and table."""
    v = recommender_verdicts(m02)
    above = ", ".join(v["clearly_above"]) or "none"
    return ("**How to read this.** Each bar is a model's HR@10 on one split with its 95% bootstrap whisker; "
            "popularity is the bar to beat. Overlapping whiskers do not decide: two models scored on the same "
            "rows are compared by the paired interval of their difference (notebook 02's last column). By that "
            f"test, {share(len(v['clearly_above']), v['readings'])} model/split readings are clearly above "
            f"popularity ({above}).")


def _task_lines(readings: list[dict]) -> list[str]:
    lines = []
    for h in readings:
        vs = "; ".join(against(h["vs"].get(c), c) for c in h.get("must_clear", SOFT_CONTROLS))
        lines.append(f"- {h['dataset']}, {encoder_label(h['encoder'])}, `{h['route']}` route, {h['reading']} "
                     f"(n = {h['n']}): {ci(h['model'])}; {vs}.")
    return lines


def read_task(runs: list, task: str) -> str:
    """After a task's figures and table: each headline reading against its soft-token controls, and chance."""
    readings = report.headline(report.select(runs, task=task))
    if not readings:
        return f"**How to read this.** No headline run of {TASK_NAMES.get(task, task)} in these results."
    clears = sum(h["clears"] for h in readings)
    chance = sorted({r["probe"][r["samplers"][0]]["n_candidates"] for r in report.select(runs, task=task, role="main")
                     if r.get("samplers")})
    chance_txt = (" A probe ranks the true answer among " + " or ".join(map(str, chance)) + " candidates, so chance "
                  "Hit@1 is one over that number." if chance else "")
    return (f"**How to read this.** Compare each model bar with its shuffled and zero bars: the shuffled control "
            "gives the LLM soft tokens from another user (does the answer depend on *this* user?), the zero "
            "control gives it none (does the prompt alone produce it?). A reading is signal only when the paired "
            f"interval of its difference with both lies above 0.{chance_txt} {share(clears, len(readings))} "
            "headline readings clear both here:\n\n" + "\n".join(_task_lines(readings)))


def read_residual_encoders(table) -> str:
    """After the residual figure: the model's hit rate per encoder, in this run's order (the paper's order is
    GRU4Rec < Caser < SASRec); ``table``: ``figures.residual_generation_table``."""
    if not len(table):
        return "**How to read this.** No residual run in these results."
    parts = []
    for ds, sub in table[table.condition == "model"].groupby("dataset", sort=False):
        order = sub.sort_values("mean")
        parts.append(f"{ds}: " + " ≤ ".join(f"{encoder_label(r.encoder)} {ci(dict(mean=r.mean, lo=r.lo, hi=r.hi))}"
                                             for r in order.itertuples()))
    return ("**How to read this.** The paper finds GRU4Rec < Caser < SASRec. Here, ordered by the model's mean: "
            + "; ".join(parts) + ". These intervals are not paired across encoders (each encoder has its own "
            "cases' answers), so an order whose intervals overlap is not established.")


def read_instantiation(nov, judged) -> str:
    """After the instantiation figure: the not-in-catalogue share per source, route fidelity, which judges could judge."""
    if not len(nov):
        return "**How to read this.** No instantiation run in these results."
    parts = []
    for r in nov[nov.measure == "not in catalogue"].itertuples():
        if r.n:
            parts.append(f"{r.dataset} {r.source} {ci(dict(mean=r.mean, lo=r.lo, hi=r.hi))} (n = {int(r.n)})")
    fid = [f"{r.dataset} {r.source} {ci(dict(mean=r.mean, lo=r.lo, hi=r.hi))}"
           for r in nov[nov.measure == "true title named"].itertuples()]
    text = ("**How to read this.** The top panels give the share of instantiated titles that are not in the "
            "catalogue (the paper: more than 20% for DreamRec): " + "; ".join(parts) + ". A high share means new "
            "titles only if the route is faithful: for real items, how often their true title is named ("
            + ("; ".join(fid) or "not measured") + ") tells whether the route reads an item at all.")
    if len(judged):
        failed = sorted(set(judged.judge[~judged.valid]))
        passed = sorted(set(judged.judge[judged.valid]))
        text += (" The bottom panels show the judged comparisons of the judges that passed their validity row "
                 "(the true next item picked over a random one, 95% CI above 0.5): "
                 + (", ".join(passed) or "none") + "; cannot judge (not drawn): " + (", ".join(failed) or "none") + ".")
    return text


def _vs_compact(diff, control: str) -> str:
    """'vs shuffled +0.150 [+0.100, +0.200], above 0': one paired difference, short enough for a Summary."""
    if not format_ci(diff):
        return f"vs {control}: not measured"
    side = {True: "above 0", False: "below 0", None: "covers 0"}[excludes_zero(diff)]
    return f"vs {control} {format_ci(diff, signed=True)}, {side}"


def summary(metrics: dict) -> Summary:
    """Notebook 06's Summary from its metrics.json: the figures drawn, the recommenders against popularity, and
    every headline reading of tasks 1-3 against its controls (``metrics['headline']``)."""
    if not isinstance(metrics, dict) or "figures" not in metrics:
        raise ValueError("lesson.figures.summary needs notebook 06's metrics ({'figures': ..., 'headline': [...]}), "
                         f"got {sorted(metrics) if isinstance(metrics, dict) else type(metrics).__name__}")
    s = Summary("figures")
    s.add(f"{len(metrics['figures'])} figures drawn from the metrics of {', '.join(metrics.get('inputs', [])) or 'no notebook'}.")
    rec = metrics.get("recommenders_vs_popularity")
    if rec:
        s.add(f"Recommenders: {share(len(rec['clearly_above']), rec['readings'])} model/split readings clearly above "
              f"popularity on HR@10 (paired 95% interval): {', '.join(rec['clearly_above']) or 'none'}.")
    groups: dict[tuple[str, str], list[dict]] = {}
    for h in metrics.get("headline", []):
        groups.setdefault((h["task"], h["dataset"]), []).append(h)
    for (task, ds), hs in groups.items():
        bits = []
        for h in hs:
            vs = " and ".join(_vs_compact(h["vs"].get(c), c) for c in h.get("must_clear", SOFT_CONTROLS))
            bits.append(f"{h['reading']} {ci(h['model'])} (n = {h['n']}; {vs})")
        s.add(f"{TASK_NAMES.get(task, task)}, {ds}: {share(sum(h['clears'] for h in hs), len(hs))} headline readings "
              "clear their controls. " + "; ".join(bits) + ".")
    return s
