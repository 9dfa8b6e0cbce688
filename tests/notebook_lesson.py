"""What every notebook test checks of a notebook that teaches (issue 18): its Summary and its Exercises; and of a
notebook true to its run (issue 28): its run card, no figure written empty, alt text on every figure shown.

Read from what the run wrote: the Summary's points in metrics.json, the tagged cells of the executed
notebook (papermill's copy beside metrics.json).  Never the prose's wording.
"""
from __future__ import annotations

import json
import re
from pathlib import Path


def tagged(nb: dict, tag: str) -> list[dict]:
    return [c for c in nb["cells"] if tag in c.get("metadata", {}).get("tags", [])]


def numbered_items(markdown: str) -> list[str]:
    """The top-level numbered items ('1. ...') of a Markdown text."""
    return re.findall(r"^\d+\.\s+(.*)$", markdown, flags=re.M)


def check_summary_and_exercises(results: Path, name: str, metrics: dict, notebook: str | None = None) -> None:
    """metrics.json holds a Summary of at least two points, and the executed notebook has exactly one cell
    tagged ``summary`` (a code cell: its points are generated) and one tagged ``exercises`` with 3-5 items."""
    s = metrics.get("summary")
    assert isinstance(s, dict) and len(s.get("points", [])) >= 2, s
    if notebook is not None:
        assert s["notebook"] == notebook
    assert all(isinstance(p, str) and p.strip() for p in s["points"])
    nb = json.loads((results / name / f"{name}.ipynb").read_text())
    summary, exercises = tagged(nb, "summary"), tagged(nb, "exercises")
    assert len(summary) == 1 and summary[0]["cell_type"] == "code", [c["id"] for c in summary]
    assert len(exercises) == 1 and exercises[0]["cell_type"] == "markdown", [c["id"] for c in exercises]
    check_run_card(metrics)
    check_figures(results, name, metrics, nb)
    items = numbered_items("".join(exercises[0]["source"]))
    assert 3 <= len(items) <= 5, items
    # the summary cell ran and displayed the recorded points (an error would have stopped papermill before)
    shown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in summary[0].get("outputs", []))
    assert all(p in shown for p in s["points"]), "the summary cell does not show the recorded points"


def check_worked_case(results: Path, name: str, metrics: dict) -> None:
    """A task notebook's worked case (tasks 1-2): recorded in metrics.json (one window, each route's prompt with as
    many marked positions as soft tokens) and rendered by the one cell tagged ``worked-case``."""
    w = metrics["worked_case"]
    assert w["window"] and w["truth"] and 0 <= w["case"] < w["n"]
    assert len(w["routes"]) >= 1
    for r in w["routes"].values():
        assert r["prompt_slots"] == r["n_soft_tokens"] > 0 and 0 <= r["found"] <= len(w["truth"])
    nb = json.loads((results / name / f"{name}.ipynb").read_text())
    (cell,) = tagged(nb, "worked-case")
    assert any("text/markdown" in o.get("data", {}) for o in cell["outputs"]), "the worked case is not rendered"


def check_run_card(metrics: dict) -> None:
    """metrics.json's run card: every field (preset, purpose, CPU, cores, torch threads, device, seed, commit, time)
    present and non-empty, and the preset the one the run used."""
    from recinterp.lesson.card import CARD_FIELDS, check_card

    card = metrics.get("run_card")
    assert isinstance(card, dict) and check_card(card) == [], (card, check_card(card))
    assert set(CARD_FIELDS) <= set(card) and card["preset"] == metrics.get("preset", card["preset"])
    assert int(card["cores"]) >= 1 and int(card["torch_threads"]) >= 1 and "T" in card["time_utc"]


MIN_SIDE_PX = 150  # an "empty" figure (one line of text where a plot should be) was 120 px high
MIN_COLOURS = 16  # a plot has axes, lines or bars and antialiasing: far more than a few colours


def check_figures(results: Path, name: str, metrics: dict, nb: dict) -> None:
    """Every PNG the run wrote (under its folder, and the figures it lists in metrics.json) is a real figure (at least
    MIN_SIDE_PX on each side and MIN_COLOURS distinct colours), and every figure the executed notebook shows carries
    non-empty alt text."""
    from PIL import Image

    listed = [Path(p) for files in (metrics.get("figures") or {}).values() for p in files if str(p).endswith(".png")]
    pngs = sorted(set((results / name).rglob("*.png")) | set(listed))
    for p in pngs:
        assert p.exists(), p
        with Image.open(p) as im:
            w, h = im.size
            colours = im.convert("RGB").getcolors(maxcolors=MIN_COLOURS)  # None: more than MIN_COLOURS
        assert min(w, h) >= MIN_SIDE_PX, f"{p} is {w} x {h} px: a figure without data?"
        assert colours is None, f"{p} has {len(colours)} colours: a figure without data?"
    shown = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
             if "image/png" in o.get("data", {})]
    for o in shown:
        alt = o.get("metadata", {}).get("image/png", {}).get("alt", "")
        assert isinstance(alt, str) and alt.strip(), f"a figure of {name} is shown without alt text"
