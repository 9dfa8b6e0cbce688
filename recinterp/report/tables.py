"""The runs of a task's metrics.json as the long pandas tables the notebooks and figures show.

    long = probe_rows(load_runs("results/cpu"))                  # one row per run x sampler x condition x measure
    ci_table(long, ["dataset", "encoder", "route", "sampler"])     # "mean [lo, hi]" per measure, model - this

Every value comes with its n and 95% CI (``recinterp.metrics.format_ci`` writes it).
"""
from __future__ import annotations

import numpy as np

from recinterp.metrics import format_ci
from recinterp.report import PROBE_METRICS, RunBlock, headline

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


def before_after_table(change: dict):
    """``report.before_after`` per dataset -> one row per dataset and reading: n, before, after, after − before [CI]."""
    import pandas as pd

    return pd.DataFrame([{"reading": f"{d}: {reading}", "n": v["n"], "aligned": v["before"], "trained on": v["after"],
                          "after − before [95% CI]": format_ci(v["after_minus_before"])}
                         for d, readings in change.items() for reading, v in readings.items()]).set_index("reading") \
        if change else pd.DataFrame()
