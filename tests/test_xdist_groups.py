"""make test runs under pytest-xdist with --dist loadgroup: the notebook tests must all land on one worker
(they share that worker's smoke results folder, 03-06 reading 01/02's outputs). This runs a toy suite through
the project's own collection hook and checks where each test ran."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CONFTEST = f'''
import importlib.util
spec = importlib.util.spec_from_file_location("project_conftest", {str(REPO / "tests" / "conftest.py")!r})
project = importlib.util.module_from_spec(spec)
spec.loader.exec_module(project)
pytest_collection_modifyitems = project.pytest_collection_modifyitems
'''

TESTS = '''
import os, time
import pytest

def log(name):
    time.sleep(0.3)  # long enough that both workers take tests
    with open("where.log", "a") as f:
        f.write(f"{{name}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")

{tests}
'''


def test_notebook_tests_share_one_worker_and_unit_tests_spread(tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    notebook: x\n    browser: x\n")
    notebooks = "\n".join(f"@pytest.mark.notebook\ndef test_nb{i}(): log('nb{i}')\n" for i in range(4))
    units = "\n".join(f"def test_unit{i}(): log('unit{i}')\n" for i in range(6))
    (tmp_path / "test_toy.py").write_text(TESTS.format(tests=notebooks + units))
    r = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    where = dict(line.split() for line in (tmp_path / "where.log").read_text().splitlines())
    assert len(where) == 10
    nb_workers = {w for t, w in where.items() if t.startswith("nb")}
    assert len(nb_workers) == 1, f"the notebook tests ran on {sorted(nb_workers)}: xdist grouped nothing ({where})"
    assert {w for t, w in where.items() if t.startswith("unit")} - nb_workers, "no unit test ran beside the notebooks"
