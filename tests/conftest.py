"""Shared fixtures: the real-data folder and a papermill runner for notebook tests."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

# Unit tests use tiny tensors: one thread is faster than two fighting over a loaded 2-core machine.
# (Notebook tests run in their own kernels and are not affected.)
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


# Under pytest-xdist (make test) each worker gets one core: the notebooks' kernels inherit this and run on one
# thread, so the notebook worker and the unit-test worker never fight over the two cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks set here
def pytest_collection_modifyitems(config, items):
    """Browser tests last: the book test reuses the smoke notebooks the notebook tests ran before it.

    Notebook and browser tests form one xdist group ("notebooks"), so with ``-n`` they run in this order on one
    worker and share its session's smoke results folder (03-06 read 01/02's outputs). Notebook tests that run
    in a folder of their own (``SELF_CONTAINED``) form a second group, free to run beside the chain."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)  # stable: the rest keep their order
    for item in items:
        if item.get_closest_marker("notebook") or item.get_closest_marker("browser"):
            own = Path(str(item.fspath)).name in SELF_CONTAINED
            item.add_marker(pytest.mark.xdist_group("own_notebooks" if own else "notebooks"))


# notebook tests that use no smoke_results (their data, preset and results live in their own tmp_path)
SELF_CONTAINED = {"test_notebook_own_data.py"}


def _shared_data() -> Path | None:
    """The folder with the official LLaRA splits: RECINTERP_LLARA_DIR, else ../shared/data/llara."""
    env = os.environ.get("RECINTERP_LLARA_DIR")
    if env:
        return Path(env)
    guess = REPO.parent / "shared" / "data" / "llara"
    return guess if guess.is_dir() else None


@pytest.fixture(scope="session")
def llara_dir() -> Path:
    d = _shared_data()
    if d is None or not d.is_dir():
        pytest.skip("official LLaRA splits not found: set RECINTERP_LLARA_DIR (CI does) to run real-data tests")
    os.environ.setdefault("RECINTERP_LLARA_DIR", str(d))
    meta = d.parent / "steam_meta" / "steam_games.json.gz"
    if meta.exists():
        os.environ.setdefault("RECINTERP_STEAM_META", str(meta))
    return d


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory, llara_dir) -> Path:
    """One results folder shared by all notebook tests of a session, so 03-06 find 01/02's outputs."""
    return tmp_path_factory.mktemp("results_smoke")


def run_notebook(name: str, results: Path, **params) -> dict:
    """Execute notebooks/<name>.ipynb with the smoke preset; returns its metrics.json."""
    from recinterp.reproduce import run_notebook as _run

    nb = REPO / "notebooks" / f"{name}.ipynb"
    _run(nb, "smoke", results, force=True, log=lambda *a: None, extra_params=params)
    return json.loads((results / name / "metrics.json").read_text())

