"""How to read tasks 1 and 2's tables: paragraphs generated from the report blocks they show.

Each function takes the runs a table was made from (``report`` layout blocks, as in
metrics.json) and returns Markdown: one bullet per run with its reading, its controls and the
paired 95% CI of the difference, then a verdict.  The notebooks place them right after the
table they explain; notebook 06 and the book can call them on a saved metrics.json as well.

    display(Markdown(read.generation(runs)))     # after the generation table
    read.summary_recovery(metrics, case)         # the Summary of notebook 03 (a lesson.Summary)
"""
from __future__ import annotations

from recinterp import report as R
from recinterp.lesson import Summary, against, ci, excludes_zero
from recinterp.metrics import ci_values, format_ci
from recinterp.models import encoder_label

UNIT = {"found": "titles of the window named per window", "hit": "share of windows whose true title is named"}


def _made(r: dict) -> str:
    """How the run's adapter was made: '10 steps through the LLM, 95 s' / 'fitted in 4 s, no LLM pass'."""
    fit = (r.get("extra") or {}).get("fit")
    if fit:
        return f"fitted in {fit.get('seconds_total', 0):.0f} s with no pass through the LLM"
    t = r.get("train") or {}
    return f"trained through the LLM for {t.get('steps', 0)} steps ({t.get('seconds', 0):.0f} s)"


def _who(r: dict) -> str:
    return f"{r['dataset']}, {encoder_label(r['encoder'])}, `{r['route']}` ({r['role']})"


def generation(runs: list[dict]) -> str:
    """After the generation table: per run, the model's reading beside each control, and what clears."""
    rows = [r for r in runs if r.get("generation")]
    if not rows:
        return "_No run of this table generated answers._"
    lines = []
    for r in rows:
        g = r["generation"]
        c, d = g["conditions"], g["diff_vs"]
        ctl = "; ".join(f"{k} {ci(c[k]['mean'])}" for k in ("shuffled", "zero", "popularity") if k in c)
        lines.append(f"- **{_who(r)}**, {_made(r)}: {ci(c['model']['mean'])} {UNIT[g['metric']]} (n = {g['n']}); "
                     f"{ctl}. The model is {against(d.get('shuffled'), 'shuffled')} and "
                     f"{against(d.get('zero'), 'zero')}.")
    clear = [r for r in rows if all(excludes_zero(r["generation"]["diff_vs"].get(k)) is True for k in R.MUST_CLEAR)]
    lines.append(f"\n{len(clear)} of {len(rows)} runs clear both soft-token controls: "
                 + (", ".join(f"`{r['dataset']}/{r['encoder']}/{r['route']}`" for r in clear) or "none") + ".")
    return "\n".join(lines)


def probe(runs: list[dict], metric: str = "Hit@1") -> str:
    """After the probe table: the first sampler's ``metric`` against chance, the controls and the encoder-space
    references (what the representation holds, against what the LLM reads)."""
    lines = []
    for r in [r for r in runs if r.get("probe")]:
        s = r["samplers"][0]
        p = r["probe"][s]
        c, d = p["conditions"], p["diff_vs"]
        C = p["n_candidates"]
        refs = "; ".join(f"the `{k}` reference {ci(c[k][metric])}" for k in ("encoder", "readout")
                         if metric in c.get(k, {}))
        lines.append(f"- **{_who(r)}**, `{s}` candidates ({C} per answer: chance is 1/{C} = {1 / C:.3f}): "
                     f"{metric} {ci(c['model'][metric])} (n = {p['n']}); {against(d.get('shuffled', {}).get(metric), 'shuffled')}"
                     f", {against(d.get('zero', {}).get(metric), 'zero')}" + (f"; {refs}" if refs else "") + ".")
    if not lines:
        return "_No probe in these runs._"
    return "\n".join(lines)


def adapter_side(runs: list[dict]) -> str:
    """After the token-space route's adapter-side table: what the readout finds before the LLM reads anything."""
    lines = []
    for r in runs:
        side = (r.get("extra") or {}).get("adapter_side") or {}
        top1 = side.get("readout_top1")
        g = r.get("generation")
        if top1 is None or not g:
            continue
        per = "per position of the window" if side.get("per") == "position" else "per case"
        lines.append(f"- **{_who(r)}**: the readout names the right item {top1:.3f} of the time ({per}, "
                     f"n = {side.get('n')}); after the LLM reads the spelled titles back, {ci(g['conditions']['model']['mean'])} "
                     f"{UNIT[g['metric']]}.")
    return "\n".join(lines) or "_No token-space run here._"


def positions(table) -> str:
    """After the found-by-position table (rows: dataset, adapter, condition; columns: positions 1..L):
    where in the window each route finds titles, oldest half against newest half."""
    lines = []
    for (d, a, cond), row in table.iterrows():
        if cond != "model":
            continue
        vals = row.dropna()
        if len(vals) < 2:
            continue
        half = len(vals) // 2
        old, new = vals.iloc[:half].mean(), vals.iloc[half:].mean()
        lines.append(f"- **{d}, `{a}`**: the oldest {half} positions are found in {old:.3f} of windows, the newest "
                     f"{len(vals) - half} in {new:.3f}; position 1 {vals.iloc[0]:.3f}, position {vals.index[-1]} "
                     f"{vals.iloc[-1]:.3f}.")
    return "\n".join(lines) or "_No generated answers to count by position._"


def truncation(reports: dict) -> str:
    """After the truncation table (``collator.truncation_report`` per dataset)."""
    lines = []
    for d, t in reports.items():
        lines.append(f"- **{d}**: a target averages {t['mean_target_tokens']:.1f} tokens for {t['mean_titles']:.1f} "
                     f"titles; the first {t['max_target_tokens']} tokens hold {t['mean_titles_supervised']:.1f} of them "
                     f"({t['share_titles_supervised']:.3f} of all titles, over {t['n_windows']} training windows).")
    return "\n".join(lines)


def histogram(runs: list[dict]) -> str:
    """After the recovery distribution: the share of windows with at least one title named, model vs controls."""
    lines = []
    for r in [r for r in runs if r.get("generation") and r["generation"]["metric"] == "found"]:
        c = r["generation"]["conditions"]
        some = {k: 1 - v["hist"][0] for k, v in c.items() if v.get("hist")}
        most = max(range(len(c["model"]["hist"])), key=lambda k: c["model"]["hist"][k])
        lines.append(f"- **{_who(r)}**: at least one title named in {some['model']:.3f} of windows (n = "
                     f"{r['generation']['n']}), against " + ", ".join(f"{k} {v:.3f}" for k, v in some.items() if k != "model")
                     + f"; the most common count is {most}.")
    return "\n".join(lines) or "_No recovery counts here._"


def finetune(change: dict) -> str:
    """After the before/after table of fine-tuning from the aligned start."""
    lines = []
    for d, readings in change.items():
        for name, v in readings.items():
            lines.append(f"- **{d}, {name}**: {v['before']:.3f} before, {v['after']:.3f} after "
                         f"(n = {v['n']}); the change {ci(v['after_minus_before'])} "
                         + ("excludes 0" if excludes_zero(v["after_minus_before"]) is not None else "covers 0") + ".")
    return "\n".join(lines) or "_No fine-tuning in this preset._"


# -- summaries -----------------------------------------------------------------------------------
def _headline_points(s: Summary, runs: list[dict]) -> None:
    heads = R.headline(runs, roles=("main",))
    for h in heads:
        v = h["vs"]
        s.add(f"{h['dataset']}, {encoder_label(h['encoder'])}, the headline route `{h['route']}`: {h['reading']} "
              f"{ci(h['model'])} (n = {h['n']}), {against(v.get('shuffled'), 'shuffled')}, "
              f"{against(v.get('zero'), 'zero')}.")
    if heads:
        s.add(f"{sum(h['clears'] for h in heads)} of {len(heads)} headline readings clear both soft-token controls "
              f"(`python -m recinterp.report` checks the same).")
    for r in R.select(runs, role="contrast"):
        g = r.get("generation")
        if g:
            s.add(f"The other route on {r['dataset']}, `{r['route']}`, {_made(r)}: {ci(g['conditions']['model']['mean'])} "
                  f"{UNIT[g['metric']]}, {against(g['diff_vs'].get('shuffled'), 'shuffled')}.")


def _case_point(s: Summary, case) -> None:
    if case is None:
        return
    counts = ", ".join(f"`{r.route}` named {r.count} of {len(case.truth)} (its mean {r.mean_found:.2f})" for r in case.routes)
    s.add(f"The worked case (case {case.index + 1} of {case.n}, {case.dataset}): {counts}.")


def summary_recovery(runs: list[dict], case=None) -> Summary:
    """Notebook 03's Summary from its runs (and its worked case)."""
    s = Summary("recovery")
    _headline_points(s, runs)
    _case_point(s, case)
    return s


def summary_residual(runs: list[dict], case=None) -> Summary:
    """Notebook 04's Summary: the headline, the encoder comparison, the other route, the worked case."""
    s = Summary("residual")
    _headline_points(s, runs)
    comp = R.headline(runs, roles=("comparison",))
    for h in comp:
        if h["reading"].startswith("generation"):
            mean = ci_values(h["model"])[0]
            s.add(f"Encoder comparison, {h['dataset']}, {encoder_label(h['encoder'])}: {h['reading']} {mean:.3f} "
                  f"(n = {h['n']}), {'clears both soft-token controls' if h['clears'] else 'does not clear its soft-token controls'}.")
    _case_point(s, case)
    return s


# -- task 2's choices and the learning curve ----------------------------------------------------
def variant_choice(best: dict, ablation: list[dict], note: str = "") -> str:
    """Which end-to-end variant the residual route uses, and why (the ablation's pick, or the preset's default)."""
    what = f"`{best['name']}` (input `{best['input']}`, start: {'the item stage' if best.get('init') == 'item' else 'scratch'})"
    if not ablation:
        return f"No ablation ran in this preset: the end-to-end route uses the preset's default variant {what}."
    return (f"Best of {len(ablation)} variants by validation Hit@1 (ties: MRR): {what}." + (f" Note: {note}" if note else ""))


def headline(runs: list[dict], roles=("main",)) -> str:
    """After a headline table: per reading, its value and whether it clears both soft-token controls."""
    lines = [f"- **{h['dataset']}, {encoder_label(h['encoder'])}, `{h['route']}` ({h['role']})**, {h['reading']}: "
             f"{ci(h['model'])} (n = {h['n']}): {'clears' if h['clears'] else 'does not clear'} shuffled and zero"
             + (f"; adapter side {h['adapter_side']}" if h["adapter_side"] else "") + "."
             for h in R.headline(runs, roles=roles)]
    return "\n".join(lines) or "_No headline reading here._"


def curve(rows: list[dict]) -> str:
    """After the learning curve (``recinterp.curve``'s rows): per route and reading, the first point that clears
    both soft-token controls, or how far it went without clearing them."""
    from recinterp.curve import device_of

    lines = []
    keys = list(dict.fromkeys((r["variant"], r["metric"]) for r in rows))
    for v, m in keys:
        pts = sorted([r for r in rows if (r["variant"], r["metric"]) == (v, m)], key=lambda r: r["seconds"])
        lit = next((r for r in pts if r["clears"]), None)
        last = pts[-1]
        on = "" if device_of(last) == "cpu" else f" on {device_of(last)}"  # seconds on a GPU are not a CPU's
        how = ("fitted" if v == "aligned" else "trained through the LLM") + on
        if lit is not None:
            lines.append(f"- **{v}**, {m}: clears both controls at {int(lit['steps'])} steps, {lit['seconds']:.0f} s "
                         f"{how} (model {lit['model']:.3f}, shuffled {lit['shuffled']:.3f}, zero {lit['zero']:.3f}, "
                         f"n = {int(lit['n'])}).")
        else:
            lines.append(f"- **{v}**, {m}: does not clear its controls within {int(last['steps'])} steps "
                         f"({last['seconds']:.0f} s {how}; last reading {last['model']:.3f}, shuffled "
                         f"{last['shuffled']:.3f}, zero {last['zero']:.3f}, n = {int(last['n'])}).")
    return "\n".join(lines) or "_No learning curve measured in this results folder._"


# -- task 3 (notebook 05) ------------------------------------------------------------------------
def fidelity(by_dataset: dict) -> str:
    """After the route-fidelity table: {dataset: {(route, source): route_fidelity}}."""
    lines = []
    for d, fid in by_dataset.items():
        for (route, src), v in fid.items():
            lines.append(f"- **{d}, `{route}`, {src}'s item**: its true title named in {ci(v['hit'])} of histories "
                         f"(n = {v['hit']['n']}); scored against another history's item {ci(v['shuffled'])}: the route is "
                         f"{against(v['diff'], 'shuffled-pairing')}.")
    return "\n".join(lines) or "_No real-item route measured._"


def novelty(by_dataset: dict, headline: dict) -> str:
    """After the novelty table: {dataset: {(route, source): novelty_summary}}, ``headline``: dataset -> its route."""
    lines = []
    for d, nov in by_dataset.items():
        hl = headline.get(d)
        parts = [f"{src} {ci(v)} (n = {v.get('n', 0)})" for (route, src), v in nov.items() if route == hl and v.get("n")]
        if parts:
            lines.append(f"- **{d}, headline route `{hl}`**: share of named titles not in the catalogue: " + "; ".join(parts) + ".")
    lines.append("\nA DreamRec share above the real items' shares would say the route names items outside the catalogue "
                 "*because* x0 is not a catalogue row; a real item named as a non-catalogue title is the route's own "
                 "error rate, the floor to read DreamRec's share against.")
    return "\n".join(lines)


def comparisons(comps: dict) -> str:
    """After task 3's comparison table: per dataset and judge, its validity row, then either its three paired
    comparisons or "cannot judge" (``comps``: dataset -> judge -> ``comparison.compare`` result)."""
    lines = []
    for d, by_judge in comps.items():
        for name, c in by_judge.items():
            v = c["validity"]
            head = (f"- **{d}, {name}**: offered the true next item against a random one it picks the true one "
                    f"{ci(v['picks_true'])} of the time (n = {v['n']}): ")
            if not c["valid"]:
                lines.append(head + "not clearly above one half, so it **cannot judge**; its rows are recorded but "
                             "are not a result.")
                continue
            rows = "; ".join(f"{r['a']} − {r['b']} {format_ci(r['diff'], signed=True)}" + (
                " (interval excludes 0)" if excludes_zero(r["diff"]) is not None else "") for r in c["rows"].values())
            lines.append(head + f"valid. {rows}.")
    return "\n".join(lines) or "_No judge ran._"


def summary_instantiation(metrics: dict, case=None) -> Summary:
    """Notebook 05's Summary: per dataset, route fidelity on real items, novelty of DreamRec's named items, accuracy."""
    s = Summary("instantiation")
    enc = metrics.get("encoder", "")
    for d, blk in metrics["datasets"].items():
        hl, src = blk["headline_route"], blk["sources"]
        f = (src.get(enc) or {}).get("fidelity")
        if f:
            s.add(f"{d}, headline route `{hl}`: {encoder_label(enc)}'s top-1 item is named {ci(f['hit'])} of the time "
                  f"(n = {f['hit']['n']}), {against(f['diff'], 'shuffled-pairing')}.")
        nov = {k: v["novelty"] for k, v in src.items() if v.get("novelty", {}).get("n")}
        if "dreamrec" in nov:
            s.add(f"{d}: DreamRec's named items are outside the catalogue {ci(nov['dreamrec'])} of the time; the real items' "
                  "rates, the route's own floor: " + ", ".join(f"{k} {ci(v)}" for k, v in nov.items() if k != "dreamrec") + ".")
        nxt = (src.get("dreamrec") or {}).get("accuracy", {}).get("named_is_next")
        if nxt and nxt.get("n"):
            s.add(f"{d}: the item named for DreamRec's x0 is the true next item {ci(nxt)} of the time (n = {nxt['n']}).")
        comps = blk.get("comparisons") or {}
        failed = [j for j, c in comps.items() if not c["valid"]]
        for j, c in comps.items():
            r = c["rows"].get(f"dreamrec_vs_{enc}")
            if c["valid"] and r:
                s.add(f"{d}, judge `{j}` (valid: true next item picked {ci(c['validity']['picks_true'])}): DreamRec − "
                      f"{encoder_label(enc)} {format_ci(r['diff'], signed=True)} (n = {r['diff']['n']}).")
        if failed:
            s.add(f"{d}: cannot judge (failed the validity row): {', '.join(failed)}.")
    if case is not None:
        r = case.routes.get(next(iter(metrics["datasets"].values()))["headline_route"]) or next(iter(case.routes.values()))
        s.add(f"The worked case ({case.dataset}, history {case.index + 1}): the LLM named `{r['answer'] or '(nothing)'}`, "
              f"{'in' if r['in_catalogue'] else 'not in'} the catalogue.")
    return s


def accuracy(rows: dict) -> str:
    """After the accuracy table (``Instantiation.accuracy_rows`` of every dataset): the named item against the
    recommender's own retrieval, and the genre overlap of what was named."""
    lines = []
    for k, v in rows.items():
        ret = v.get("retrieval HR@1")
        gn, ga = v.get("genre overlap (named)"), v.get("genre overlap (appended)")
        lines.append(f"- **{k}**: the named item is the true next one {v['named = next']:.3f} of the time"
                     + (f", the recommender's own top-1 {ret:.3f}" if ret is not None else "")
                     + (f"; genre overlap with the history {gn:.3f} for the named item" if gn is not None else "")
                     + (f", {ga:.3f} for the appended one" if ga is not None else "") + ".")
    return "\n".join(lines) or "_No accuracy measured._"


def encoders_vs_popularity(results_dir, encoders: list[str]) -> str:
    """What notebook 02 found about the encoders a task notebook reads: each one's HR@10 against popularity on the
    same rows (paired 95% CI), per dataset and split, from ``results_dir``'s 02 metrics.json (none: says so)."""
    from pathlib import Path

    from recinterp.config import NOTEBOOKS, read_json, rerun_fix
    from recinterp.lesson.recommenders import diff_ci

    p = Path(results_dir) / NOTEBOOKS["recommenders"] / "metrics.json"
    if not p.exists():
        return f"_Notebook 02's metrics are not in {results_dir}: the encoders' quality against popularity is unknown here._"
    m = read_json(p, rerun_fix(p))
    parts = []
    for d, blk in m.get("datasets", {}).items():
        for e in encoders:
            for split, v in ((blk.get("models", {}).get(e) or {}).get("vs_popularity_HR@10") or {}).items():
                diff = diff_ci(v)  # notebook 02's stored {diff, lo, hi} as a {mean, lo, hi} summary
                side = excludes_zero(diff)
                verdict = "above" if side is True else "below" if side is False else "not clearly above"
                parts.append(f"{encoder_label(e)} on {d} `{split}` {verdict} popularity ({ci(diff)})")
    if not parts:
        return "_Notebook 02 recorded no comparison with popularity for these encoders._"
    return ("Notebook 02 measured these encoders against popularity (HR@10 difference, paired 95% CI): "
            + "; ".join(parts) + ". A reading below is about what the states hold, not about how well the "
            "encoder recommends: an encoder not clearly above popularity still has states to read.")


def route_evidence(folder) -> str:
    """Why the paper's route reads or not, from ``make evidence``'s evidence.json in ``folder`` (recinterp.evidence):
    the must-light world as built and with the scale fixes, the linear ceiling, the item stage's curve."""
    import json
    from pathlib import Path

    from recinterp.metrics import format_ci

    f = Path(folder) / "evidence.json"
    if not f.exists():
        return (f"_No evidence measured for this results folder ({f} is absent): `make evidence` measures the "
                "must-light world, the linear ceiling and the item stage's curve (about an hour on 2 CPU cores)._")
    pts = json.loads(f.read_text()).get("points", [])
    clears = lambda p: p["vs_shuffled"]["lo"] > 0 and p["vs_zero"]["lo"] > 0  # noqa: E731
    out = []
    ml = [p for p in pts if p["part"] == "must_light"]
    if ml:
        out.append("**The must-light world** (16 one-word items, random 64-d vectors, the paper's linear adapter, "
                   "the embedded LLM): " + "; ".join(
                       f"{p['setting']}, {p['steps']} steps: {format_ci(p['hit'])} of 16 named "
                       f"({'clears' if clears(p) else 'does not clear'} both controls; soft-token norm "
                       f"{p['soft_norm']:.1f} against the LLM's {p['llm_token_norm']:.1f})" for p in ml) + ".")
    for p in (p for p in pts if p["part"] == "ceiling"):
        out.append(f"**The linear ceiling** ({p['dataset']}, {p['encoder']} item embeddings to the first {p['k']} "
                   "title tokens, least squares, no LLM): nearest-title top-1 " + "; ".join(
                       f"{r['items']} items {r['top1_fitted']:.3f} fitted, {r['top1_held_out']:.3f} held out"
                       for r in p["rows"]) + ". Where it is near 0, no linear map copies the titles' tokens; an "
                   "adapter must then find other soft tokens the LLM happens to read as the title.")
    st = sorted((p for p in pts if p["part"] == "item_stage"), key=lambda p: (p.get("start", ""), p["n_items"], p["steps"]))
    if st:
        out.append("**The item stage** on the real catalogue with the scale fixes (one item embedding, 4 soft "
                   "tokens): " + "; ".join(
                       f"{p['n_items'] or 'all'} items{' from the least-squares start' if p.get('start') == 'ls' else ''}, "
                       f"{p['steps']} steps ({p['epochs']:.1f} epochs): "
                       f"{format_ci(p['hit'])} named, shuffled {p['shuffled']['mean']:.3f}, zero "
                       f"{p['zero']['mean']:.3f} ({'clears' if clears(p) else 'does not clear'}), soft-token "
                       f"norm {p['soft_norm']:.1f}" for p in st) + ".")
    return "\n\n".join(out) or "_evidence.json holds no points yet._"
