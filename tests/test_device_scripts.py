"""bench/device_check.sh and bench/device_prep.sh: shell syntax, the GGUF's split / reassembly with its
SHA-256 check (on a small file), and the check's CPU dry run of the benchmark stage."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ["bench/device_check.sh", "bench/device_prep.sh", "bench/device_lib.sh"]


def bash(script: str, cwd=REPO, env=None, check=False) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, check=check)


def dry_run_env(tmp_path, **extra) -> dict:
    """The environment of a CPU dry run: output and work folders under tmp_path, this interpreter, no GPU."""
    return {"OUT": str(tmp_path / "out"), "DEVICE_CHECK_WORK": str(tmp_path / "work"), "PY": sys.executable,
            "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", **extra}


@pytest.mark.parametrize("path", SCRIPTS)
def test_shell_syntax(path):
    r = subprocess.run(["bash", "-n", str(REPO / path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_split_in_two_and_join_with_the_checksum(tmp_path):
    data = os.urandom(3000)
    src = tmp_path / "model.gguf"
    src.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    lib = REPO / "bench" / "device_lib.sh"
    bash(f". {lib}; split_in_two {src} {tmp_path}/p1 {tmp_path}/p2 2000", check=True)
    a, b = tmp_path / "p1" / "model.gguf.part-aa", tmp_path / "p2" / "model.gguf.part-ab"
    assert a.stat().st_size == 2000 and b.stat().st_size == 1000
    out = tmp_path / "joined" / "model.gguf"
    bash(f". {lib}; join_checked {out} {sha} {a} {b}", check=True)
    assert out.read_bytes() == data
    # a wrong checksum (or a corrupted part) leaves no file and says why
    out.unlink()
    r = bash(f". {lib}; join_checked {out} {'0' * 64} {a} {b}")
    assert r.returncode != 0 and "checksum mismatch" in r.stderr and not out.exists()
    r = bash(f". {lib}; join_checked {out} {sha} {a} {tmp_path}/missing")
    assert r.returncode != 0 and "missing part" in r.stderr
    # a file that does not split into exactly two parts is refused
    r = bash(f". {lib}; split_in_two {src} {tmp_path}/q1 {tmp_path}/q2 1000")
    assert r.returncode != 0 and "exactly two parts" in r.stderr


def test_the_known_gguf_checksum_is_the_one_in_the_library():
    from recinterp.llm import EMBEDDED_FILE

    r = bash(f". {REPO}/bench/device_lib.sh; echo $GGUF_NAME $GGUF_BYTES $GGUF_SHA256", check=True)
    name, size, sha = r.stdout.split()
    assert name == EMBEDDED_FILE and int(size) == 98_362_432 and len(sha) == 64


def test_device_check_refuses_an_unknown_stage(tmp_path):
    r = bash("bash bench/device_check.sh --dry-run --stages bench,gpu", env={"OUT": str(tmp_path)})
    assert r.returncode == 2 and "unknown stage gpu" in r.stderr


def test_device_check_dry_run_of_the_benchmark(tmp_path):
    env = dry_run_env(tmp_path)
    r = bash("bash bench/device_check.sh --dry-run --stages bench", env=env)
    out = tmp_path / "out"
    assert r.returncode == 0, (r.stdout[-2000:], (out / "log.txt").read_text()[-3000:] if (out / "log.txt").exists() else "")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] == 1 and summary["results"]["bench_tiny"]["status"] == "ok"
    bench = json.loads((out / "bench_tiny.json").read_text())
    assert [run["batch"] for run in bench["runs"]] == [2, 3] and bench["device"] == "cpu"
    assert {p.name for p in out.iterdir()} <= {"summary.json", "log.txt", "bench_tiny.json", "results.tar.gz"}


def test_device_check_dry_run_of_the_curve(tmp_path, llara_dir):
    """Stage (d): task 2's learning curve at tiny sizes (smoke preset, tiny LLM), its encoder trained on the
    spot, the CSV and figure copied beside the summary."""
    env = dry_run_env(tmp_path)
    r = bash("bash bench/device_check.sh --dry-run --stages curve", env=env)
    out = tmp_path / "out"
    assert r.returncode == 0, (r.stdout[-2000:], (out / "log.txt").read_text()[-3000:] if (out / "log.txt").exists() else "")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["curve"]["status"] == "ok"
    import pandas as pd

    df = pd.read_csv(out / "curve.csv")
    assert set(df.variant) == {"aligned", "linear", "conv_pool"} and sorted(set(df.steps_target)) == [0, 1, 2]
    assert (out / "curve.png").stat().st_size > 0
    assert set(df.device) == {"cpu"}  # each row names where it was measured (a GPU by name)
    assert "trained movielens/sasrec" in (out / "curve_log.txt").read_text()  # the curve's own log, beside the check's
    # what comes back from a lent machine: at most 8 files
    assert {p.name for p in out.iterdir()} <= {"summary.json", "log.txt", "curve.csv", "curve.png", "curve_log.txt",
                                               "results.tar.gz"}


def test_device_check_skips_the_curve_when_no_time_is_left(tmp_path):
    env = dry_run_env(tmp_path, DRY_CHECK_LIMIT_S="30")
    r = bash("bash bench/device_check.sh --dry-run --stages curve", env=env)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert r.returncode == 1 and summary["results"]["curve"]["status"].startswith("skipped")
