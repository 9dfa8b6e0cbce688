"""Task 2's aligned route under both readouts: is an encoder's null its states or its readout?

The structured adapter reads [h_before, h_after] through a readout to the added item.  Notebook 04
fits that readout (softmax regression, started from the encoder's own scores); ``readout.kind =
"encoder"`` uses the encoder's own scores unchanged, item · (h_after − h_before), with no fitting.
An encoder whose fitted readout reads nothing (Caser on the cpu preset) may still hold the item in
its own geometry: this runs both readouts for every encoder and dataset at the preset's settings
(same cases, controls, paired CIs, adapter-side top-1) and pairs them case by case.

    python -m recinterp.readouts --preset cpu --checkpoint-dir results/cpu/checkpoints --out results/cpu/readouts
    make readouts

Writes ``readouts.csv`` (one row per dataset, encoder, readout and reading, as ``recinterp.curve``
writes its rows: the model and each control with CIs, model − control, whether it clears shuffled
and zero, the readout's top-1 among all items, the parameter-free encoder-space probe) and
``readouts.json`` (the fit reports, and per dataset and encoder the paired 95% CI of encoder − fitted
for each reading), both rewritten after every run; a rerun reloads the fitted adapters (cached
under ``out/<dataset>/<encoder>/<readout>``, the item aligner shared by both readouts).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from recinterp import report as R
from recinterp.config import STRUCTURED_TEMPERATURE, read_json, resolve, write_json_atomic, write_text_atomic
from recinterp.curve import cli, machine_note, reading_rows
from recinterp.plan import resolve_preset
from recinterp.tasks.aligned import run_aligned

KINDS = ("fitted", "encoder")
CSV, JSON = "readouts.csv", "readouts.json"


def readout_settings(cfg: dict, kind: str) -> dict:
    """The preset's readout (``aligned.readout``) for the fitted kind; the encoder's scores take no options."""
    if kind not in KINDS:
        raise ValueError(f"unknown readout {kind!r}: choose one of {KINDS}")
    return {**((cfg.get("aligned") or {}).get("readout") or {}), "kind": "fitted"} if kind == "fitted" else {"kind": "encoder"}


def encoder_space(block: R.RunBlock) -> dict:
    """The probe's parameter-free encoder-space reference (its Hit@1), when the evaluation has one."""
    s = block["probe"][block["samplers"][0]]["conditions"].get("encoder", {}).get("Hit@1", {})
    return {"encoder_space_hit1": s.get("mean"), "encoder_space_hit1_lo": s.get("lo"), "encoder_space_hit1_hi": s.get("hi")}


def compare_readouts(enc, ds, llm, cfg: dict, out_dir: str | os.PathLike, *, kinds=KINDS, role: str = "main",
                     seed: int = 0) -> tuple[list[dict], dict]:
    """Both readouts of one encoder and dataset on the preset's evaluation: (rows, report)."""
    out = Path(out_dir)
    al = cfg.get("aligned") or {}
    rows, report, evals = [], {}, {}
    for kind in kinds:
        w0 = time.time()
        res = run_aligned("residual", enc, ds, llm, out_dir=out / kind, align_cfg=al.get("align"),
                          readout=readout_settings(cfg, kind), temperature=al.get("temperature", STRUCTURED_TEMPERATURE),
                          eval=cfg["eval"], catalogue_dir=out, seed=seed)
        ev = evals[kind] = next(iter(res["eval"].values()))
        block = R.run_block(res, route=f"aligned_{kind}", role=role, extra={"adapter_side": ev["adapter_side"]})
        point = {"dataset": ds.name, "encoder": getattr(enc, "name", ""), "readout": kind,
                 "readout_top1": ev["adapter_side"]["readout_top1"], **encoder_space(block),
                 "seconds": round(time.time() - w0, 1), **machine_note(llm.device)}
        rows += reading_rows(block, point)
        report[kind] = {"fit": res["fit"]["readout"], "adapter_side": ev["adapter_side"]}
    if len(evals) == 2:
        a, b = (evals[k] for k in kinds)
        report[f"{kinds[1]}_minus_{kinds[0]}"] = R.before_after(a, b, seed=seed)
    return rows, report


def measured(out: Path) -> set[tuple[str, str, str]]:
    """(dataset, encoder, readout) already in ``out/readouts.csv``."""
    import pandas as pd

    p = out / CSV
    return {(r.dataset, r.encoder, r.readout) for r in pd.read_csv(p).itertuples()} if p.exists() else set()


def record(out: Path, rows: list[dict], runs: dict, info: dict) -> list[dict]:
    """Merge ``rows`` (and ``runs`` into the JSON's) with what the files hold, re-read just before writing, so
    runs of other pairs (another process, an earlier call) are kept and a pair measured again is replaced."""
    import pandas as pd

    new = {(r["dataset"], r["encoder"], r["readout"]) for r in rows}
    old = pd.read_csv(out / CSV).to_dict("records") if (out / CSV).exists() else []
    merged = [r for r in old if (r["dataset"], r["encoder"], r["readout"]) not in new] + rows
    report = read_json(out / JSON, f"delete {out / JSON} and rerun the readouts") if (out / JSON).exists() else {"runs": {}}
    for k, v in runs.items():
        report["runs"][k] = {**report["runs"].get(k, {}), **v}
    write_text_atomic(out / CSV, pd.DataFrame(merged).to_csv(index=False))
    write_json_atomic(out / JSON, {**report, **info})
    return merged


def main(argv=None) -> int:
    from recinterp.data import dataset_sources, load_dataset
    from recinterp.llm import load_llm
    from recinterp.models import load_checkpoint

    ap = cli("python -m recinterp.readouts", __doc__)
    ap.add_argument("--datasets", nargs="*", default=None, help="default: the preset's residual datasets")
    ap.add_argument("--encoders", nargs="*", default=None, help="default: the preset's residual encoders")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="readouts to run (default: both)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    base = resolve_preset(a.preset, "residual")
    sources = dataset_sources(a.datasets or [], base["datasets"])
    encoders = a.encoders or base["encoders"]
    out = resolve(a.out)
    llm = load_llm(a.llm or base["llm"], device=a.device)
    for name, src in sources.items():
        ds = load_dataset(src)
        for e in encoders:
            kinds = [k for k in a.kinds if (ds.name, e, k) not in measured(out)]  # a rerun skips what is there
            if not kinds:
                continue
            cfg = resolve_preset(a.preset, "residual", dataset=ds.name, encoder=e)
            role = "main" if e == base["encoders"][0] else "comparison"
            r, rep = compare_readouts(load_checkpoint(resolve(a.checkpoint_dir), ds.name, e), ds, llm, cfg,
                                      out / ds.name / e, kinds=tuple(kinds), role=role, seed=a.seed)
            record(out, r, {f"{ds.name}/{e}": rep}, {"preset": a.preset, "seed": a.seed, "llm": llm.describe()})
            print(f"{ds.name}/{e}: " + "; ".join(f"{x['readout']} {x['metric']} {x['model']:.3f} (clears: {x['clears']})"
                                               for x in r), flush=True)
    print(json.dumps({"csv": str(out / CSV), "json": str(out / JSON)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
