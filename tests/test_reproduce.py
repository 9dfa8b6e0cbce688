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
