"""Notebook 01's generated prose: how to read its tables and figures, and its Summary.

Every function takes the values the notebook already holds (``load_stats`` dicts, the lengths
table, the sorted popularity counts, its metrics.json) and returns Markdown; a number in a
sentence comes from those values, never from the notebook's text.

    display(Markdown(lesson.data.read_splits(stats)))   # after the rows-per-split table
    s = lesson.data.summary(metrics)                     # at the end: Summary("data")
"""
from __future__ import annotations

import math

from recinterp.lesson import Summary, share

EVAL_SPLITS = ("test", "test_all")  # the splits every later notebook reports on


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _stats_of(stats: dict, what: str) -> dict:
    if not isinstance(stats, dict) or not stats:
        raise ValueError(f"{what} needs {{dataset name: load_stats(...) dict}}, got {type(stats).__name__} "
                         f"{stats!r:.60}: run section 1 of notebook 01 first")
    for name, st in stats.items():
        if not isinstance(st, dict) or "rows" not in st:
            raise ValueError(f"{what}: the stats of {name!r} have no 'rows' (rows per split); pass the dict "
                             f"that recinterp.data.load_stats returns")
    return stats


def _items(st: dict) -> int:
    if "items" not in st and "n_items" not in st:
        raise ValueError(f"dataset statistics without 'items' or 'n_items': {sorted(st)}")
    return int(st.get("items_in_catalogue", st.get("items", st.get("n_items"))))


def ci_half_width_bound(n: int) -> float:
    """The widest a 95% interval of a hit rate measured on ``n`` independent rows gets (rate 0.5): 1.96·√(0.25/n)."""
    if n < 1:
        raise ValueError(f"a rate needs at least one row, got n={n}")
    return 1.96 * math.sqrt(0.25 / n)


def read_splits(stats: dict) -> str:
    """After the rows-per-split table: how many rows each evaluation split has, and what that does to a CI."""
    parts = []
    for name, st in _stats_of(stats, "read_splits").items():
        for split in EVAL_SPLITS:
            n = st["rows"].get(split)
            if n:
                parts.append(f"{name} `{split}` has {n:,} rows, so a hit rate measured on it carries a 95% "
                             f"interval as wide as ±{ci_half_width_bound(n):.3f}")
    lines = ["**How to read this.** Look at the evaluation rows first: they set how small a difference any "
             "later notebook can tell from noise. " + ("; ".join(parts) + "." if parts else "")]
    if any("test_all" in st["rows"] for st in stats.values()):
        lines.append("`test_all` holds every next-item position of the same held-out users: more rows and a "
                     "narrower interval, but rows of one user are not independent, so it is steadier, not "
                     "n times more informative.")
    lines.append("The train rows are what the recommenders of notebook 02 learn from: a dataset with few "
                 "of them gives weak encoders, whatever the LLM does later.")
    return "\n\n".join(lines)


def read_stats(stats: dict) -> str:
    """After the per-dataset statistics: users, items, and rows dropped for an empty history."""
    parts = []
    for name, st in _stats_of(stats, "read_stats").items():
        who = f"{st['users']:,} users and " if "users" in st else ""
        line = f"{name}: {who}{_items(st):,} items"
        dropped = {k: v for k, v in (st.get("dropped_empty_history") or {}).items() if v}
        if dropped:
            line += " (rows dropped for an empty history: " + ", ".join(f"{k} {v:,}" for k, v in dropped.items()) + ")"
        parts.append(line)
    return ("**How to read this.** " + "; ".join(parts) + ". The number of items is the size of the ranking "
            "every recommender is scored on (full ranking, no sampled negatives), so chance HR@10 is 10 over "
            "that number. A row dropped for an empty history had no item to condition on: nothing can be "
            "recommended from it.")


def full_window_shares(lengths, max_len: int | dict = 10) -> dict[tuple[str, str], float]:
    """{(dataset, split): share of rows whose history fills the window} from a (dataset, split, length) table.

    ``max_len``: the window length, one for all datasets or {dataset: its window}."""
    need = {"dataset", "split", "length"}
    if not need <= set(getattr(lengths, "columns", ())):
        raise ValueError(f"full_window_shares needs a table with columns {sorted(need)} (notebook 01's `lengths`), "
                         f"got {list(getattr(lengths, 'columns', []))}")
    if len(lengths) == 0:
        raise ValueError("full_window_shares got an empty lengths table")
    window = lengths["dataset"].map(max_len) if isinstance(max_len, dict) else max_len
    if isinstance(max_len, dict) and window.isna().any():
        raise ValueError(f"full_window_shares: no window length for {sorted(set(lengths['dataset']) - set(max_len))}")
    full = lengths.assign(full=lengths["length"] >= window)
    return {k: float(v) for k, v in full.groupby(["dataset", "split"], sort=False)["full"].mean().items()}


def read_lengths(lengths, max_len: int | dict = 10) -> str:
    """After the histogram of history lengths: the share of full windows per dataset and split."""
    shares = full_window_shares(lengths, max_len)
    parts = [f"{d} {s} {_pct(v)}" for (d, s), v in shares.items()]
    return ("**How to read this.** The rightmost bar of each panel is the share of rows whose history fills "
            f"the window ({', '.join(parts)}). The bars to its left are users seen near their first "
            "interactions: the encoder reads fewer items there, and a task that asks for every title of a "
            "history has fewer to find.")


def top_share(counts, frac: float = 0.1) -> float:
    """Share of all interactions that the most frequent ``frac`` of items take (``counts`` sorted, descending)."""
    counts = [float(c) for c in counts]
    if not counts or sum(counts) <= 0:
        raise ValueError("top_share needs a non-empty list of interaction counts with a positive total")
    if not 0 < frac <= 1:
        raise ValueError(f"frac must be in (0, 1], got {frac}")
    if any(a < b for a, b in zip(counts, counts[1:])):
        raise ValueError("top_share needs counts sorted from the most to the least frequent item")
    k = max(1, int(len(counts) * frac))
    return sum(counts[:k]) / sum(counts)


def read_long_tail(popularity: dict) -> str:
    """After the long-tail plot: how much of the interactions the head takes, and how many items training never shows."""
    if not isinstance(popularity, dict) or not popularity:
        raise ValueError("read_long_tail needs {dataset name: sorted interaction counts} (notebook 01's `popularity`)")
    parts = []
    for name, counts in popularity.items():
        counts = [float(c) for c in counts]
        unseen = sum(1 for c in counts if c == 0)
        parts.append(f"on {name} the top 10% of items take {_pct(top_share(counts))} of the training interactions "
                     f"and {share(unseen, len(counts))} items never occur in training")
    return ("**How to read this.** On log-log axes a straight, steep line is a long tail: " + "; ".join(parts) +
            ". The steeper the head, the more a popularity ranker gets right for free, so every encoder "
            "and every LLM reading is judged against it. Items that training never shows keep their "
            "initial embeddings: no recommender can rank them well, and no interpreter can name them from "
            "a state.")


def read_rebuild(stats: dict) -> str:
    """After the comparison of MovieLens' rebuilt train split with the official rows known."""
    if "movielens" not in stats:
        return "**How to read this.** MovieLens is not among this run's datasets: there is no rebuild to check."
    cmp = stats["movielens"].get("train_rebuild_vs_official")
    if not cmp:
        return ("**How to read this.** The official extract was not at hand, so the rebuild could not be "
                "checked here; every later number on MovieLens still uses the official Val and Test splits.")
    for k in ("official_rows", "exact", "tie_reordered", "different"):
        if k not in cmp:
            raise ValueError(f"read_rebuild: the comparison has no {k!r}; pass notebook 01's `stats` "
                             "(stats['movielens']['train_rebuild_vs_official'] as load_stats wrote it)")
    verdict = ("every known row is reproduced, up to the order of ratings with equal timestamps"
               if cmp["different"] == 0 else
               f"{share(cmp['different'], cmp['official_rows'])} rows differ in more than the order of ties: "
               "the rebuild is not the official train split, and notebook 02's MovieLens numbers are on a "
               "different training set")
    return (f"**How to read this.** Of the {cmp['official_rows']} official rows known, {cmp['exact']} are "
            f"reproduced exactly and {cmp['tie_reordered']} up to ties; {verdict}.")


def summary(metrics: dict) -> Summary:
    """Notebook 01's Summary from its metrics.json: each dataset's size, evaluation rows, long tail, rebuild check."""
    if not isinstance(metrics, dict) or not isinstance(metrics.get("datasets"), dict) or not metrics["datasets"]:
        raise ValueError("lesson.data.summary needs notebook 01's metrics ({'datasets': {name: stats}}), "
                         f"got keys {sorted(metrics) if isinstance(metrics, dict) else type(metrics).__name__}")
    s = Summary("data")
    for name, st in metrics["datasets"].items():
        rows = st.get("rows", {})
        who = f"{st['users']:,} users, " if "users" in st else ""
        split_rows = ", ".join(f"{k} {v:,}" for k, v in rows.items())
        s.add(f"{name}: {who}{_items(st):,} items; rows per split: {split_rows}.")
        if "top10pct_item_share" in st:
            s.add(f"{name}: the top 10% of items take {_pct(st['top10pct_item_share'])} of the training "
                  "interactions, the head that the popularity baseline ranks first.")
        if "test" in rows and rows["test"]:
            s.add(f"{name}: a hit rate on its {rows['test']:,} test rows has a 95% interval as wide as "
                  f"±{ci_half_width_bound(rows['test']):.3f} wide.")
        cmp = st.get("train_rebuild_vs_official")
        if cmp:
            s.add(f"{name}: the rebuilt train split reproduces {share(cmp['official_rows'] - cmp['different'], cmp['official_rows'])} "
                  f"known official rows ({cmp['exact']} exactly, {cmp['tie_reordered']} up to timestamp ties).")
    return s
