"""The book (recinterp.book): its pieces on hand-made notebooks, then the smoke run's book read in Chromium."""
import base64
import json
import re
import struct
import zlib

import pytest

from conftest import run_notebook
from recinterp import book as B
from recinterp.metrics import format_ci

# -- hand-made pieces -------------------------------------------------------------------------


def _png(width: int = 3, height: int = 2) -> str:
    """A tiny valid RGB PNG, base64 as a notebook stores it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x80\x10\x10" * width for _ in range(height))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


def _code(src, outputs=(), tags=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": src, "outputs": list(outputs),
            "execution_count": 1}


def _md(src):
    return {"cell_type": "markdown", "metadata": {}, "source": src}


def _notebook():
    """An executed notebook as papermill leaves it: parameters, injected parameters, a figure, a long
    log, a progress-bar widget, a long code cell."""
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": _png(), "text/plain": "<Figure>"}}
    widget = {"output_type": "display_data", "metadata": {},
              "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2,
                                                                    "version_minor": 0},
                       "text/plain": "Fetching 1 files: 100%"}}
    log = {"output_type": "stream", "name": "stdout", "text": "".join(f"step {i} loss 1.0\n" for i in range(40))}
    cells = [
        _md("# 03 — Sequence recovery: a test page\n\nWhat it shows."),
        _code('preset = "cpu"\nseed = 0\nllm = ""\n', tags=["parameters"]),
        _code('# Parameters\npreset = "smoke"\nseed = 3\n', tags=["injected-parameters"]),
        _md("## 2. Lengths"),
        _code('import seaborn as sns\ng = sns.displot(df, x="length", col="dataset")\n'
              'g.figure.suptitle("Sequence lengths per dataset")\nplt.show()\n', [image]),
        _code("\n".join(f"x{i} = {i}" for i in range(30)), [log, widget]),
    ]
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"},
                                         "widgets": {"state": {}},
                                         "papermill": {"duration": 12.5, "start_time": "2026-11-30T10:00:00.1"}},
            "nbformat": 4, "nbformat_minor": 5}


def _results(tmp_path):
    res = tmp_path / "results_smoke"
    d = res / "03_sequence_recovery"
    d.mkdir(parents=True)
    (d / "03_sequence_recovery.ipynb").write_text(json.dumps(_notebook()))
    (d / "metrics.json").write_text(json.dumps({"preset": "smoke", "llm": {"name": "embedded", "hidden_size": 576}}))
    (d / "done.json").write_text(json.dumps({"seconds": 95.0, "commit": "abc1234", "preset": "smoke"}))
    unfinished = res / "04_sequence_residual"  # no metrics.json: not in the book
    unfinished.mkdir()
    (unfinished / "04_sequence_residual.ipynb").write_text(json.dumps(_notebook()))
    return res


def test_parameters_are_the_injected_ones_over_the_defaults():
    assert B.notebook_params(_notebook()) == {"preset": "smoke", "seed": 3, "llm": ""}


def test_figure_alt_names_the_title_and_the_axes():
    src = ('fig, ax = plt.subplots()\nax.set(xlabel="item rank", ylabel="interactions")\n'
           'fig.suptitle("Long tail of item popularity")\n')
    assert B.figure_alts(src, 1, "4. Popularity", {}) == ["Long tail of item popularity: interactions against item rank"]
    # no title: the section it sits in, and what is on the axes
    assert B.figure_alts('sns.displot(df, x="length", hue="split")', 2, "3. Lengths", {}) == \
        ["3. Lengths: length, by split"] * 2
    # one figure per save(...) call (notebook 06): each its own title, from the recinterp function it calls
    src = 'save(F.plot_recovery_hist(h), "recovery_distribution")\nsave(F.plot_probe(p, title="Probe vs controls"), "probe")'
    alts = B.figure_alts(src, 2, "2. Task 1", {"F": "recinterp.figures"})
    assert alts[1] == "Probe vs controls: figure 'probe'"
    assert alts[0].endswith("figure 'recovery distribution'") and "recovered titles" in alts[0]


def test_a_figure_the_notebook_gave_alt_text_keeps_it():
    png = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}, "metadata": {}}
    own = {**png, "metadata": {"image/png": {"alt": "Share of windows by history length"}}}
    cell = {"cell_type": "code", "source": 'sns.displot(df, x="length", hue="split")', "outputs": [own, png]}
    nb = {"cells": [{"cell_type": "markdown", "source": "## 3. Lengths"}, cell]}
    (_, images, alts), = [f for f in B._cell_figures(nb) if f[1]]
    assert len(images) == 2 and alts == ["Share of windows by history length", "3. Lengths: length, by split"]


def test_generated_answers_stay_in_their_code_span():
    md = "- truth: A; B\n  - answer: `The list:\n1. A\n2. B`\n  - shuffled control: `C`"
    assert B.one_line_code_spans(md) == "- truth: A; B\n  - answer: `The list: ↵ 1. A ↵ 2. B`\n  - shuffled control: `C`"
    assert B.one_line_code_spans("`x` then\n- `y`") == "`x` then\n- `y`"  # a break between spans stays
    assert B.one_line_code_spans("```\ncode\n```") == "```\ncode\n```"  # fenced blocks are left alone


def test_prepare_notebook_folds_long_parts_and_keeps_parameters(tmp_path):
    page = B.describe(_results(tmp_path), tmp_path / "results_smoke/03_sequence_recovery/03_sequence_recovery.ipynb")
    assert (page.preset, page.llm, page.seed, page.commit, page.seconds) == ("smoke", "embedded", 3, "abc1234", 95.0)
    nb, alts = B.prepare_notebook(_notebook(), page)
    tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
    assert "hide-input" not in tags[2] and "hide-input" not in tags[3]  # parameters cells shown
    assert "hide-input" in tags[-1] and "hide-output" in tags[-1]  # 30 lines of code, a 40-line log
    assert "widgets" not in nb["metadata"]
    assert [o["output_type"] for o in nb["cells"][-1]["outputs"]] == ["stream"]  # the progress-bar widget is gone
    assert list(alts.values()) == ["Sequence lengths per dataset: length, by dataset"]
    card = "".join(nb["cells"][0]["source"])
    assert card.startswith("# 03 — Sequence recovery: a test page\n") and "What it shows." in card
    assert "`smoke`" in card and "`embedded (SmolLM2-135M-Instruct)`" in card and "`3`" in card and "abc1234" in card and "1.6 min" in card
    assert "SMOKE RUN" in card


def test_build_book_offline_with_alts(tmp_path):
    pytest.importorskip("myst_nb", reason="the book extra is not installed (pip install -e '.[book]')")
    index = B.build_book(_results(tmp_path), tmp_path / "book")
    out = index.parent
    assert index.exists() and (out / "03_sequence_recovery.html").exists()
    assert not (out / "04_sequence_residual.html").exists()  # unfinished: left out
    page = (out / "03_sequence_recovery.html").read_text()
    assert 'alt="Sequence lengths per dataset: length, by dataset"' in page
    assert "abc1234" in page and "Produced by" in page
    landing = index.read_text()
    assert 'href="03_sequence_recovery.html"' in landing and "make reproduce" in re.sub(r"<[^>]+>", "", landing)
    for html in out.glob("*.html"):  # nothing to fetch from the network
        assert not re.search(r'(src|href)="(https?:)?//', html.read_text()), html
    assert json.loads((out / "book.json").read_text())["notebooks"] == ["03_sequence_recovery"]
    assert not (tmp_path / ".book.build").exists()
    # the repository's measurement log is a page of its own, linked from the landing page
    assert set(B.doc_pages()) == {"measurements"}
    assert 'href="measurements.html"' in landing
    log = re.sub(r"<[^>]+>", "", (out / "measurements.html").read_text())
    assert "Measured on:" in log and "Headline readings" in log


def test_build_book_never_replaces_a_folder_that_is_not_a_book(tmp_path):
    res = _results(tmp_path)
    for out in (res, tmp_path):  # the results folder itself, a folder above it
        with pytest.raises(FileExistsError, match="not a book"):
            B.build_book(res, out)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="empty or new"):
        B.build_book(res, tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine" and (res / "03_sequence_recovery").is_dir()


def test_build_book_says_what_is_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="make reproduce"):
        B.build_book(tmp_path / "empty", tmp_path / "book")
    assert B.main([str(tmp_path / "nowhere")]) == 2


# -- the smoke run's book in a real browser ----------------------------------------------------------
SMOKE = ("01_data_prep", "02_recommenders", "03_sequence_recovery", "04_sequence_residual",
         "05_ideal_item_instantiation", "06_figures")


@pytest.mark.browser
@pytest.mark.notebook
def test_smoke_book_in_chromium(smoke_results, tmp_path):
    from browser_check import check_book, chromium_missing
    from recinterp import report

    why = chromium_missing()
    if why:
        pytest.skip(why)
    pytest.importorskip("myst_nb", reason="the book extra is not installed (pip install -e '.[book]')")
    for name in SMOKE:  # what the notebook tests of this session ran is reused (conftest runs this test last)
        if not (smoke_results / name / "metrics.json").exists():
            extra = {"figures_dir": str(smoke_results / "figures")} if name == "06_figures" else {}
            run_notebook(name, smoke_results, **extra)
    book = tmp_path / "book"
    B.build_book(smoke_results, book)
    found = check_book(book, tmp_path / "book_screenshots")

    assert {"index.html", *(f"{n}.html" for n in SMOKE)} <= set(found["pages"]), found["pages"]
    for problem in ("console_errors", "page_errors", "failed_requests", "offsite_requests", "bad_status",
                    "broken_links", "empty_images", "images_without_alt", "pages_without_run_card",
                    "pages_wider_than_window"):
        assert not found[problem], f"{problem}: {found[problem]}"
    assert found["images"] >= 5  # notebook 06's figures on the landing page at least
    # the landing page shows the headline table, with this run's numbers in it
    assert len(found["headline_tables"]) == 1, found["headline_tables"]
    table = found["headline_tables"][0]
    rows = [h for h in report.headline(report.load_runs(smoke_results)) if h["role"] == "main"]
    assert rows and all(format_ci(h["model"]) in table for h in rows), table[:2000]
    assert re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", table)
    for shot in ("landing.png", "03_sequence_recovery.png"):
        assert (tmp_path / "book_screenshots" / shot).stat().st_size > 20_000, shot
