"""Issue 29: nothing stale, nothing half-written.  Each test failed before its fix.

Checksums tied to their file's name; every JSON, checkpoint and model folder read names its file;
timestamps that name the real problem; duplicate titles; did-you-mean for LLM names; notebooks
renamed into place only when complete; caches and adapters tied to the encoder weights they were
made from; figures under their run's results folder, and a lock on it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
import shutil

import pytest
import torch

from recinterp.data import ChecksumError, load_dataset
from recinterp.data import checksums
from synthetic_data import make_llara_folder, write_sha256sums


@pytest.fixture(autouse=True)
def _no_trust_from_env(monkeypatch):
    for v in ("RECINTERP_TRUST_UNVERIFIED", "RECINTERP_SHA256SUMS"):
        monkeypatch.delenv(v, raising=False)


# -- 1. checksums matched by file name ----------------------------------------------------------
@pytest.fixture
def llara(tmp_path):
    return make_llara_folder(tmp_path / "src" / "tinyllara")


def test_a_split_copied_over_another_is_refused_though_its_hash_is_listed(llara, tmp_path):
    sums = write_sha256sums(llara)
    shutil.copy(llara / "Test_data.df", llara / "Val_data.df")
    with pytest.raises(ChecksumError, match=r"Val_data.df.*the hash given for it is"):
        load_dataset(llara, data_dir=tmp_path / "data", hashes=sums)


def test_a_released_split_copied_over_another_is_refused(llara, tmp_path, monkeypatch):
    released = {f"tiny/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in llara.glob("*.df")}
    monkeypatch.setattr(checksums, "LLARA_SHA256", released)
    assert load_dataset(llara, data_dir=tmp_path / "data").n_items == 40  # released files by their names
    shutil.copy(llara / "Test_data.df", llara / "Val_data.df")
    with pytest.raises(ChecksumError, match=r"Val_data.df holds the released LLaRA file tiny/Test_data.df"):
        load_dataset(llara, data_dir=tmp_path / "data", refresh=True)


@pytest.mark.parametrize("digest, problem", [("0" * 64, "all zeros"), ("12ab", "not 64 hex digits")])
def test_a_bad_hash_line_is_an_error_naming_the_file(llara, tmp_path, digest, problem):
    sums = write_sha256sums(llara)
    lines = sums.read_text().splitlines()
    lines = [f"{digest}  Val_data.df" if ln.endswith("Val_data.df") else ln for ln in lines]
    sums.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"SHA256SUMS:\d+: the hash given for Val_data.df is {problem}"):
        load_dataset(llara, data_dir=tmp_path / "data", hashes=sums)
    with pytest.raises(ValueError, match=rf"the hash given for Val_data.df is {problem}"):
        load_dataset(llara, data_dir=tmp_path / "data", hashes={"Val_data.df": digest})


def test_a_released_file_missing_from_the_given_sums_is_an_error(llara, tmp_path, monkeypatch):
    released = {f"tiny/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in llara.glob("*.df")}
    monkeypatch.setattr(checksums, "LLARA_SHA256", released)
    sums = write_sha256sums(llara)
    sums.write_text("".join(ln + "\n" for ln in sums.read_text().splitlines() if not ln.endswith("Val_data.df")))
    with pytest.raises(ChecksumError, match=r"Val_data.df is not listed in the hashes you gave"):
        load_dataset(llara, data_dir=tmp_path / "data", hashes=sums)


# -- 2. every JSON, checkpoint and model-folder read names its file and the fix ------------------
def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_a_truncated_done_json_names_the_file_and_the_fix(tmp_path):
    from recinterp import reproduce
    from recinterp.config import IntegrityError
    nb = reproduce.notebooks(["01"])[0]
    (tmp_path / nb.stem).mkdir()
    (tmp_path / nb.stem / "done.json").write_text('{"fingerprint": "ab')
    with pytest.raises(IntegrityError, match=rf"{nb.stem}/done.json is not valid JSON.*To fix: rerun {nb.stem}.*--only 01"):
        reproduce.run_notebook(nb, "smoke", tmp_path)


def test_a_truncated_metrics_json_names_the_file_and_the_fix(tmp_path):
    from recinterp import figures, report
    from recinterp.config import IntegrityError, NOTEBOOKS
    (tmp_path / NOTEBOOKS["recovery"]).mkdir()
    (tmp_path / NOTEBOOKS["recovery"] / "metrics.json").write_text('{"runs": [{"task": ')
    with pytest.raises(IntegrityError, match=r"03_sequence_recovery/metrics.json is not valid JSON.*--only 03"):
        report.load_runs(tmp_path)
    with pytest.raises(IntegrityError, match=r"03_sequence_recovery/metrics.json is not valid JSON"):
        figures.load_all_metrics(tmp_path)


def test_a_truncated_training_state_without_its_sums_names_the_file(tmp_path):
    import torch
    from recinterp.config import IntegrityError
    from recinterp.train_adapter import STATE, load_train_state
    torch.save({"step": 3, "opt": {"w": torch.zeros(100)}}, tmp_path / STATE)
    _truncate(tmp_path / STATE)
    with pytest.warns(UserWarning, match="no SHA256SUMS"), \
            pytest.raises(IntegrityError, match=rf"{STATE} cannot be read.*To fix: delete {tmp_path}"):
        load_train_state(tmp_path)


def test_a_model_folder_with_only_a_config_says_what_it_lacks(tmp_path):
    from recinterp.llm import load_llm, tiny_llm
    tiny_llm().model.config.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"not a whole model folder: it lacks the weights.*and the tokenizer"):
        load_llm(str(tmp_path), device="cpu")


# -- 3. log timestamps: the real problem named; Parquet nulls counted as in CSV -------------------
def _shop(folder, rows: list[tuple]):
    folder.mkdir(parents=True)
    (folder / "interactions.csv").write_text("user,item,timestamp\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    (folder / "items.csv").write_text("item,title\ni0,Zero\ni1,One\ni2,Two\n")
    return folder


def _rows(stamps):
    """Four users, three items each, with the given timestamps in turn."""
    return [(f"u{u}", f"i{i}", stamps[(3 * u + i) % len(stamps)]) for u in range(4) for i in range(3)]


@pytest.mark.parametrize("stamps, problem", [
    (["2020-01-02", "2020-01-03", "02/01/2020"], r"mixes date formats \(line 2: '2020-01-02'; line 4: '02/01/2020'\)"),
    (["2020-01-02T10:00:00+01:00", "2020-01-02T11:00:00"],
     r"mixes times with a time zone \(line 2: '2020-01-02T10:00:00\+01:00'\) and without one \(line 3: "),
    ([1600000000, 1600000001000], r"mixes units: line 2: '1600000000' looks like seconds .*line 3: '1600000001000' "
                                  r"like milliseconds"),
])
def test_timestamps_name_the_real_problem(tmp_path, stamps, problem):
    folder = _shop(tmp_path / "shop", _rows(stamps))
    with pytest.raises(ValueError, match=rf"interactions.csv: the timestamp column {problem}"):
        load_dataset(folder, data_dir=tmp_path / "data")


def test_a_bad_date_is_named_on_its_own_line_not_the_first(tmp_path):
    rows = _rows(["2020-01-02", "2020-01-03"])
    rows[4] = ("u1", "i1", "soon")
    with pytest.raises(ValueError, match=r"interactions.csv line 6 \(data row 4\): timestamp 'soon' is not a number"):
        load_dataset(_shop(tmp_path / "shop", rows), data_dir=tmp_path / "data")


def test_dates_in_different_zones_are_ordered_in_utc(tmp_path):
    rows = [("u0", "i0", "2020-01-02T10:00:00+02:00"), ("u0", "i1", "2020-01-02T09:30:00Z")] \
        + [(f"u{u}", f"i{i}", f"2020-01-0{i + 3}T00:00:00+01:00") for u in range(1, 4) for i in range(3)]
    ds = load_dataset(_shop(tmp_path / "shop", rows), data_dir=tmp_path / "data")
    from recinterp.data import load_stats
    assert load_stats(ds.name, tmp_path / "data")["users_not_in_time_order"] == 0  # 08:00Z, then 09:30Z


def test_parquet_nulls_are_dropped_and_counted_as_in_csv(tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd
    from recinterp.data import load_stats
    csv = _shop(tmp_path / "csvshop", [(u, i, t) for u, i, t in _rows([10, 20, 30])] + [(7, "i0", 40), ("", "i1", 50),
                                                                                       (5, "", 60), (6, "i2", "")])
    users = [int(u[1:]) for u, _, _ in _rows([0])] + [7, None, 5, 6]
    items = [i for _, i, _ in _rows([0])] + ["i0", None, None, "i2"]
    stamps = pd.to_datetime([10, 20, 30] * 4 + [40, 50, 60, None], unit="s", utc=True)
    (csv / "interactions.csv").write_text("user,item,timestamp\n" + "".join(
        f"{'' if u is None else u},{'' if i is None else i},{'' if pd.isna(t) else t.isoformat()}\n"
        for u, i, t in zip(users, items, stamps)))
    pq = tmp_path / "pqshop"
    pq.mkdir()
    pd.DataFrame({"user": pd.array(users, dtype="Int64"), "item": items, "timestamp": stamps}).to_parquet(
        pq / "interactions.parquet")
    shutil.copy(csv / "items.csv", pq / "items.csv")
    a, b = load_dataset(csv, data_dir=tmp_path / "data"), load_dataset(pq, data_dir=tmp_path / "data")
    sa, sb = load_stats("csvshop", tmp_path / "data"), load_stats("pqshop", tmp_path / "data")
    assert sa["missing_field"] == 3 and sb["missing_field"] == sa["missing_field"]
    assert sb["interactions_kept"] == sa["interactions_kept"]
    assert torch.equal(a.train.seqs, b.train.seqs) and a.catalogue.titles == b.catalogue.titles


# -- 4. duplicate titles: counted, and an ambiguous title is an error listing its ids -------------
def test_duplicate_titles_are_counted_in_the_notes(llara, tmp_path):
    from recinterp.data import load_stats
    lines = (llara / "id2name.txt").read_text(encoding="utf-8").splitlines()
    lines[5] = f"5::{lines[3].split('::', 1)[1]}"  # items 3 and 5 share a title
    (llara / "id2name.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = load_dataset(llara, data_dir=tmp_path / "data", hashes=write_sha256sums(llara))
    assert load_stats("tinyllara", tmp_path / "data")["duplicate_titles"] == 1
    assert any(n.startswith("Duplicate titles: 1 titles are shared by 2 items") and "[3, 5]" in n for n in ds.notes)


def test_an_ambiguous_title_is_an_error_listing_its_ids():
    from recinterp.adapter import build_adapter
    from recinterp.data.titles import normalize_title
    from recinterp.data.types import Catalogue
    from recinterp.llm import tiny_llm
    from recinterp.models import build_encoder
    from recinterp.trained import TrainedInterpreter
    titles = ["Cape Fear (1962)", "Heat (1995)", "Cape Fear (1991)", "Fargo (1996)"]
    cat = Catalogue(titles, [normalize_title(t) for t in titles])
    assert cat.id_of("cape fear (1991)") == 2 and cat.id_of("Heat") == 1 and cat.id_of("Alien") is None
    with pytest.raises(ValueError, match=r"title 'Cape Fear' is ambiguous: items \[0, 2\] share it"):
        cat.id_of("Cape Fear")
    llm = tiny_llm()
    adapter = build_adapter(kind="linear", d_in=16, d_llm=llm.hidden_size, n_tokens=1, input="pair", task="residual")
    ri = TrainedInterpreter(llm, adapter, build_encoder("sasrec", 4, d=8), cat.norm_titles, "films", catalogue=cat)
    assert ri.item_ids(["Cape Fear (1962)", "Fargo"]) == [0, 3]
    with pytest.raises(ValueError, match=r"ambiguous: items \[0, 2\]"):
        ri.item_ids(["Cape Fear", "Heat"])
    plain = TrainedInterpreter(llm, adapter, build_encoder("sasrec", 4, d=8), cat.norm_titles, "films")
    with pytest.raises(ValueError, match=r"ambiguous: items \[0, 2\]"):
        plain.item_ids(["Cape Fear"])


# -- 5. did-you-mean for names close to the built-in LLMs -----------------------------------------
@pytest.mark.parametrize("name, meant", [("embeded", "embedded"), ("Embedded", "embedded"), ("tiyn", "tiny")])
def test_a_name_close_to_a_built_in_llm_says_did_you_mean(name, meant, monkeypatch, tmp_path):
    from recinterp.llm import load_llm
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never a network probe: the answer must not depend on it
    with pytest.raises(ValueError, match=rf"unknown LLM '{name}': did you mean '{meant}'\?"):
        load_llm(name, device="cpu")


# -- 6. notebooks renamed into place only when complete; done.json removed before a rerun ---------
def _demo_notebook(tmp_path):
    """07_demo.ipynb: writes metrics.json, then stops with an error while the file ``stop`` exists."""
    import json

    def code(src, tags=()):
        return {"cell_type": "code", "id": f"c{abs(hash(src)) % 10**8}", "metadata": {"tags": list(tags)},
                "source": src, "outputs": [], "execution_count": None}
    cells = [code('preset = "x"\noutput_dir = ""\n', tags=["parameters"]),
             code("import json, pathlib\npathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n"
                  "(pathlib.Path(output_dir) / 'metrics.json').write_text(json.dumps({'ok': preset}))\n"),
             code(f"if pathlib.Path({str(tmp_path / 'stop')!r}).exists():\n    raise KeyboardInterrupt('stopped')\n"),
             code("print('the last cell')\n")]
    path = tmp_path / "07_demo.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                              "display_name": "Python 3"}},
                                "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_an_interrupted_forced_rerun_keeps_the_complete_notebook_and_reruns_next_time(tmp_path):
    from recinterp import reproduce
    nb, res = _demo_notebook(tmp_path), tmp_path / "res"
    assert reproduce.run_notebook(nb, "smoke", res, log=lambda *a: None)["ran"]
    executed = res / "07_demo" / "07_demo.ipynb"
    complete = executed.read_bytes()
    (tmp_path / "stop").touch()
    lines = []
    with pytest.raises(Exception, match="stopped"):
        reproduce.run_notebook(nb, "smoke", res, force=True, log=lines.append)
    assert executed.read_bytes() == complete  # the complete notebook stays in place
    assert not (res / "07_demo" / "done.json").exists()
    assert any(line.startswith("[fail] 07_demo.ipynb") and "kept" in line for line in lines)
    (tmp_path / "stop").unlink()
    again = reproduce.run_notebook(nb, "smoke", res, log=lines.append)  # a plain rerun: runs, not "finished earlier"
    assert again["ran"] and (res / "07_demo" / "done.json").exists()
    assert not (res / "07_demo" / ".07_demo.partial.ipynb").exists() and "the last cell" in executed.read_text()


# -- 7. caches and adapters tied to the encoder weights (and the LLM) they were made from ---------
N = 12
TITLES = [f"{chr(65 + i)}{chr(122 - i)} film" for i in range(N)]


def _world(seed):
    from recinterp.data.types import Catalogue, RecDataset, Split
    from recinterp.models import build_encoder
    torch.manual_seed(seed)
    enc = build_encoder("sasrec", N, d=8).eval()
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([5, 3, 2, 5, 4, 6])
    seqs = torch.full((len(lens), 10), N)
    for i, n in enumerate(lens):
        seqs[i, :n] = torch.randperm(N, generator=g)[:n]
    split = Split(seqs, lens, torch.zeros(len(lens), dtype=torch.long))
    return enc, RecDataset("movielens", N, split, split, split, Catalogue(TITLES, TITLES))


def test_cached_cases_of_a_retrained_encoder_are_rebuilt(tmp_path, capsys):
    from recinterp.tasks import build_cases
    (enc_a, ds), (enc_b, _) = _world(0), _world(1)
    a = build_cases("residual", enc_a, ds, "test", "pair", cache_dir=tmp_path / "cases")
    b = build_cases("residual", enc_b, ds, "test", "pair", cache_dir=tmp_path / "cases")  # same name and config
    fresh = build_cases("residual", enc_b, ds, "test", "pair")
    assert not torch.equal(a.features, fresh.features) and torch.equal(b.features, fresh.features)
    assert "rebuilding the cases" in capsys.readouterr().out


def test_an_aligner_of_a_retrained_encoder_or_another_llm_is_refitted(tmp_path):
    from recinterp.config import state_sha256
    from recinterp.llm import tiny_llm
    from recinterp.tasks.aligned import catalogue_aligner
    (enc_a, ds), (enc_b, _) = _world(0), _world(1)
    llm = tiny_llm()
    catalogue_aligner(enc_a, ds, llm, tmp_path, {"k": 4, "hidden": 32})
    with pytest.warns(UserWarning, match="refitting it"):
        aligner, fit = catalogue_aligner(enc_b, ds, llm, tmp_path, {"k": 4, "hidden": 32})
    assert fit["settings"]["encoder_sha256"] == aligner.cfg.encoder_sha256 == state_sha256(enc_b)
    llm.name = "another"
    with pytest.warns(UserWarning, match="refitting it"):
        catalogue_aligner(enc_b, ds, llm, tmp_path, {"k": 4, "hidden": 32})


def test_overwritten_adapter_weights_are_caught_without_the_sums(tmp_path):
    from recinterp.adapter import build_adapter, load_adapter
    from recinterp.config import IntegrityError
    build_adapter(kind="linear", d_in=8, d_llm=16).save(tmp_path / "a")
    build_adapter(kind="linear", d_in=8, d_llm=16).save(tmp_path / "b")  # same shapes, other weights
    (tmp_path / "a" / "SHA256SUMS").unlink()
    shutil.copy(tmp_path / "b" / "adapter.safetensors", tmp_path / "a" / "adapter.safetensors")
    with pytest.warns(UserWarning, match="no SHA256SUMS"), pytest.raises(
            IntegrityError, match=r"adapter.safetensors does not match the SHA-256 recorded in its adapter_config.json"):
        load_adapter(tmp_path / "a")


def test_load_interpreter_refuses_a_retrained_encoder(tmp_path):
    from recinterp import load_interpreter
    from recinterp.adapter import build_adapter
    from recinterp.config import state_sha256
    from recinterp.llm import tiny_llm
    from recinterp.models import save_checkpoint
    (enc_a, ds), (enc_b, _) = _world(0), _world(1)
    llm = tiny_llm()
    folder = tmp_path / "04" / "adapter"
    build_adapter(kind="linear", d_in=16, d_llm=llm.hidden_size, input="pair", task="residual", encoder="sasrec",
                  dataset="movielens", llm=llm.name, encoder_sha256=state_sha256(enc_a)).save(folder)
    save_checkpoint(enc_a, tmp_path / "checkpoints", "movielens")
    assert load_interpreter(folder, llm=llm, dataset=ds).item_ids([TITLES[2]]) == [2]
    save_checkpoint(enc_b, tmp_path / "checkpoints", "movielens")  # retrained: same name and config
    with pytest.raises(ValueError, match=r"checkpoints/movielens/sasrec is not the one the adapter was trained on"):
        load_interpreter(folder, llm=llm, dataset=ds)


# -- 8. figures under their run's results folder; a results folder locked while a run writes it ----
def _fake_papermill(monkeypatch, seen: list):
    """papermill.execute_notebook replaced by one that records the parameters and writes what a notebook would."""
    import json

    import papermill

    def execute(src, out, parameters=None, **kw):
        seen.append(parameters)
        Path(parameters["output_dir"]).mkdir(parents=True, exist_ok=True)
        (Path(parameters["output_dir"]) / "metrics.json").write_text(json.dumps({"ok": 1}))
        Path(out).write_text(Path(src).read_text())
    monkeypatch.setattr(papermill, "execute_notebook", execute)


def test_a_scratch_run_writes_its_figures_under_its_results_folder(tmp_path, monkeypatch):
    from recinterp import reproduce
    from recinterp.config import repo_root, resolve
    seen = []
    _fake_papermill(monkeypatch, seen)
    nb = reproduce.notebooks(["06"])[0]
    reproduce.run_notebook(nb, "smoke", tmp_path / "scratch", log=lambda *a: None)
    assert seen[0]["figures_dir"] == str(tmp_path / "scratch" / "figures")
    # only the reference run (preset cpu into results/cpu, no --param) writes the repository's figures/
    assert reproduce.figures_dir(resolve("results/cpu"), "cpu") == repo_root() / "figures"
    assert reproduce.figures_dir(resolve("results/cpu"), "cpu", {"seed": 1}) == resolve("results/cpu") / "figures"
    assert reproduce.figures_dir(resolve("results/smoke"), "smoke") == resolve("results/smoke") / "figures"


def _fake_repo(tmp_path, monkeypatch):
    """A checkout with notebook 06 and another run's figures/summary.md."""
    from recinterp import reproduce
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "figures").mkdir()
    shutil.copy(reproduce.notebooks(["06"])[0], repo / "notebooks")
    (repo / "figures" / "summary.md").write_text("ANOTHER RUN'S HEADLINE\n")
    monkeypatch.setattr(reproduce, "repo_root", lambda: repo)
    return repo


def test_a_run_prints_its_own_summary_not_the_repositorys(tmp_path, monkeypatch, capsys):
    from recinterp import reproduce
    _fake_repo(tmp_path, monkeypatch)
    _fake_papermill(monkeypatch, [])
    (tmp_path / "scratch" / "figures").mkdir(parents=True)
    (tmp_path / "scratch" / "figures" / "summary.md").write_text("THIS RUN'S HEADLINE\n")
    assert reproduce.main(["--preset", "smoke", "--results", str(tmp_path / "scratch"), "--only", "06"]) == 0
    out = capsys.readouterr().out
    assert "THIS RUN'S HEADLINE" in out and "ANOTHER RUN'S HEADLINE" not in out


def test_a_second_reproduction_into_one_results_folder_is_refused(tmp_path, monkeypatch, capsys):
    import json
    import socket
    import subprocess
    import sys
    from recinterp import reproduce
    _fake_repo(tmp_path, monkeypatch)
    seen = []
    _fake_papermill(monkeypatch, seen)
    res = tmp_path / "res"
    res.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (res / reproduce.LOCK).write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(),
                                                      "started": "now", "command": "reproduce --preset smoke"}))
        with pytest.raises(RuntimeError, match=rf"{res} is being written by another reproduction \(pid {other.pid}"):
            reproduce.main(["--preset", "smoke", "--results", str(res), "--only", "06"])
        assert not seen  # nothing ran
    finally:
        other.kill()
        other.wait()
    # the same lock, its process gone: stale, taken over, and released at the end
    assert reproduce.main(["--preset", "smoke", "--results", str(res), "--only", "06"]) == 0
    assert f"stale lock of process {other.pid}" in capsys.readouterr().out
    assert seen and not (res / reproduce.LOCK).exists()


def test_atomic_writes_from_two_processes_at_once_never_collide(tmp_path):
    """make test's two workers can build one cache at once: each writer's temporary file is its own."""
    import json
    import subprocess
    import sys

    target = tmp_path / "shared.json"
    code = ("import sys; from recinterp.config import write_json_atomic\n"
            "for i in range(300): write_json_atomic(sys.argv[1], {'writer': sys.argv[2], 'i': i, 'pad': 'x' * 20000})")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target), w], stderr=subprocess.PIPE, text=True)
             for w in ("a", "b")]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert json.loads(target.read_text())["i"] == 299 and not list(tmp_path.glob("*.tmp"))
