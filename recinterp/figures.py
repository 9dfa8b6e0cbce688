"""Helpers for notebook 06: read every notebook's metrics.json, save figures with stable names.

Tasks 1 and 2 are read through ``recinterp.report`` (the one layout of their metrics.json);
the tables here only pick what a figure shows.

A figure drawn from a smoke run is stamped as such, so it can never pass for a result.
"""
from __future__ import annotations

import os
from pathlib import Path

from recinterp import report
from recinterp.report import tables
from recinterp.config import NOTEBOOKS, read_json, rerun_fix
from recinterp.metrics import ci_values



def load_all_metrics(results_dir: str | os.PathLike) -> dict[str, dict]:
    """{"data": {...}, "recommenders": {...}, ...}: every metrics.json found (missing ones are left out)."""
    out = {}
    for key, folder in NOTEBOOKS.items():
        if key == "figures":  # notebook 06 itself
            continue
        p = Path(results_dir) / folder / "metrics.json"
        if p.exists():
            out[key] = read_json(p, rerun_fix(p))
    return out


def stamp(fig, preset: str) -> None:
    """Mark figures that do not come from a real run."""
    if preset == "smoke":
        fig.text(0.5, 0.5, "SMOKE RUN — not a result", ha="center", va="center", fontsize=22, color="red",
                 alpha=0.25, rotation=20, transform=fig.transFigure)
    fig.text(0.99, 0.005, f"preset: {preset}", ha="right", va="bottom", fontsize=7, color="gray")


def save_figure(fig, name: str, figures_dir: str | os.PathLike, preset: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` (through temporary files) and return their paths."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    stamp(fig, preset)
    paths = []
    for ext in ("png", "pdf"):
        final = figures_dir / f"{name}.{ext}"
        tmp = figures_dir / f".{name}.tmp.{ext}"
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, final)
        paths.append(final)
    return paths


class FigureSet:
    """The figures a notebook saves: each written as ``name.png`` + ``name.pdf`` under ``figures_dir``
    (stamped when the preset is ``smoke``) and shown inline; ``saved`` maps each name to its files."""

    def __init__(self, figures_dir: str | os.PathLike, preset: str):
        self.figures_dir, self.preset, self.saved = Path(figures_dir), preset, {}

    def save(self, fig, name: str, alt: str = "") -> list[str]:
        """Write ``name.png`` + ``name.pdf`` and show the PNG inline with alt text (``alt``, else the figure's
        suptitle, else its name) and a printed "Figure: ..." line."""
        import matplotlib.pyplot as plt

        if name in self.saved:
            raise ValueError(f"a figure named {name!r} was saved already: give each figure its own name")
        self.saved[name] = [str(p) for p in save_figure(fig, name, self.figures_dir, self.preset)]
        sup = getattr(fig, "_suptitle", None)
        alt = alt or (sup.get_text() if sup is not None and sup.get_text() else name.replace("_", " "))
        plt.close(fig)
        try:
            from IPython.display import Image, display
        except ImportError:  # outside IPython: the files are written, nothing to show
            return self.saved[name]
        display(Image(filename=self.saved[name][0], alt=alt))
        print(f"Figure: {alt} (file {name}.png).")
        return self.saved[name]


# ---------------------------------------------------------------------------------------
# Tables (long DataFrames) from each notebook's metrics, then one plot function per figure
# ---------------------------------------------------------------------------------------
def recommender_table(m02: dict):
    import pandas as pd

    rows = []
    for ds, d in m02["datasets"].items():
        for model, e in d["models"].items():
            for split in ("test", "test_all"):
                if split not in e:
                    continue
                ci = e.get(f"{split}_ci", {}).get("HR@10", {})
                rows.append({"dataset": ds, "split": split, "model": model, "n": e[split].get("n"),
                             "HR@10": e[split]["HR@10"], "HR@20": e[split].get("HR@20"),
                             "NDCG@10": e[split]["NDCG@10"], "NDCG@20": e[split].get("NDCG@20"),
                             "lo": ci.get("lo", float("nan")), "hi": ci.get("hi", float("nan"))})
    return pd.DataFrame(rows)


def _bars_with_ci(ax, df, x, hue, y="mean", lo="lo", hi="hi", order=None, hue_order=None):
    """Grouped bars with 95% CI whiskers (seaborn's own errorbars would re-bootstrap)."""
    import numpy as np

    order = order or list(dict.fromkeys(df[x]))
    hue_order = hue_order or list(dict.fromkeys(df[hue]))
    width = 0.8 / max(1, len(hue_order))
    for j, h in enumerate(hue_order):
        sub = df[df[hue] == h].set_index(x).reindex(order)
        pos = np.arange(len(order)) + (j - (len(hue_order) - 1) / 2) * width
        ax.bar(pos, sub[y], width, label=str(h))
        err = np.vstack([(sub[y] - sub[lo]).clip(lower=0), (sub[hi] - sub[y]).clip(lower=0)])
        ax.errorbar(pos, sub[y], yerr=err, fmt="none", ecolor="black", capsize=2, lw=0.8)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=20, ha="right")
    if (df[y].dropna() >= 0).all():  # shares and rates: keep the axis at 0 even when every bar is 0
        ax.set_ylim(bottom=0)


def plot_recommenders(table):
    import matplotlib.pyplot as plt

    panels = table[["dataset", "split"]].drop_duplicates().values.tolist()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (ds, split) in zip(axes[0], panels):
        sub = table[(table.dataset == ds) & (table.split == split)].assign(metric="HR@10", mean=lambda t: t["HR@10"])
        _bars_with_ci(ax, sub, "model", "metric")
        n = int(sub["n"].iloc[0]) if len(sub) and sub["n"].iloc[0] == sub["n"].iloc[0] else "?"
        ax.set(title=f"{ds} / {split} (n={n})", ylabel="HR@10 (95% CI)")
        ax.get_legend() and ax.get_legend().remove()
    fig.suptitle("Next-item recommendation, full ranking", y=1.02)
    fig.tight_layout()
    return fig


def recovery_hist_table(runs: list):
    """Long table of the recovery distribution (dataset, condition, k, share): the main adapter on
    the first encoder of each dataset (the paper's figure)."""
    main = report.select(runs, task="recovery", role="main")
    return tables.histogram_rows([r for r in main if r["encoder"] == main[0]["encoder"]] if main else [])


def plot_recovery_hist(table):
    import matplotlib.pyplot as plt
    import seaborn as sns

    dss = list(dict.fromkeys(table.dataset))
    fig, axes = plt.subplots(1, len(dss), figsize=(5.5 * len(dss), 3.4), squeeze=False)
    for ax, ds in zip(axes[0], dss):
        sns.barplot(data=table[table.dataset == ds], x="k", y="share", hue="condition", ax=ax)
        ax.set(title=ds, xlabel="titles recovered per test sequence (k)", ylabel="share of test sequences")
    fig.suptitle("Task 1, sequence recovery: distribution of recovered titles", y=1.02)
    fig.tight_layout()
    return fig


def headline_runs(runs: list, task: str) -> list:
    """The headline route's runs of ``task``: the headline encoder (role ``main``) and the encoder comparison."""
    return [r for r in report.select(runs, task=task) if r["role"] in ("main", "comparison")]


def probe_table(runs: list, task: str):
    """Long table of the headline route's likelihood probes (every encoder) against their soft-token controls:
    dataset, encoder, sampler, condition, measure, mean, lo, hi, n."""
    t = tables.probe_rows(headline_runs(runs, task))
    return t[t.condition.isin(["model", "shuffled", "zero"])].reset_index(drop=True) if len(t) else t


def plot_probe(table, metric: str = "Hit@1", by: str = "encoder", title: str = ""):
    import matplotlib.pyplot as plt

    sub = table[table.measure == metric]
    panels = sub[["dataset", "sampler"]].drop_duplicates().values.tolist()
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.8 * max(1, len(panels)), 3.4), squeeze=False)
    for ax, (ds, sampler) in zip(axes[0], panels):
        p = sub[(sub.dataset == ds) & (sub.sampler == sampler)]
        _bars_with_ci(ax, p, by, "condition", hue_order=[c for c in ("model", "shuffled", "zero") if c in set(p.condition)])
        n = p["n"].dropna()
        ax.set(title=f"{ds}, {sampler} distractors (n={int(n.iloc[0]) if len(n) else '?'})", ylabel=f"{metric} (95% CI)")
        ax.legend(fontsize=7)
    fig.suptitle(title or f"Likelihood-ranking probe: {metric} vs its controls", y=1.02)
    fig.tight_layout()
    return fig


def residual_generation_table(runs: list):
    """Long table of the headline route's residual hit rate per encoder (dataset, encoder, condition, mean, lo, hi, n)."""
    t = tables.generation_rows(headline_runs(runs, "residual"))
    return t[t.measure == "hit"].reset_index(drop=True) if len(t) else t


def plot_residual_generation(table):
    import matplotlib.pyplot as plt

    dss = list(dict.fromkeys(table.dataset))
    fig, axes = plt.subplots(1, len(dss), figsize=(4.8 * len(dss), 3.4), squeeze=False)
    order = list(dict.fromkeys(table.encoder))  # the preset's encoder order (the runs'), every encoder it ran
    for ax, ds in zip(axes[0], dss):
        p = table[table.dataset == ds]
        _bars_with_ci(ax, p, "encoder", "condition", order=order or None)
        n = p["n"].dropna()
        ax.set(title=f"{ds} (n={int(n.iloc[0]) if len(n) else '?'})", ylabel="residual item named (95% CI)")
        ax.legend(fontsize=7)
    fig.suptitle("Task 2, sequence residual: generated answer names the added item", y=1.02)
    fig.tight_layout()
    return fig


def instantiation_tables(m05: dict):
    """(novelty and fidelity per source, task 3's judged comparison per judge and pair) as long tables.

    The comparison table has every judge, with ``valid`` (its validity row) and the validity pick rate;
    ``plot_instantiation`` draws only the valid ones."""
    import pandas as pd

    nov, compared = [], []
    for ds, d in m05["datasets"].items():
        for src, s in d["sources"].items():
            mean, lo, hi = ci_values(s["novelty"])
            nov.append({"dataset": ds, "source": src, "measure": "not in catalogue", "mean": mean, "lo": lo, "hi": hi,
                        "n": s["novelty"].get("n")})
            if s.get("fidelity"):
                mean, lo, hi = ci_values(s["fidelity"]["hit"])
                nov.append({"dataset": ds, "source": src, "measure": "true title named", "mean": mean, "lo": lo,
                            "hi": hi, "n": s["fidelity"]["hit"].get("n")})
        for judge, c in (d.get("comparisons") or {}).items():
            for pair, r in c["rows"].items():
                mean, lo, hi = ci_values(r["diff"])
                compared.append({"dataset": ds, "judge": judge, "pair": f"{r['a']} − {r['b']}", "mean": mean, "lo": lo,
                                 "hi": hi, "n": r["diff"].get("n"), "valid": bool(c["valid"]),
                                 "validity": c["validity"]["picks_true"].get("mean"),
                                 "validity_lo": c["validity"]["picks_true"].get("lo")})
    return pd.DataFrame(nov), pd.DataFrame(compared)


def plot_instantiation(nov, compared):
    """Top: novelty and fidelity per source.  Bottom: the judged comparisons (mean preference, 95% CI) of
    the judges that passed their validity row only; the panel's title names those that failed ("cannot
    judge"), which are drawn as no result."""
    import matplotlib.pyplot as plt
    import numpy as np

    dss = list(dict.fromkeys(nov.dataset))
    fig, axes = plt.subplots(2, len(dss), figsize=(5 * len(dss), 6.6), squeeze=False)
    for j, ds in enumerate(dss):
        p = nov[nov.dataset == ds]
        _bars_with_ci(axes[0][j], p, "source", "measure")
        axes[0][j].set(title=f"{ds} (n={int(p['n'].dropna().iloc[0]) if len(p['n'].dropna()) else '?'})",
                       ylabel="share (95% CI)")
        axes[0][j].legend(fontsize=7)
        q = compared[compared.dataset == ds] if len(compared) else compared
        ax = axes[1][j]
        failed = sorted(set(q.judge[~q.valid])) if len(q) else []
        ok = q[q.valid] if len(q) else q
        if len(ok):
            pairs_ = list(dict.fromkeys(ok.pair))
            judges_ = list(dict.fromkeys(ok.judge))
            h = 0.8 / len(judges_)
            for k, jn in enumerate(judges_):
                r = ok[ok.judge == jn].set_index("pair").reindex(pairs_)
                y = np.arange(len(pairs_)) + (k - (len(judges_) - 1) / 2) * h
                ax.barh(y, r["mean"], height=h, label=jn,
                        xerr=[r["mean"] - r["lo"], r["hi"] - r["mean"]], capsize=2)
            ax.set_yticks(np.arange(len(pairs_)), pairs_)
            ax.invert_yaxis()  # the first comparison on top
            ax.axvline(0, color="black", lw=0.8)
            ax.set(xlabel="A − B: mean preference (95% CI)", xlim=(-1, 1))
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no judge passed its validity row:\nno comparison to show", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_xticks([]), ax.set_yticks([])
        ax.set_title("judged comparison" + (f" — cannot judge: {', '.join(failed)}" if failed else ""), fontsize=8)
    fig.suptitle("Task 3, ideal-item instantiation", y=1.01)
    fig.tight_layout()
    return fig


def plot_training_curves(curves, hue: str = "route", style: str = "encoder"):
    """Target-token loss per optimiser step (10-step running mean), one panel per dataset.

    With no run trained through the LLM (a token-space-only preset) there is nothing to draw: returns None
    (``lesson.card.show_figure`` then writes no file and says so in one line)."""
    import seaborn as sns

    if curves is None or not len(curves):
        return None
    g = sns.relplot(data=curves, x="step", y="smoothed", hue=hue, style=style, col="dataset", kind="line",
                    height=3.4, aspect=1.5, facet_kws={"sharey": False, "sharex": False})
    g.set_axis_labels("optimiser step", "target-token loss (10-step mean)")
    return g.figure


def plot_recommender_curves(hist):
    """Notebook 02's learning curves: train loss (cross-entropy for the encoders, MSE for DreamRec) and
    validation NDCG@10 per epoch; one column per dataset.  ``hist``: a (dataset, model, epoch, loss,
    val_NDCG@10) table, as ``Benchmark.histories``."""
    import numpy as np
    import pandas as pd
    import seaborn as sns

    hist = pd.DataFrame(hist)
    if not len(hist):
        raise ValueError("plot_recommender_curves got no epochs: train a model first (Benchmark.histories)")
    is_dr = hist["model"].str.startswith("dreamrec")
    ce, mse = "train loss (encoders, cross-entropy)", "train loss (DreamRec, its objective)"
    norm = "DreamRec: mean item-embedding norm"
    loss_rows = hist.assign(panel=np.where(is_dr, mse, ce), value=hist["loss"])
    val_rows = hist.assign(panel="validation NDCG@10", value=hist["val_NDCG@10"])
    parts, order = [loss_rows, val_rows], [ce, mse, "validation NDCG@10"]
    if "item_norm_mean" in hist and hist["item_norm_mean"].notna().any():  # the collapse of a learned table
        parts.append(hist[hist["item_norm_mean"].notna()].assign(panel=norm, value=lambda h: h["item_norm_mean"]))
        order.append(norm)
    long = pd.concat(parts)[["dataset", "model", "epoch", "panel", "value"]]
    g = sns.relplot(data=long, x="epoch", y="value", hue="model", col="dataset", row="panel", kind="line", marker="o",
                    row_order=[o for o in order if (long["panel"] == o).any()],
                    facet_kws={"sharey": False, "sharex": False}, height=2.8, aspect=1.5)
    g.set_titles("{row_name} | {col_name}")
    g.figure.suptitle("Learning curves (the kept weights are those of the best validation epoch)", y=1.02)
    return g.figure


def plot_guidance_grid(grid, popularity: dict):
    """DreamRec's NDCG@10 against the guidance weight w, one line per (model, split), one panel per dataset,
    with popularity on the same rows in grey.  ``grid``: a (dataset, model, w, split, NDCG@10) table;
    ``popularity``: {dataset: {split: popularity's NDCG@10}}."""
    import seaborn as sns

    g = sns.relplot(data=grid, x="w", y="NDCG@10", hue="model", style="split", col="dataset", kind="line",
                    marker="o", facet_kws={"sharey": False}, height=3.2, aspect=1.3)
    for dname, ax in g.axes_dict.items():  # popularity on the same rows, for scale
        lines = [ax.axhline(v, color="grey", ls=ls, lw=1, label=f"popularity ({s})")
                 for (s, v), ls in zip(popularity.get(dname, {}).items(), (":", "-.", "--"))]
        ax.legend(handles=lines, fontsize=7, loc="lower right")
    g.figure.suptitle("DreamRec: guidance weight w vs NDCG@10 (grey: popularity)", y=1.04)
    return g.figure


def markdown_table(df, floatfmt: str = ".3f") -> str:
    """A GitHub markdown table (pandas' to_markdown needs the extra package tabulate)."""
    def fmt(v):
        if isinstance(v, float):
            return "" if v != v else format(v, floatfmt)
        return str(v).replace("|", "\\|")

    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)
