"""Run the numbered notebooks in order with papermill: the README's main command.

    python -m recinterp.reproduce --preset cpu            # all of notebooks/NN_*.ipynb
    python -m recinterp.reproduce --preset smoke --only 01 02
    python -m recinterp.reproduce --preset gpu --param llm=meta-llama/Llama-2-7b-hf --param device=cuda

Each notebook writes under ``<results>/<notebook name>/``: the executed notebook and its
``metrics.json``.  A rerun skips notebooks already finished with the same notebook file and
preset (resumable); ``--force`` reruns them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from .config import load_preset, repo_root, resolve, section_of, write_json_atomic
from .params import check_params, declared_defaults

# Parameters the runner fills in when a notebook's parameters cell declares them.
RUNNER_PARAMS = ("preset", "output_dir", "results_dir", "checkpoint_dir")


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
        return json.loads(p.read_text()).get("fingerprint", "")
    return ""


def run_notebook(nb_path: Path, preset: str, results: Path, force: bool = False, log=print,
                 extra_params: dict | None = None) -> dict:
    import papermill as pm

    out_dir = results / nb_path.stem
    stamp = out_dir / "done.json"
    declared = declared_parameters(nb_path)
    # only parameters this notebook declares reach it (and its fingerprint)
    extra_params = {k: v for k, v in (extra_params or {}).items() if k in declared}
    fp = fingerprint(nb_path, preset, extra_params, upstream_fingerprint(nb_path, results))
    if not force and stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == fp \
            and (out_dir / "metrics.json").exists():
        log(f"[skip] {nb_path.name}: finished earlier ({out_dir})")
        return json.loads(stamp.read_text())
    values = {"preset": preset, "output_dir": str(out_dir), "results_dir": str(results),
              "checkpoint_dir": str(results / "checkpoints")}
    params = {k: v for k, v in {**values, **extra_params}.items() if k in declared}
    log(f"[run ] {nb_path.name} -> {out_dir}  (preset={preset})")
    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(nb_path), str(out_dir / nb_path.name), parameters=params, kernel_name="python3",
                        cwd=str(repo_root()), progress_bar=False, log_output=False)
    if not (out_dir / "metrics.json").exists():
        raise RuntimeError(f"{nb_path.name} finished without writing {out_dir / 'metrics.json'}")
    info = {"fingerprint": fp, "seconds": round(time.time() - t0, 1), "notebook": nb_path.name, "preset": preset}
    write_json_atomic(stamp, info)
    log(f"[done] {nb_path.name} in {info['seconds']:.0f} s")
    return info


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
    t0 = time.time()
    timings = {}
    for nb in nbs:
        timings[nb.name] = run_notebook(nb, a.preset, results, a.force, extra_params=extra)["seconds"]
    write_json_atomic(results / "timings.json", timings)
    print(f"\nAll {len(nbs)} notebooks done in {time.time() - t0:.0f} s. Outputs: {results}")
    for nb in nbs:
        print(f"  {nb.stem}: {results / nb.stem / 'metrics.json'}")
    summary = repo_root() / "figures" / "summary.md"
    if summary.exists():
        print(f"\nFigures: {summary.parent}\n")
        print(summary.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
