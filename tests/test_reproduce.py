"""The papermill runner's own logic (no notebook is executed here)."""
import json

import pytest

from recinterp import reproduce


def test_declared_parameters_and_fingerprint(tmp_path):
    nb = tmp_path / "01_x.ipynb"
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ['preset = "cpu"\n', "# c = 1\n", "seed = 0\n"],
            "outputs": [], "execution_count": None}
    nb.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert reproduce.declared_parameters(nb) == {"preset", "seed"}
    a = reproduce.fingerprint(nb, "smoke")
    assert a == reproduce.fingerprint(nb, "smoke") != reproduce.fingerprint(nb, "cpu")
    assert a != reproduce.fingerprint(nb, "smoke", {"llm": "x"})
    assert a != reproduce.fingerprint(nb, "smoke", upstream="changed")
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        reproduce.declared_parameters(nb)


def test_unknown_preset_fails_fast():
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        reproduce.main(["--preset", "nope"])


def test_upstream_fingerprint_reads_the_previous_notebook(tmp_path):
    (tmp_path / "02_recommenders").mkdir()
    (tmp_path / "02_recommenders" / "done.json").write_text(json.dumps({"fingerprint": "abc"}))
    assert reproduce.upstream_fingerprint(tmp_path / "03_sequence_recovery.ipynb", tmp_path) == "abc"
    assert reproduce.upstream_fingerprint(tmp_path / "02_recommenders.ipynb", tmp_path) == ""


def test_one_map_from_notebooks_to_preset_sections():
    from recinterp.config import NOTEBOOKS, load_preset, section_of

    stems = [p.stem for p in reproduce.notebooks()]
    assert stems == list(NOTEBOOKS.values())  # every numbered notebook, in order, and nothing else
    assert [section_of(s + ".ipynb") for s in stems] == list(NOTEBOOKS)
    assert set(NOTEBOOKS) == set(load_preset("smoke")) and section_of("99_extra.ipynb") is None


def test_source_commit_names_the_checkout(tmp_path, monkeypatch):
    """done.json records the commit a notebook ran at (the book's page headers show it)."""
    import subprocess
    from pathlib import Path

    from recinterp.reproduce import source_commit

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()
    commit = source_commit()
    assert commit and commit.split("+")[0] == head and commit in (head, head + "+dirty")
    monkeypatch.setattr("recinterp.reproduce.repo_root", lambda: tmp_path)  # not a git checkout
    assert source_commit() is None


def _nb(tmp_path, cells):
    path = tmp_path / "07_demo.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                              "display_name": "Python 3"}},
                                "nbformat": 4, "nbformat_minor": 5}))
    return path


def _code(src, tags=()):
    return {"cell_type": "code", "id": f"c{abs(hash(src)) % 10**8}", "metadata": {"tags": list(tags)}, "source": src,
            "outputs": [], "execution_count": None}


def _md(src):
    return {"cell_type": "markdown", "id": f"m{abs(hash(src)) % 10**8}", "metadata": {}, "source": src}


def test_cell_progress_counts_code_cells_and_names_the_section():
    cells = [_md("# Title\n"), _code("a = 1"), _md("some text\n## 2. Train\nmore"), _code("b = 2"), _code("c = 3")]
    lines, now = [], [0.0]
    p = reproduce.CellProgress("03_x", cells, lines.append, long_cell=20.0, clock=lambda: now[0])
    p.start(0)  # a markdown cell: nothing to report
    p.start(1); now[0] = 5.0; p.end(1)          # short: no end line
    p.start(3); now[0] = 95.0; p.end(3)         # long: an end line with its duration
    p.start(4)
    assert lines == ["       03_x: cell 1/3 at 0s  Title",
                     "       03_x: cell 2/3 at 5s  2. Train",
                     "       03_x: cell 2 took 1m30s",
                     "       03_x: cell 3/3 at 1m35s  2. Train"]


def test_time_table_marks_skipped_notebooks():
    t = reproduce.time_table({"01_a.ipynb": 4.2, "02_b.ipynb": 463.0}, {"01_a.ipynb": False, "02_b.ipynb": True})
    assert t.splitlines()[2:] == ["| 01_a | 4s | finished earlier |", "| 02_b | 7m43s | ran now |"]


def test_run_notebook_reports_each_cell_while_it_runs(tmp_path):
    """A real papermill run of a two-cell notebook: one progress line per code cell, parameters cell included."""
    nb = _nb(tmp_path, [_code('preset = "x"\noutput_dir = ""\n', tags=["parameters"]), _md("## Work\n"),
                        _code("import json, pathlib\npathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n"
                              "(pathlib.Path(output_dir) / 'metrics.json').write_text(json.dumps({'ok': preset}))\n")])
    lines = []
    info = reproduce.run_notebook(nb, "smoke", tmp_path / "res", log=lines.append)
    assert json.loads((tmp_path / "res" / "07_demo" / "metrics.json").read_text()) == {"ok": "smoke"}
    progress = [line for line in lines if ": cell " in line]
    # the declared parameters cell, papermill's injected one, and the work cell
    assert [line.split(" at ")[0].strip() for line in progress] == ["07_demo: cell 1/3", "07_demo: cell 2/3",
                                                                    "07_demo: cell 3/3"]
    assert progress[-1].endswith("Work") and info["seconds"] >= 0 and info["ran"]
    again = reproduce.run_notebook(nb, "smoke", tmp_path / "res", log=lines.append)  # the same: skipped
    assert not again["ran"] and again["seconds"] == info["seconds"] and lines[-1].startswith("[skip]")
    assert "ran" not in json.loads((tmp_path / "res" / "07_demo" / "done.json").read_text())  # not in the stamp
