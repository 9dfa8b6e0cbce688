"""The headline readings of tasks 1 and 2 under several seeds: robust readings or lucky ones?

Every headline is one seed and n = 60.  Here each (task, dataset) of the preset's headline route
(the aligned route, headline encoder) is rerun with seeds 0, 1, 2, ...: the seed of the readout's
fit, of the case sample and of the controls' and probe's draws (``run_aligned``'s ``seed``); the
encoders are as notebook 02 trained them and the item aligner is fitted once (it takes no seed).

    python -m recinterp.seeds --preset cpu --checkpoint-dir results/cpu/checkpoints --out results/cpu/seeds
    make seeds

Writes ``seed_runs.csv`` (one row per task, dataset, seed and reading, as ``recinterp.curve`` writes
its rows; a rerun skips what is there) and ``seeds.csv`` / ``seeds.md``: per task, dataset and
reading the mean, min and max of the model's value across seeds, each seed's value with its 95% CI,
and in how many seeds the reading clears both soft-token controls.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from recinterp import report as R
from recinterp.config import STRUCTURED_TEMPERATURE, resolve, write_text_atomic
from recinterp.metrics import format_ci
from recinterp.curve import cli, machine_note, reading_rows
from recinterp.plan import resolve_preset
from recinterp.tasks.aligned import run_aligned

TASKS = ("recovery", "residual")  # task 1, task 2
RUNS, TABLE, MARKDOWN = "seed_runs.csv", "seeds.csv", "seeds.md"


def seed_rows(task: str, enc, ds, llm, cfg: dict, out_dir: str | os.PathLike, seed: int) -> list[dict]:
    """The headline readings of one aligned run of ``task`` at ``seed`` (the aligner shared in ``out_dir``)."""
    al = cfg.get("aligned") or {}
    out = Path(out_dir)
    w0 = time.time()
    res = run_aligned(task, enc, ds, llm, out_dir=out / f"seed{seed}", align_cfg=al.get("align"),
                      readout=al.get("readout"), temperature=al.get("temperature", STRUCTURED_TEMPERATURE), eval=cfg["eval"],
                      catalogue_dir=out, seed=seed)
    ev = next(iter(res["eval"].values()))
    block = R.run_block(res, route="aligned", role="main", extra={"adapter_side": ev["adapter_side"]})
    point = {"task": task, "dataset": ds.name, "encoder": getattr(enc, "name", ""), "seed": seed,
             "seconds": round(time.time() - w0, 1), **machine_note(llm.device)}
    return reading_rows(block, point)


def seed_table(rows: list[dict]):
    """One row per task, dataset, encoder and reading: mean / min / max across seeds, each seed's CI,
    how many seeds clear both soft-token controls."""
    import pandas as pd

    df = pd.DataFrame(rows)
    out = []
    for key, g in df.groupby(["task", "dataset", "encoder", "metric"], sort=False):
        g = g.sort_values("seed")
        out.append({**dict(zip(["task", "dataset", "encoder", "metric"], key)), "n": int(g["n"].iloc[0]),
                    "seeds": len(g), "mean": g["model"].mean(), "min": g["model"].min(), "max": g["model"].max(),
                    "clears": f"{int(g['clears'].astype(bool).sum())} of {len(g)}",
                    "per_seed": "; ".join(f"{int(r.seed)}: {format_ci({'mean': r.model, 'lo': r.model_lo, 'hi': r.model_hi})}"
                                          f"{' clears' if r.clears else ''}" for r in g.itertuples())})
    return pd.DataFrame(out)


def main(argv=None) -> int:
    import pandas as pd

    from recinterp.data import dataset_sources, load_dataset
    from recinterp.figures import markdown_table
    from recinterp.llm import load_llm
    from recinterp.models import load_checkpoint

    ap = cli("python -m recinterp.seeds", __doc__)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    ap.add_argument("--datasets", nargs="*", default=None, help="default: each task's preset datasets")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    out = resolve(a.out)
    runs_csv = out / RUNS
    rows = pd.read_csv(runs_csv).to_dict("records") if runs_csv.exists() else []
    done = {(r["task"], r["dataset"], int(r["seed"])) for r in rows}
    llm = None
    for task in a.tasks:
        base = resolve_preset(a.preset, task)
        for name, src in dataset_sources(a.datasets or [], base["datasets"]).items():
            ds = None
            for seed in a.seeds:
                if (task, name, seed) in done:
                    continue
                ds = ds or load_dataset(src)
                llm = llm or load_llm(a.llm or base["llm"], device=a.device)
                cfg = resolve_preset(a.preset, task, dataset=ds.name, encoder=base["encoders"][0])
                enc = load_checkpoint(resolve(a.checkpoint_dir), ds.name, base["encoders"][0])
                new = seed_rows(task, enc, ds, llm, cfg, out / task / ds.name, seed)
                rows += new
                write_text_atomic(runs_csv, pd.DataFrame(rows).to_csv(index=False))
                print(f"{task}/{ds.name}/seed {seed}: " + "; ".join(f"{r['metric']} {r['model']:.3f} (clears: {r['clears']})"
                                                                   for r in new), flush=True)
    if rows:
        table = seed_table(rows)
        write_text_atomic(out / TABLE, table.to_csv(index=False))
        write_text_atomic(out / MARKDOWN, markdown_table(table) + "\n")
        print(markdown_table(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
