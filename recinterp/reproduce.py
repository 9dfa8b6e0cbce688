"""Run the numbered notebooks in order with papermill: the README's main command.

    python -m recinterp.reproduce --preset cpu            # all of notebooks/NN_*.ipynb
    python -m recinterp.reproduce --preset smoke --only 01 02
    python -m recinterp.reproduce --preset gpu --param llm=meta-llama/Llama-2-7b-hf --param device=cuda

Each notebook writes under ``<results>/<notebook name>/``: the executed notebook and its
``metrics.json``.  A rerun skips notebooks already finished with the same notebook file and
preset (resumable); ``--force`` reruns them.  A notebook runs into a hidden
``.<name>.partial.ipynb`` renamed into place only when complete, and its ``done.json`` is
removed before it starts: an interrupted run never replaces a complete notebook, and the next
run reruns it.  A results folder is locked (``.reproduce.lock``) while a run writes it; figures and
``summary.md`` go to ``<results>/figures`` (the repository's ``figures/`` only for the reference run,
``results/cpu``).

While a notebook runs, one line per code cell says where it is (cell k of N, the section it
belongs to, elapsed time), and a cell that ran long says so when it ends: a 27-minute
notebook is never silent, in a terminal or a CI log.  At the end a table gives each
notebook's time (and which were skipped as finished earlier).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .config import load_preset, read_json, repo_root, rerun_fix, resolve, section_of, write_json_atomic
from .params import check_params, declared_defaults

# Parameters the runner fills in when a notebook's parameters cell declares them.
RUNNER_PARAMS = ("preset", "output_dir", "results_dir", "checkpoint_dir", "figures_dir")
# The reference run: the only one whose figures and summary go to the repository's figures/ (committed).
REFERENCE_RESULTS = "results/cpu"
LOCK = ".reproduce.lock"


def figures_dir(results: Path, preset: str = "cpu", params: dict | None = None) -> Path:
    """Where a run's figures and summary.md go: the repository's ``figures/`` for the reference run (preset
    ``cpu`` into ``results/cpu``, no ``--param``), ``<results>/figures`` for every other, so a smoke, scratch
    or other-seed run never overwrites the reference figures nor prints another run's summary."""
    if params and params.get("figures_dir"):  # given: --param figures_dir=...
        return resolve(params["figures_dir"])
    reference = resolve(results) == resolve(REFERENCE_RESULTS) and Path(preset).stem == "cpu" and not params
    return repo_root() / "figures" if reference else resolve(results) / "figures"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@contextlib.contextmanager
def results_lock(results: Path, log=print):
    """Hold ``<results>/.reproduce.lock`` (this process's pid and command) while a run writes ``results``.
    A second reproduction into the same folder is refused, naming the running one; a lock left by a
    process that no longer runs (a killed run) is stale: it is taken over, saying so."""
    import socket

    results.mkdir(parents=True, exist_ok=True)
    path = results / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "command": " ".join(sys.argv)}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                held = {}
            pid = held.get("pid")
            if isinstance(pid, int) and held.get("host") == me["host"] and not _alive(pid):
                log(f"[lock] {path}: stale lock of process {pid} (no longer running): taking it over")
                path.unlink(missing_ok=True)
                continue
            raise RuntimeError(f"{results} is being written by another reproduction (pid {pid} on {held.get('host')}, "
                               f"started {held.get('started')}: {held.get('command')}); two runs into one results "
                               f"folder would mix their outputs. Wait for it to finish, or pass another --results. "
                               f"If no such run is going on, delete {path}")
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def notebooks(only: list[str] | None = None) -> list[Path]:
    nbs = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        nbs = [p for p in nbs if any(p.name.startswith(o) for o in only)]
    return nbs


def declared_parameters(nb_path: Path) -> set[str]:
    """The names the notebook's cell tagged ``parameters`` declares (``params.declared_defaults``)."""
    return set(declared_defaults(nb_path))


def fingerprint(nb_path: Path, preset: str, params: dict | None = None, upstream: str = "") -> str:
    """Hash of what a finished run depended on: the notebook, its preset section, its parameters,
    and the fingerprint of the notebook before it (so a rerun upstream reruns what follows)."""
    h = hashlib.sha256(nb_path.read_bytes())
    cfg = load_preset(preset)
    section = section_of(nb_path.name)  # editing another section does not invalidate this notebook
    h.update(json.dumps(cfg.get(section, cfg) if section else cfg, sort_keys=True).encode())
    h.update(upstream.encode())
    if params:  # no extra parameters: the same fingerprint as a plain run
        h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()


def upstream_fingerprint(nb_path: Path, results: Path) -> str:
    """The recorded fingerprint of the finished notebook numbered just before this one ("" if none)."""
    prev = f"{int(nb_path.name[:2]) - 1:02d}_" if nb_path.name[:2].isdigit() else None
    for p in sorted(results.glob(f"{prev}*/done.json")) if prev else []:
        return read_json(p, rerun_fix(p)).get("fingerprint", "")
    return ""


def source_commit() -> str | None:
    """The checkout's commit (short hash, "+dirty" when tracked files differ from it); None outside git."""
    try:
        git = dict(cwd=repo_root(), capture_output=True, text=True, timeout=10)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **git)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **git).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _fmt_seconds(s: float) -> str:
    """83.4 -> '1m23s'; 7.9 -> '8s'."""
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _section_titles(cells) -> list[str]:
    """For each cell, the latest markdown heading at or above it ('' before the first)."""
    out, current = [], ""
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.lstrip().startswith("#"):
                    current = line.lstrip("# ").strip()
                    break
        out.append(current)
    return out


class CellProgress:
    """Reports a running notebook's progress through ``log``: called by papermill as cells start and end.

    ``long_cell`` (seconds): a cell that took at least this long gets an end line with its duration.
    """

    def __init__(self, name: str, cells, log=print, long_cell: float = 20.0, clock=time.monotonic):
        self.name, self.log, self.long_cell, self.clock = name, log, long_cell, clock
        self.code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"]
        self.sections = _section_titles(cells)
        self.t0 = clock()
        self._started: dict[int, float] = {}

    def start(self, index: int | None) -> None:
        if index is None or index not in self.code:
            return
        self._started[index] = self.clock()
        k, n = self.code.index(index) + 1, len(self.code)
        where = f"  {self.sections[index]}" if self.sections[index] else ""
        self.log(f"       {self.name}: cell {k}/{n} at {_fmt_seconds(self.clock() - self.t0)}{where}")

    def end(self, index: int | None) -> None:
        t = self._started.pop(index, None) if index is not None else None
        if t is not None and self.clock() - t >= self.long_cell:
            k = self.code.index(index) + 1
            self.log(f"       {self.name}: cell {k} took {_fmt_seconds(self.clock() - t)}")


ENGINE = "recinterp-progress"


def _register_engine() -> None:
    """papermill's own nbclient engine, telling a ``CellProgress`` of every cell's start and end.

    The reporter's ``log`` arrives as the engine keyword ``progress_log`` (taken out before
    nbclient sees the keywords); the cells are counted from the notebook as it runs, papermill's
    injected parameters cell included.
    """
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, progress_log=print, progress_name="notebook",
                                     **kwargs):
            progress = CellProgress(progress_name, nb_man.nb.cells, progress_log)
            start, complete = nb_man.cell_start, nb_man.cell_complete

            def cell_start(cell, cell_index=None, **kw):
                progress.start(cell_index)
                return start(cell, cell_index, **kw)

            def cell_complete(cell, cell_index=None, **kw):
                out = complete(cell, cell_index, **kw)
                progress.end(cell_index)
                return out

            nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(ENGINE, ProgressEngine)


def run_notebook(nb_path: Path, preset: str, results: Path, force: bool = False, log=print,
                 extra_params: dict | None = None) -> dict:
    import papermill as pm

    out_dir = results / nb_path.stem
    stamp = out_dir / "done.json"
    declared = declared_parameters(nb_path)
    figs = figures_dir(results, preset, extra_params)  # decided on every parameter given, declared here or not
    # only parameters this notebook declares reach it (and its fingerprint)
    extra_params = {k: v for k, v in (extra_params or {}).items() if k in declared}
    fp = fingerprint(nb_path, preset, extra_params, upstream_fingerprint(nb_path, results))
    done = read_json(stamp, rerun_fix(stamp)) if stamp.exists() and not force else {}
    if done.get("fingerprint") == fp and (out_dir / "metrics.json").exists():
        log(f"[skip] {nb_path.name}: finished earlier ({out_dir})")
        return {**done, "ran": False}
    values = {"preset": preset, "output_dir": str(out_dir), "results_dir": str(results),
              "checkpoint_dir": str(results / "checkpoints"), "figures_dir": str(figs)}
    params = {k: v for k, v in {**values, **extra_params}.items() if k in declared}
    log(f"[run ] {nb_path.name} -> {out_dir}  (preset={preset})")
    t0, commit = time.time(), source_commit()  # the code that runs, for the book's page headers
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)  # from here on this notebook is not finished, whatever happens
    # papermill saves the notebook after every cell: it runs into a hidden file of the same folder, renamed
    # into place only when complete, so an interrupted run never replaces a complete notebook
    partial = out_dir / f".{nb_path.stem}.partial.ipynb"
    _register_engine()
    try:
        pm.execute_notebook(str(nb_path), str(partial), parameters=params, kernel_name="python3",
                            cwd=str(repo_root()), progress_bar=False, log_output=False, engine_name=ENGINE,
                            progress_log=log, progress_name=nb_path.stem)
    except BaseException:
        log(f"[fail] {nb_path.name}: not finished; the partly executed notebook is {partial}"
            + (f", the last complete one {out_dir / nb_path.name} is kept" if (out_dir / nb_path.name).exists() else ""))
        raise
    metrics = out_dir / "metrics.json"
    if not metrics.exists() or metrics.stat().st_mtime < t0 - 2:
        raise RuntimeError(f"{nb_path.name} finished without writing {metrics} (the executed notebook is {partial})")
    os.replace(partial, out_dir / nb_path.name)
    info = {"fingerprint": fp, "seconds": round(time.time() - t0, 1), "notebook": nb_path.name, "preset": preset,
            "commit": commit}
    write_json_atomic(stamp, info)
    log(f"[done] {nb_path.name} in {info['seconds']:.0f} s")
    return {**info, "ran": True}


def time_table(timings: dict[str, float], ran: dict[str, bool]) -> str:
    """A Markdown table of each notebook's time; notebooks skipped as finished show their earlier time."""
    rows = ["| notebook | time | |", "|---|---|---|"]
    for name, sec in timings.items():
        rows.append(f"| {Path(name).stem} | {_fmt_seconds(sec)} | {'ran now' if ran.get(name) else 'finished earlier'} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--results", default=None, help="results folder (default results/<preset>)")
    ap.add_argument("--only", nargs="*", default=None, help="notebook number prefixes, e.g. 01 02")
    ap.add_argument("--force", action="store_true", help="rerun notebooks that finished earlier")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a notebook parameter, passed to every notebook that declares it (e.g. llm=<HF id>)")
    a = ap.parse_args(argv)
    load_preset(a.preset)  # fail fast on an unknown preset
    results = resolve(a.results or f"results/{Path(a.preset).stem}")
    nbs = notebooks(a.only)
    if not nbs:
        print("no notebooks matched", file=sys.stderr)
        return 2
    extra = check_params(a.param, nbs)  # an undeclared name or a value of the wrong type is refused here
    log = functools.partial(print, flush=True)  # a CI log shows each line as it happens
    t0 = time.time()
    timings, ran = {}, {}
    with results_lock(results, log):  # one reproduction at a time into a results folder
        for nb in nbs:
            info = run_notebook(nb, a.preset, results, a.force, log=log, extra_params=extra)
            timings[nb.name], ran[nb.name] = info["seconds"], info["ran"]
        write_json_atomic(results / "timings.json", timings)
    print(f"\nAll {len(nbs)} notebooks done in {_fmt_seconds(time.time() - t0)}. Outputs: {results}\n")
    print(time_table(timings, ran))
    print()
    for nb in nbs:
        print(f"  {nb.stem}: {results / nb.stem / 'metrics.json'}")
    summary = figures_dir(results, a.preset, extra) / "summary.md"  # this run's, never another run's
    if summary.exists():
        print(f"\nFigures: {summary.parent}\n")
        print(summary.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
