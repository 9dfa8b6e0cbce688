"""The executed notebooks of a results folder as a static HTML book (``make book``).

    python -m recinterp.book results/cpu                  # -> results/cpu/book/index.html
    python -m recinterp.book results/smoke /tmp/book      # any preset's folder, any output folder

Nothing is executed: the notebooks papermill wrote under ``<results>/NN_*/`` are copied into a
Sphinx source folder with a few presentation touches, and Sphinx + myst-nb (the engine of
jupyter-book 1.x, with its theme, sphinx-book-theme) renders them offline (``pip install -e
".[book]"``).  The touches, made on the copies only:

- a landing page (``index``): the question, the README's two commands, the headline table that
  ``python -m recinterp.report`` prints (generated here by recinterp.report from the same
  metrics.json files), notebook 06's figures, one link per notebook;
- the repository's measurement log, ``docs/measurements.md``, as one more page (``measurements``),
  when the book is built from a checkout that has it;
- on every page, which preset, LLM, seed and commit produced it and how long it ran
  (``done.json`` from recinterp.reproduce, ``timings.json``, the notebook's own parameters);
- long code cells and long text-only outputs (training logs) folded behind a toggle, the
  parameters cells always shown, widget outputs (progress bars, frozen at 0% in a saved notebook) left out;
- alt text on every figure, naming what it plots: the notebook's own (``lesson.card.show_figure`` and
  ``figures.FigureSet.save`` show each figure with one), else the figure's title found in the cell's code
  (or in the recinterp plotting function it calls), else the section it belongs to.

The build goes to a temporary folder that replaces ``out`` only when it succeeded.
"""
from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import html
import inspect
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from recinterp import report
from recinterp.report.cli import format_comparisons, markdown_headline
from recinterp.config import NOTEBOOKS, load_preset, repo_root, resolve, write_json_atomic, write_text_atomic
from recinterp.llm import EMBEDDED, EMBEDDED_FILE
from recinterp.reproduce import source_commit

QUESTION = (
    "Can a frozen large language model read the hidden states of an ID-based sequential recommender? "
    "RecInterpreter (Yang et al., arXiv 2310.20487) trains only a small adapter that turns a recommender's "
    "states into soft tokens for the frozen LLM and asks it to name the items behind them, beside controls that "
    "say what a reading without the states would give; DreamRec (NeurIPS 2023) generates an ideal next item "
    "that the LLM is asked to name."
)
# The README's two commands, used when the README is not beside the package (an installed copy).
COMMANDS = ("make reproduce   # the whole reproduction: set-up, data, notebooks 01 -> 06 on the CPU preset\n"
            "make test        # the test suite: unit tests + every notebook in the smoke preset")
# Pages of the repository's docs/ folder the book carries beside the notebooks (stem -> title on the landing page).
DOC_PAGES = {"measurements": "Everything measured so far, by topic (the repository's log, not only this run)"}
CODE_LINES_SHOWN = 12  # a longer code cell is folded behind "Show code cell source"
OUTPUT_LINES_SHOWN = 20  # a longer text-only output (a training log) is folded behind "Show code cell output"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
RUNNER_TAGS = ("parameters", "injected-parameters")  # papermill's cells: always shown

CSS = """
/* wide pages: the tables and figures of a run need the room (narrower side columns too) */
html { --pst-sidebar-secondary: 13rem; }
@media (min-width: 960px) { .bd-sidebar-primary { width: 17rem; max-width: 17rem; } }
.bd-page-width { max-width: 100%; }
.bd-main .bd-content .bd-article-container { max-width: 100%; }
.bd-article img, div.cell_output img { max-width: 100%; height: auto; }
figure.align-default img, .landing-figure img { width: 100%; }
div.cell_output, .bd-article table, div.output_html { overflow-x: auto; }
.bd-article table { font-size: 0.82em; }
.bd-article table td, .bd-article table th { padding: 0.15rem 0.4rem; }
div.cell_output table td, div.cell_output table th { white-space: nowrap; }
div.cell div.cell_input pre, div.cell details pre { font-size: 0.8em; line-height: 1.3; }
div.cell_output pre { font-size: 0.78em; line-height: 1.25; max-height: 32em; overflow-y: auto;
                      white-space: pre-wrap; overflow-wrap: anywhere; }
.run-card { font-size: 0.9em; }
/* the headline table: a value and its interval stay on one line; the table scrolls when narrow */
table.headline-table { font-size: 0.76em; display: block; max-width: 100%; overflow-x: auto; }
table.headline-table td:nth-child(8) { white-space: nowrap; }
/* the measurement log's wide tables scroll in their box, not the page */
section#measurements table { display: block; max-width: 100%; overflow-x: auto; }
"""


# -- what a results folder holds ---------------------------------------------------------------
@dataclass
class Page:
    """One executed notebook and what produced it."""
    stem: str  # "03_sequence_recovery"
    path: Path  # the executed notebook
    title: str  # its first heading, without the number
    preset: str | None = None
    llm: str | None = None
    seed: object = None
    commit: str | None = None
    seconds: float | None = None
    started: str | None = None
    params: dict = field(default_factory=dict)


def executed_notebooks(results: Path) -> list[Path]:
    """``<results>/NN_name/NN_name.ipynb`` of every finished notebook (its metrics.json written), in order."""
    return sorted(p for p in results.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")
                  if p.stem == p.parent.name and (p.parent / "metrics.json").exists())


def _cell_params(cell: dict) -> dict:
    """Plain-literal assignments of a parameters cell ({} for anything else)."""
    out = {}
    try:
        tree = ast.parse("".join(cell.get("source", "")))
    except SyntaxError:
        return out
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def notebook_params(nb: dict) -> dict:
    """The parameters a run used: the notebook's defaults, then what papermill injected."""
    params = {}
    for tag in RUNNER_TAGS:
        for c in nb["cells"]:
            if tag in c.get("metadata", {}).get("tags", []):
                params.update(_cell_params(c))
    return params


def _title(nb: dict, stem: str) -> str:
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(c["source"]), flags=re.M)
            if m:
                return re.sub(r"^\d\d\s*[—–-]+\s*", "", m.group(1)).strip()
    return stem


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def describe(results: Path, nb_path: Path) -> Page:
    """A notebook's page header: preset, LLM, seed, commit and run time, from what the run wrote."""
    nb = json.loads(nb_path.read_text())
    stem = nb_path.stem
    params = notebook_params(nb)
    metrics = _read_json(nb_path.parent / "metrics.json")
    done = _read_json(nb_path.parent / "done.json")
    timings = _read_json(results / "timings.json")
    pm = nb.get("metadata", {}).get("papermill", {})
    seconds = done.get("seconds") or timings.get(nb_path.name) or pm.get("duration")
    preset = metrics.get("preset") or done.get("preset") or params.get("preset")
    llm = metrics.get("llm_name") or metrics.get("llm") or params.get("llm")
    if isinstance(llm, dict):  # the LLM's description (name, dtype, size, ...)
        llm = llm.get("name")
    if "llm" in params and not llm and preset:  # "" means the preset's LLM
        try:
            llm = load_preset(preset).get(NOTEBOOK_SECTION.get(stem, ""), {}).get("llm")
        except (ValueError, KeyError):
            llm = None
    return Page(stem=stem, path=nb_path, title=_title(nb, stem), preset=preset, llm=llm if "llm" in params else None,
                seed=metrics.get("seed", params.get("seed")), commit=done.get("commit"), seconds=seconds,
                started=(pm.get("start_time") or "")[:16].replace("T", " ") or None, params=params)


NOTEBOOK_SECTION = {folder: section for section, folder in NOTEBOOKS.items()}


def llm_label(llm) -> str:
    """"embedded" -> "embedded (SmolLM2-135M-Instruct)"; any other name as it is."""
    return f"{EMBEDDED} ({EMBEDDED_FILE.split('.')[0]})" if llm == EMBEDDED else str(llm)


def _duration(seconds) -> str:
    if seconds is None:
        return "not recorded"
    s = float(seconds)
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def run_card(p: Page) -> str:
    """The MyST block every page opens with: what produced it."""
    llm = llm_label(p.llm) if p.llm is not None else "none (this notebook runs no LLM)"
    commit = f"`{p.commit}`" if p.commit else "not recorded (run before recinterp.reproduce recorded commits)"
    lines = [f"**Produced by** preset `{p.preset}` · LLM `{llm}` · seed `{p.seed}` · commit {commit} · "
             + (f"ran in **{_duration(p.seconds)}**" if p.seconds is not None else "run time not recorded")
             + (f" (started {p.started} UTC)" if p.started else "")]
    if p.preset == "smoke":
        lines.append("\n**SMOKE RUN — not a result.** The smoke preset checks the plumbing with a few steps and "
                     "a handful of cases; its numbers measure nothing.")
    return "```{admonition} This run\n:class: note run-card\n" + "\n".join(lines) + "\n```\n"


# -- alt text: what a figure plots -------------------------------------------------------------
_TITLE_CALLS = {"suptitle", "set_title", "title"}


def _literal(node) -> str | None:
    """A string constant, or an f-string with its holes shown as "…"; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    if isinstance(node, ast.BoolOp):  # title or f"..." : the literal alternative
        return next((s for s in map(_literal, node.values) if s), None)
    return None


def _titles(tree, namespace: dict, depth: int = 0) -> list[str]:
    """Figure titles in ``tree``, suptitles first: suptitle / set_title / title= literals, and those of
    the recinterp functions it calls (``F.plot_probe(...)`` -> the suptitle inside figures.plot_probe)."""
    sup, other = [], []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if name == "suptitle" and node.args:
            sup.append(_literal(node.args[0]))
        elif name in _TITLE_CALLS and node.args:
            other.append(_literal(node.args[0]))
        if "title" in kw:
            (sup if name.startswith("plot") else other).append(_literal(kw["title"]))
        fn = _resolve(node.func, namespace)
        if fn is not None and depth < 1:
            try:
                src = inspect.getsource(fn)
            except (OSError, TypeError):
                continue
            inner = _titles(ast.parse(inspect.cleandoc("\n" + src) if src.startswith(" ") else src), {}, depth + 1)
            doc = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ").rstrip(".")
            sup += inner or ([doc] if name.startswith("plot") and doc else [])  # no title drawn: what its docstring says
    # a title that is mostly holes ("{col_name}", f"{ds} (n={n})") says nothing without its values
    return [t for t in sup + other if t and len(re.sub(r"\{[^}]*\}|…|\W", "", t)) >= 6]


def _resolve(func, namespace: dict):
    """``F.plot_probe`` -> the function, when F names a recinterp module in the notebook's imports."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in namespace:
        import importlib

        try:
            return getattr(importlib.import_module(namespace[func.value.id]), func.attr, None)
        except ImportError:
            return None
    return None


def _namespace(nb: dict) -> dict:
    """Names the notebook binds to recinterp modules: ``from recinterp import figures as F`` -> {"F": ...}."""
    ns = {}
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(c["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("recinterp") and not node.level:
                for a in node.names:
                    ns[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("recinterp"):
                        ns[a.asname or a.name] = a.name
    return {k: v for k, v in ns.items() if _is_module(v)}


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _axes(tree) -> str:
    """What a plot puts on its axes, from x= / y= / xlabel= / ylabel= literals."""
    kw = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for k in node.keywords:
                if k.arg in ("x", "y", "xlabel", "ylabel", "col", "hue") and k.arg not in kw:
                    s = _literal(k.value)
                    if s:
                        kw[k.arg] = s
    y, x = kw.get("ylabel") or kw.get("y"), kw.get("xlabel") or kw.get("x")
    what = f"{y} against {x}" if y and x else (x or y or "")
    by = [kw[k] for k in ("col", "hue") if k in kw]
    return f"{what}, by {' and '.join(by)}" if what and by else what


def figure_alts(source: str, n_images: int, section: str, namespace: dict) -> list[str]:
    """Alt text for each of a cell's ``n_images`` figures.  When the cell saves one figure per call
    (notebook 06: ``save(F.plot_x(...), "name")``) and the counts match, each figure gets its own
    call's title and name; otherwise every figure gets the cell's titles and axes."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    if tree is None:
        return [section or "Figure"] * n_images
    saves = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "save"
             and len(n.args) >= 2 and _literal(n.args[1])]
    saves.sort(key=lambda n: (n.lineno, n.col_offset))
    if n_images and len(saves) == n_images:
        out = []
        for call in saves:
            t = _titles(call, namespace)
            name = _literal(call.args[1]).replace("_", " ")
            out.append(f"{t[0] if t else section}: figure '{name}'")
        return out
    titles = list(dict.fromkeys(_titles(tree, namespace)))
    axes = _axes(tree)
    what = "; ".join(titles[:3]) or section or "Figure"
    if axes:
        what += f": {axes}"
    return [what] * n_images


# -- the source folder -------------------------------------------------------------------------
def _lines(text) -> int:
    return "".join(text).count("\n") + 1


def _png(b64) -> bytes:
    """An image/png output's bytes (notebooks store base64 text, sometimes split into lines)."""
    return base64.b64decode(b64 if isinstance(b64, str) else "".join(b64))


def _sections(nb: dict) -> list[str]:
    """For each cell, the last heading above it (the section a figure belongs to)."""
    out, section = [], ""
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            heads = re.findall(r"^#{1,4}\s+(.+)$", "".join(c["source"]), flags=re.M)
            section = heads[-1].strip() if heads else section
        out.append(section)
    return out


def _cell_figures(nb: dict) -> list[tuple[dict, list, list[str]]]:
    """[(code cell, its image/png outputs, their alt texts)] for every code cell."""
    namespace, sections = _namespace(nb), _sections(nb)
    out = []
    for c, section in zip(nb["cells"], sections):
        if c["cell_type"] == "code":
            shown = [o for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
            images = [o["data"]["image/png"] for o in shown]
            derived = figure_alts("".join(c["source"]), len(images), section, namespace)
            # the notebook's own alt text (lesson.card.show_figure, FigureSet.save) first, else the derived one
            own = [(o.get("metadata") or {}).get("image/png", {}).get("alt") for o in shown]
            out.append((c, images, [a if isinstance(a, str) and a.strip() else d for a, d in zip(own, derived)]))
    return out


def one_line_code_spans(md: str) -> str:
    """A generated answer shown as `inline code` may hold line breaks ("1. Title\n2. Title"); in Markdown
    such a line starts a list and tears the span apart, so the book shows the breaks as " ↵ "."""
    if "```" in md:
        return md
    return re.sub(r"`[^`]*`", lambda m: m.group(0).replace("\n", " ↵ "), md)  # spans paired left to right


def prepare_notebook(nb: dict, page: Page) -> tuple[dict, dict[str, str]]:
    """The book's copy of an executed notebook, and {sha256 of each figure's bytes: its alt text}."""
    nb.get("metadata", {}).pop("widgets", None)
    alts: dict[str, str] = {}
    for c, images, cell_alts in _cell_figures(nb):
        for b64, alt in zip(images, cell_alts):
            alts[hashlib.sha256(_png(b64)).hexdigest()] = alt
        if images:  # Sphinx's own alt (one per cell); set_alts gives each figure its own after the build
            c.setdefault("metadata", {}).setdefault("mystnb", {})["image"] = {"alt": cell_alts[0]}
        outs = []
        for o in c.get("outputs", []):
            data = o.get("data") or {}
            if WIDGET_MIME in data:  # a progress bar: its text is its first frame ("0%")
                continue
            if "text/markdown" in data:
                data["text/markdown"] = one_line_code_spans("".join(data["text/markdown"]))
            outs.append(o)
        c["outputs"] = outs
        tags = c.setdefault("metadata", {}).setdefault("tags", [])
        if not any(t in tags for t in RUNNER_TAGS) and _lines(c["source"]) > CODE_LINES_SHOWN:
            tags.append("hide-input")
        text_only = outs and all(o["output_type"] == "stream" or set(o.get("data", {})) <= {"text/plain"} for o in outs)
        if text_only and sum(_lines(o.get("text", o.get("data", {}).get("text/plain", ""))) for o in outs) \
                > OUTPUT_LINES_SHOWN:
            tags.append("hide-output")
    first = nb["cells"][0] if nb["cells"] else {"cell_type": "code"}
    if first["cell_type"] == "markdown" and re.match(r"#\s", "".join(first["source"])):
        title, _, rest = "".join(first["source"]).partition("\n")  # the run card right under the title
        first["source"] = f"{title}\n\n{run_card(page)}\n{rest}"
    else:
        nb["cells"].insert(0, {"cell_type": "markdown", "id": "recinterp-run-card", "metadata": {},
                               "source": run_card(page)})
    return nb, alts


def figures_of_run(results: Path, src: Path) -> list[tuple[str, str, str]]:
    """Notebook 06's figures of this run copied into ``src/figures``: [(file, name, alt)].  A file
    is used only if it was written during notebook 06's run (figures/ is shared by every run of a
    checkout); otherwise the figure is taken from the executed notebook 06 itself."""
    folder = results / NOTEBOOKS["figures"]
    m = _read_json(folder / "metrics.json")
    nb_path = folder / f"{NOTEBOOKS['figures']}.ipynb"
    names = list(m.get("figures", {}))
    if not names or not nb_path.exists():
        return []
    # notebook 06's own outputs, in order: one figure per save(), each with its alt text
    shown = [(b64, alt) for _, images, cell_alts in _cell_figures(json.loads(nb_path.read_text()))
             for b64, alt in zip(images, cell_alts)]
    done = folder / "done.json"
    window = None
    if done.exists():
        end = done.stat().st_mtime
        window = (end - float(_read_json(done).get("seconds") or 0) - 60, end + 5)
    (src / "figures").mkdir(parents=True, exist_ok=True)
    out = []
    for k, name in enumerate(names):
        png = next((Path(p) for p in m["figures"][name] if str(p).endswith(".png")), None)
        matched = len(shown) == len(names)
        alt = shown[k][1] if matched else name.replace("_", " ")
        target = src / "figures" / f"{name}.png"
        if png and png.exists() and (window is None or window[0] <= png.stat().st_mtime <= window[1]):
            shutil.copyfile(png, target)
        elif matched:
            target.write_bytes(_png(shown[k][0]))
        else:
            continue
        out.append((f"figures/{name}.png", name, alt))
    return out


def readme_commands() -> str:
    """The README's first ```bash block (its two commands), else the same two lines kept here."""
    readme = repo_root() / "README.md"
    if readme.exists():
        m = re.search(r"```bash\n(.*?)```", readme.read_text(), flags=re.S)
        if m:
            return m.group(1).rstrip()
    return COMMANDS


def headline_markdown(results: Path) -> str:
    """The readings ``python -m recinterp.report RESULTS --markdown`` prints (headline, contrast route,
    encoder comparison) as Markdown, with how many headline readings clear, then task 3's judged comparison
    rows; "" before notebooks 03-05 ran."""
    readings = (report.headline(report.load_runs(results), roles=("main", "contrast", "comparison"))
                + report.instantiation_headline(results))
    rows = [h for h in readings if h["role"] == "main"]
    if not readings:
        return ""
    verdict = (f"\n\n**{sum(h['clears'] for h in rows)} of {len(rows)} headline readings** (role `main`) clear their "
               f"controls ({' and '.join(report.MUST_CLEAR)}; task 3's fidelity: shuffled): the paired 95% CI of "
               "model − control lies above 0.")
    return markdown_headline(readings) + verdict + format_comparisons(report.comparison_headline(results), markdown=True)


def doc_pages() -> dict[str, Path]:
    """The docs/ pages of ``DOC_PAGES`` that this checkout has (none in an installed copy)."""
    docs = repo_root() / "docs"
    return {stem: docs / f"{stem}.md" for stem in DOC_PAGES if (docs / f"{stem}.md").is_file()}


def landing_page(results: Path, pages: list[Page], figs: list[tuple[str, str, str]],
                 docs: tuple[str, ...] = ()) -> str:
    presets = sorted({p.preset for p in pages if p.preset})
    llms = sorted({llm_label(p.llm) for p in pages if p.llm})
    seeds = sorted({str(p.seed) for p in pages if p.seed is not None})
    commits = sorted({p.commit for p in pages if p.commit})
    missing = [p.stem[:2] for p in pages if not p.commit]
    unrecorded = f" (not recorded for {', '.join(missing)})" if commits and missing else ""
    total = sum(float(p.seconds) for p in pages if p.seconds is not None)
    title = "recinterp: can a frozen LLM read a recommender's hidden states?"
    root = repo_root()
    shown = results.relative_to(root) if results.is_relative_to(root) else results  # results/cpu, as typed
    # no right-hand contents column on the landing page: the headline table needs the width
    md = ["---", "html_theme.sidebar_secondary.remove: true", "---", "", f"# {title}", "", QUESTION, "",
          f"This book shows one run of the notebooks, as papermill executed them in `{shown}/`: "
          f"preset **{', '.join(presets) or '?'}**, LLM **{', '.join(llms) or 'none'}**, seed **{', '.join(seeds) or '?'}**, "
          f"commit {', '.join(f'`{c}`' for c in commits) or 'not recorded'}{unrecorded}; the {len(pages)} notebooks ran in "
          f"**{_duration(total)}** in all.", ""]
    if "smoke" in presets:
        md += ["```{warning}", "SMOKE RUN — not a result. The smoke preset runs every notebook with a few steps and a "
               "handful of cases to check the plumbing; its numbers measure nothing. Build the book from "
               "`results/cpu` (`make reproduce`, then `make book`) to read the results.", "```", ""]
    md += ["## Run it yourself", "", "```bash", readme_commands(), "make book        # this book, from results/cpu",
           "```", ""]
    table = headline_markdown(results)
    md += ["## Headline readings", ""]
    if table:
        md += ["Generated from this run's metrics.json files by `recinterp.report`, as "
               f"`python -m recinterp.report {shown} --markdown` prints them. A reading counts as signal only "
               "where the paired 95% interval against its control excludes 0; `n` is the number of test cases.",
               "", "How to read a row: `model [95% CI]` is the LLM's reading (mean over the `n` cases, bootstrap "
               "interval); each control column gives the control's own value, then (model − control) with the paired "
               "95% interval on the same cases; `adapter alone` is what the adapter decodes before the LLM reads it "
               "(token-space route); `clears` says whether the interval lies above 0 for the controls named.",
               "", "```{rst-class} headline-table", "```", "", table, ""]
    else:
        md += ["Notebooks 03-05 have not written their metrics.json in this folder yet.", ""]
    if figs:
        md += ["## The paper's figures (notebook 06)", ""]
        for path, name, alt in figs:
            md += [f"```{{figure}} {path}", f":alt: {alt}", ":width: 100%", f":name: fig-{name}", "",
                   f"{alt}. File `{name}.png`, drawn by [notebook 06](06_figures.ipynb).", "```", ""]
    md += ["## The notebooks", ""]
    for p in pages:
        took = f"ran in {_duration(p.seconds)}" if p.seconds is not None else "run time not recorded"
        md.append(f"- [{p.stem[:2]} — {p.title}]({p.stem}.ipynb) ({took})")
    if docs:
        md += ["", "## Measurements", ""] + [f"- [{DOC_PAGES[d]}]({d}.md)" for d in docs]
    md += ["", "```{toctree}", ":hidden:", ":maxdepth: 1", "", *[p.stem for p in pages], *docs, "```", ""]
    return "\n".join(md)


# The browser asks every site for an icon; without one each page logs a 404 in the console.
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           'fill="#2b5797"/><text x="8" y="12.5" font-size="12" text-anchor="middle" fill="white" '
           'font-family="sans-serif">r</text></svg>')

CONF = '''# Written by recinterp.book: the Sphinx configuration of the book (no execution, no network).
project = {project!r}
author = "recinterp"
extensions = ["myst_nb"]
nb_execution_mode = "off"          # the notebooks are shown as papermill ran them
nb_merge_streams = True
myst_enable_extensions = ["colon_fence"]
html_theme = "sphinx_book_theme"
html_title = {project!r}
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_favicon = "_static/favicon.svg"
html_last_updated_fmt = None
html_context = {{"default_mode": "light"}}  # a fresh browser has no stored mode: name one (else a console error)
html_theme_options = {{
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
}}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
'''


def write_source(results: Path, src: Path) -> tuple[list[Page], dict[str, str]]:
    """The Sphinx source folder: conf.py, index.md, the prepared notebooks, the figures."""
    nbs = executed_notebooks(results)
    if not nbs:
        raise FileNotFoundError(f"no executed notebooks under {results} (expected <results>/NN_name/NN_name.ipynb): "
                                f"run `make reproduce` (or `python -m recinterp.reproduce --preset smoke`) first")
    if src.exists():
        shutil.rmtree(src)
    (src / "_static").mkdir(parents=True)
    write_text_atomic(src / "_static" / "book.css", CSS)
    write_text_atomic(src / "_static" / "favicon.svg", FAVICON)
    pages, alts = [], {}
    for p in nbs:
        page = describe(results, p)
        nb, a = prepare_notebook(json.loads(p.read_text()), page)
        alts.update(a)
        write_text_atomic(src / f"{p.stem}.ipynb", json.dumps(nb))
        pages.append(page)
    figs = figures_of_run(results, src)
    for path, _, alt in figs:
        alts[hashlib.sha256((src / path).read_bytes()).hexdigest()] = alt
    docs = doc_pages()
    for stem, path in docs.items():
        shutil.copyfile(path, src / f"{stem}.md")
    write_text_atomic(src / "index.md", landing_page(results, pages, figs, tuple(docs)))
    write_text_atomic(src / "conf.py", CONF.format(project=f"recinterp · {', '.join(sorted({p.preset or '?' for p in pages}))} run"))
    return pages, alts


_IMG = re.compile(r'<img\b[^>]*>')


def set_alts(html_dir: Path, alts: dict[str, str]) -> int:
    """Give each figure in the built pages its own alt text (Sphinx names output images by the
    SHA-256 of their bytes); returns how many <img> tags were set."""
    count = 0
    for page in html_dir.rglob("*.html"):
        text = page.read_text()

        def fix(m):
            nonlocal count
            tag = m.group(0)
            src = re.search(r'src="([^"]+)"', tag)
            if not src:
                return tag
            f = (page.parent / src.group(1)).resolve()
            alt = None
            if f.is_file():
                alt = alts.get(Path(f).stem) or alts.get(hashlib.sha256(f.read_bytes()).hexdigest())
            if alt is None:
                return tag
            count += 1
            tag = re.sub(r'\salt="[^"]*"', "", tag)
            return tag.replace("<img", f'<img alt="{html.escape(alt, quote=True)}"', 1)

        new = _IMG.sub(fix, text)
        if new != text:
            write_text_atomic(page, new)
    return count


def build_book(results: str | os.PathLike, out: str | os.PathLike | None = None, quiet: bool = True) -> Path:
    """Build the book of ``results`` into ``out`` (default ``<results>/book``); returns its index.html."""
    try:
        from sphinx.cmd.build import build_main
    except ImportError as e:
        raise ImportError("the book needs Sphinx, myst-nb and sphinx-book-theme: pip install -e '.[book]' "
                          "(make book installs them)") from e
    results = resolve(results)
    if not results.is_dir():
        raise FileNotFoundError(f"results folder {results} does not exist: run `make reproduce` first")
    out = resolve(out) if out else results / "book"
    # the old book is replaced whole: never a folder that holds anything else (the results, say)
    foreign = out.exists() and any(out.iterdir()) and not (out / "book.json").exists()
    if foreign or results.resolve().is_relative_to(out.resolve()):
        raise FileExistsError(f"{out} is not a book built by recinterp.book (no book.json) and would be replaced: "
                              "give an empty or new output folder")
    t0 = time.time()
    work = out.parent / f".{out.name}.build"
    src, tmp = work / "src", work / "html"
    pages, alts = write_source(results, src)
    if tmp.exists():
        shutil.rmtree(tmp)
    args = ["-b", "html", "-d", str(work / "doctrees"), "-j", "auto", str(src), str(tmp)]
    rc = build_main((["-q"] if quiet else []) + args)
    if rc:
        raise RuntimeError(f"sphinx-build failed (exit {rc}) on {src}; rerun with --verbose to see why")
    set_alts(tmp, alts)
    write_json_atomic(tmp / "book.json", {"results": str(results), "notebooks": [p.stem for p in pages],
                                          "built_seconds": round(time.time() - t0, 1), "built_at_commit": source_commit()})
    old = out.parent / f".{out.name}.old"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return out / "index.html"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recinterp.book", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", default="results/cpu", help="a results folder (default results/cpu)")
    ap.add_argument("out", nargs="?", default=None, help="where the HTML goes (default <results>/book)")
    ap.add_argument("--verbose", action="store_true", help="show Sphinx's output")
    a = ap.parse_args(argv)
    t0 = time.time()
    try:
        index = build_book(a.results, a.out, quiet=not a.verbose)
    except (FileNotFoundError, FileExistsError, ImportError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Book built in {time.time() - t0:.0f} s: {index}\nServe it locally: "
          f"python -m http.server --bind 127.0.0.1 --directory {index.parent} 8000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
