"""The headline check and docs/measurements.md's results table: ``python -m recinterp.report RESULTS_DIR``.

For every main run (and, with ``--markdown`` / ``--readme``, the contrast route and the
encoder comparison beside it) the generation metric and the probe's Hit@1 (first sampler),
each against every control with n and the paired 95% CI, and task 3's route fidelity and its judged
comparison (DreamRec − SASRec, DreamRec − random, SASRec − random per judge, with the judge's validity
row; reported, not part of the exit status); the
exit status is 0 only if every headline reading clears both soft-token controls (shuffled
and zero): the CI of the difference lies above 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from recinterp.config import write_text_atomic
from recinterp.metrics import format_ci
from recinterp.report import MUST_CLEAR, comparison_headline, headline, instantiation_headline, load_runs

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


def format_comparisons(rows: list[dict], markdown: bool = False) -> str:
    """Task 3's judged comparison rows: each judge's validity row, then the paired difference, or "cannot
    judge" where the judge failed its validity row."""
    if not rows:
        return ""
    if markdown:
        lines = ["\nTask 3, judged comparison (mean preference, +1 = the first source both orders; paired 95% CI):\n",
                 "| dataset | judge | validity: true item picked [95% CI] | comparison | n | A − B [95% CI] |",
                 "|---|---|---|---|---|---|"]
    else:
        lines = ["\ntask 3 judged comparison (A − B: mean preference over both orders, paired 95% CI):"]
    for h in rows:
        val = f"{format_ci(h['validity'])} ({'valid' if h['valid'] else 'fails'})"
        res = format_ci(h["model"], signed=True) if h["valid"] else "cannot judge"
        if markdown:
            lines.append(f"| {h['dataset']} | {h['judge']} | {val} | {h['reading']} | {h['n']} | {res} |")
        else:
            lines.append(f"instantiation / {h['dataset']} / {h['reading']}: {res} (n={h['n']}); validity {val}")
    return "\n".join(lines)


BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"


def write_readme_block(readme: str | os.PathLike, text: str) -> None:
    """Replace what lies between the report markers of a Markdown file with ``text`` (atomically)."""
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
    compared = comparison_headline(a.results_dir)  # task 3's judged comparison: reported, not checked
    if not rows:
        print(f"no headline reading in {a.results_dir} (run notebooks 03-05 first)", file=sys.stderr)
        return 2
    if a.markdown or a.readme:
        table = markdown_headline(readings) + format_comparisons(compared, markdown=True)
        if a.readme:
            write_readme_block(a.readme, f"Generated by `python -m recinterp.report {a.results_dir} --readme {a.readme}`"
                                         f" from the metrics.json files of notebooks 03-05.\n\n{table}")
        else:
            print(table)
    else:
        print(json.dumps(rows + compared, indent=1) if a.json else
              "\n".join(t for t in (format_headline(rows), format_comparisons(compared)) if t))
    ok = all(h["clears"] for h in rows)
    print(f"\n{sum(h['clears'] for h in rows)} of {len(rows)} headline readings clear their controls "
          f"({' and '.join(MUST_CLEAR)}; task 3's fidelity: shuffled).", file=sys.stderr)
    return 0 if ok else 1
