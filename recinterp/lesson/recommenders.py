"""Notebook 02's generated prose: how to read each table and figure, and its Summary.

The functions take the blocks notebook 02 writes to metrics.json (``datasets``: {dataset:
{"n_items", "models": {model: entry}}}, ``Benchmark.metrics()`` gives the same while it runs), so
the prose the notebook shows and the Summary it records say the same thing, from this run's values.

The Summary is honest about what notebooks 03-05 build on: whether each encoder is clearly above
popularity (paired 95% interval of the HR@10 difference excludes 0) on every evaluation split,
how DreamRec compares with popularity, and which guidance weight w does best against the default.
"""
from __future__ import annotations

from recinterp.lesson import Summary, against, ci, excludes_zero, share
from recinterp.metrics import format_ci

BASELINE = "popularity"


def _label(mname: str) -> str:
    from recinterp.models import encoder_label

    if mname.startswith("dreamrec"):
        return "DreamRec" + (f" ({mname[len('dreamrec_'):]})" if mname != "dreamrec" else "")
    return encoder_label(mname)


def diff_ci(b: dict) -> dict:
    """A stored paired difference {diff, lo, hi, above} as the {mean, lo, hi} summary the CI phrases take."""
    if not isinstance(b, dict) or not {"diff", "lo", "hi"} <= set(b):
        raise ValueError(f"a paired difference needs 'diff', 'lo' and 'hi', got {b!r:.80}")
    return {"mean": b["diff"], "lo": b["lo"], "hi": b["hi"]}


def _datasets(datasets: dict, what: str) -> dict:
    if not isinstance(datasets, dict) or not datasets or \
            not all(isinstance(d, dict) and isinstance(d.get("models"), dict) for d in datasets.values()):
        raise ValueError(f"{what} needs notebook 02's per-dataset blocks ({{dataset: {{'models': {{...}}}}}}: "
                         "metrics['datasets'], or Benchmark.metrics() while the notebook runs)")
    return datasets


def _splits(entry: dict) -> list[str]:
    return [k for k in entry if isinstance(entry[k], dict) and "HR@10" in entry[k] and "n" in entry[k]]


def verdicts(datasets: dict, metric_key: str = "vs_popularity_HR@10") -> dict[tuple[str, str, str], bool | None]:
    """{(dataset, model, split): True (clearly above popularity), False (clearly below), None (not clear)}."""
    out = {}
    for dname, d in _datasets(datasets, "verdicts").items():
        for mname, e in d["models"].items():
            for split, b in (e.get(metric_key) or {}).items():
                out[(dname, mname, split)] = excludes_zero(diff_ci(b))
    return out


def read_data(rows: list[dict]) -> str:
    """After the data table (``BenchData.row()`` per dataset): how much each model learns from and stops on."""
    if not rows:
        raise ValueError("read_data needs one row per dataset (BenchData.row())")
    parts = [f"{r['dataset']} trains on {r['train rows']:,} rows and early-stops on {r['val (expanded)']:,} "
             f"validation targets (from {r['val rows']:,} validation rows)" for r in rows]
    return ("**How to read this.** " + "; ".join(parts) + ". The train rows bound how good an encoder can get; "
            "the expanded validation split is what picks the kept epoch, so a small one makes that choice noisy.")


def read_popularity(datasets: dict) -> str:
    """After the popularity baseline: its HR@10 on each split with its CI, beside chance (10 / items)."""
    parts = []
    for dname, d in _datasets(datasets, "read_popularity").items():
        pop = d["models"].get(BASELINE)
        if pop is None:
            continue
        chance = 10 / d["n_items"] if d.get("n_items") else None
        for split in _splits(pop):
            p = f"{dname} `{split}` (n = {pop[split]['n']:,}): HR@10 {ci(pop[f'{split}_ci']['HR@10'])}"
            if chance:
                p += f", {pop[split]['HR@10'] / chance:.1f} times chance ({chance:.4f})"
            parts.append(p)
    if not parts:
        raise ValueError("read_popularity: no popularity entry recorded yet")
    return ("**How to read this.** Popularity knows nothing about a user, yet " + "; ".join(parts) + ". This is "
            "the bar: an encoder whose states later notebooks read should beat it on the same rows, by a "
            "paired interval that excludes 0.")


def read_curves(datasets: dict) -> str:
    """After the learning curves: which kept epoch is the last one run (the budget may have cut it short),
    and, for the learned-table DreamRec, what its item norms say."""
    last, early, diag = [], [], []
    for dname, d in _datasets(datasets, "read_curves").items():
        for mname, e in d["models"].items():
            if "epochs" not in e:
                continue
            tag = f"{dname}/{mname} (best epoch {e['best_epoch']} of {e['epochs']})"
            (last if e["best_epoch"] == e["epochs"] else early).append(tag)
            if mname == "dreamrec_learned" and "diagnostics" in e:
                g = e["diagnostics"]
                diag.append(f"on {dname} its mean item norm is {g['item_norm_mean']:.2f} and the norm's correlation "
                            f"with log popularity {g['corr_norm_log_popularity']:+.2f}")
    text = ["**How to read this.** Each model keeps the weights of its best validation epoch. "
            + (f"Best at the last epoch run, so more epochs might still help: {', '.join(last)}. " if last else "")
            + (f"Best before the end, so the budget sufficed: {', '.join(early)}." if early else "")]
    if diag:
        text.append("A falling training loss with a falling validation NDCG@10 is the learned-table DreamRec's "
                    "collapse (targets shrink); " + "; ".join(diag) + ". A negative correlation means frequent "
                    "items shrank most, which pushes inner-product retrieval towards rare items.")
    return "\n\n".join(text)


def read_dreamrec(datasets: dict) -> str:
    """After DreamRec's training: which variant became the default (chosen on validation) and how each
    DreamRec compares with SASRec on the same rows."""
    text = []
    for dname, d in _datasets(datasets, "read_dreamrec").items():
        chosen = (d["models"].get("dreamrec") or {}).get("chosen")
        if chosen:
            cands = d["models"]["dreamrec"].get("chosen_from") or {}
            text.append(f"On {dname} the default DreamRec is `{chosen}`, the best validation NDCG@10 among the "
                        "frozen-table variants (" + ", ".join(f"`{m}` {v:.4f}" for m, v in cands.items()) + ").")
        for mname, e in d["models"].items():
            vs = e.get("vs_sasrec_HR@10") or {}
            split = "test_all" if "test_all" in vs else ("test" if "test" in vs else None)
            if mname.startswith("dreamrec_") and split:
                b = diff_ci(vs[split])
                text.append(f"{dname} `{split}`: {_label(mname)} minus SASRec, HR@10 {format_ci(b, 3, signed=True)}.")
    if not text:
        return "**How to read this.** No DreamRec was trained in this run."
    return ("**How to read this.** Every variant is early-stopped on validation at its own guidance weight; the "
            "test splits are read only here. " + " ".join(text))


def read_bridges(bridges: dict) -> str:
    """After the bridge table: how much of one item space a linear map reaches on held-out items."""
    if not bridges:
        return "**How to read this.** No pair of item tables was compared in this run."
    parts = [f"{k}: R² {b['r2_heldout']:.2f} on {b['n_heldout']:,} held-out items" for k, b in bridges.items()]
    return ("**How to read this.** Read the held-out R² (the in-sample one flatters a map with 64 × 64 "
            "parameters): " + "; ".join(parts) + ". Near 0 or below, no linear map carries one table into "
            "the other, which is why the default DreamRec reads SASRec's own table and needs no bridge.")


def _verdict_phrase(side) -> str:
    return {True: "clearly above", False: "clearly below", None: "not clearly above"}[side]


def read_results(datasets: dict) -> str:
    """After the results table: per dataset and split, which models are clearly above popularity (HR@10)."""
    parts = []
    groups: dict[tuple[str, str], dict] = {}
    for (dname, mname, split), side in verdicts(datasets).items():
        groups.setdefault((dname, split), {}).setdefault(side, []).append(mname)
    for (dname, split), by in groups.items():
        n = datasets[dname].get(f"n_{split}")
        bits = [f"{_verdict_phrase(side)}: {', '.join(by[side])}" for side in (True, None, False) if by.get(side)]
        parts.append(f"{dname} `{split}`{f' (n = {n:,})' if n else ''}: " + "; ".join(bits))
    if not parts:
        raise ValueError("read_results: no model was compared with popularity")
    return ("**How to read this.** Read the last column first: HR@10 minus popularity's on the same rows, with "
            "its paired 95% interval. A model is clearly above popularity only when that interval excludes 0. "
            + ". ".join(parts) + ". A difference whose interval covers 0 is not a ranking of the two models, "
            "however the means compare; `test` has few rows, `test_all` many rows of the same users.")


def read_quality_bar(quality_bar: dict) -> str:
    """After the quality bar: each encoder's HR@10 and NDCG@10 differences with popularity on MovieLens."""
    if not quality_bar:
        return "**How to read this.** MovieLens is not among this run's datasets: no quality bar to read."
    lines, cleared = [], 0
    for key, q in quality_bar.items():
        hr, nd = diff_ci(q["HR@10_diff"]), diff_ci(q["NDCG@10_diff"])
        ok = excludes_zero(hr) is True and excludes_zero(nd) is True
        cleared += ok
        lines.append(f"- `{key}`: HR@10 {against(hr, 'popularity')}; NDCG@10 {against(nd, 'popularity')}")
    return (f"**How to read this.** {share(cleared, len(quality_bar))} encoder/split pairs clear the bar on both "
            "measures:\n\n" + "\n".join(lines) + "\n\nAn encoder that does not clear it still has states to "
            "read, but then what an LLM recovers from them may owe as much to popularity as to the user.")


def read_w_grid(datasets: dict) -> str:
    """After the guidance-weight plot and table: the best w on each split beside the default, paired."""
    parts = []
    for dname, d in _datasets(datasets, "read_w_grid").items():
        for mname, e in d["models"].items():
            for split, b in (e.get("w_best") or {}).items():
                parts.append(_w_phrase(dname, mname, split, b))
    if not parts:
        return "**How to read this.** No guidance grid was run."
    return ("**How to read this.** Each line is one DreamRec under guidance weights w, same noise for every w; "
            "w = 0 uses the conditional denoiser alone, a larger w extrapolates further from the unconditional "
            "one (x0 = (1 + w) f(x_t, c) − w f(x_t, ∅)). " + " ".join(parts) + " Only a paired interval that excludes 0 makes a weight better.")


def _w_phrase(dname: str, mname: str, split: str, b: dict) -> str:
    if b["best"] == b["default"]:
        return (f"{dname}/{mname} on `{split}`: the default w = {b['default']:g} is best "
                f"({b['metric']} {b['default_mean']:.4f}).")
    side = excludes_zero(b["diff"])
    verdict = {True: "better than the default", None: "not clearly better than the default",
               False: "worse than the default"}[side]
    return (f"{dname}/{mname} on `{split}`: w = {b['best']:g} gives {b['metric']} {b['best_mean']:.4f} against "
            f"{b['default_mean']:.4f} at the default w = {b['default']:g}, a paired difference of "
            f"{format_ci(b['diff'], 4, signed=True)} ({verdict}).")


def read_reload(reload_ok: dict) -> str:
    """After the reload check."""
    bad = [k for k, v in reload_ok.items() if not v]
    return (f"**How to read this.** {share(len(reload_ok) - len(bad), len(reload_ok))} checkpoints reload bit for "
            "bit: notebooks 03-05 read exactly the models measured here."
            + (f" Not these: {', '.join(bad)}." if bad else ""))


def summary(metrics: dict) -> Summary:
    """Notebook 02's Summary from its metrics.json: each encoder and DreamRec against popularity on every split,
    the best guidance weight against the default, and the reload check."""
    if not isinstance(metrics, dict) or "datasets" not in metrics:
        raise ValueError("lesson.recommenders.summary needs notebook 02's metrics ({'datasets': ..., ...}), "
                         f"got {sorted(metrics) if isinstance(metrics, dict) else type(metrics).__name__}")
    datasets = _datasets(metrics["datasets"], "lesson.recommenders.summary")
    s = Summary("recommenders")
    for dname, d in datasets.items():
        for split in _splits(d["models"].get(BASELINE, {})) or ["test"]:
            n = d.get(f"n_{split}")
            where = f"{dname} `{split}`{f' ({n:,} rows)' if n else ''}"
            enc = [(m, e) for m, e in d["models"].items() if m != BASELINE and not m.startswith("dreamrec")]
            dr = [(m, e) for m, e in d["models"].items() if m.startswith("dreamrec")]
            for group, what in ((enc, "encoders"), (dr, "DreamRec")):
                bits = [f"{_label(m)} {_clause(e, split)}" for m, e in group if split in e.get("vs_popularity_HR@10", {})]
                if bits:
                    s.add(f"On {where}, HR@10 minus popularity's, {what}: " + "; ".join(bits) + ".")
        dflt = d["models"].get("dreamrec") or {}
        for split, b in (dflt.get("vs_sasrec_HR@10") or {}).items():
            if split == ("test_all" if "test_all" in dflt["vs_sasrec_HR@10"] else "test"):
                s.add(f"On {dname} `{split}` the default DreamRec ({dflt.get('chosen', 'as trained')}, chosen on "
                      f"validation) minus SASRec, HR@10: {format_ci(diff_ci(b), 3, signed=True)}.")
        for mname, e in d["models"].items():
            for split, b in (e.get("w_best") or {}).items():
                if split == ("test_all" if "test_all" in e["w_best"] else "test"):
                    s.add("Guidance weight: " + _w_phrase(dname, mname, split, b))
    reload_ok = metrics.get("reload_bitwise") or {}
    if reload_ok:
        s.add(f"{share(sum(map(bool, reload_ok.values())), len(reload_ok))} checkpoints reload bit for bit "
              "for notebooks 03-05.")
    return s


def _clause(e: dict, split: str) -> str:
    b = diff_ci(e["vs_popularity_HR@10"][split])
    return f"{_verdict_phrase(excludes_zero(b))} ({format_ci(b, 3, signed=True)})"
