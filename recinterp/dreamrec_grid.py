"""DreamRec's variants side by side on both datasets: which set-up recommends, and how close to SASRec?

Every variant of ``recinterp.models.benchmark.DREAMREC_VARIANTS`` (the authors' set-up, the frozen table,
PreferDiff's objective, ADRec's pre-train-then-align, a wider table, ...) is trained on the same rows
with the same seed, early-stopped on validation NDCG@10 at its own guidance weight, and scored on every
split beside SASRec and popularity with paired bootstrap 95% CIs on the same rows.

    python -m recinterp.dreamrec_grid --preset cpu --checkpoint-dir results/cpu/checkpoints --out results/cpu/dreamrec_grid
    make dreamrec-grid

SASRec is read from ``--checkpoint-dir`` (notebook 02's) when it is there, else trained with the
preset's settings and saved there.  Resumable: each (dataset, variant) writes ``<dataset>/<variant>.json``
(atomically) and is skipped on a rerun with the same training settings; ``--epochs`` caps every variant's epochs (a scoping run).  Writes
``dreamrec_grid.csv`` / ``dreamrec_grid.md`` (one row per dataset, variant and split) and
``dreamrec_grid.png`` (validation NDCG@10 and the mean item-embedding norm per epoch: the collapse of
the authors' set-up is the falling norm).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from recinterp.config import resolve, write_json_atomic, write_text_atomic
from recinterp.data import dataset_sources, load_dataset
from recinterp.metrics import format_ci
from recinterp.models import build_encoder, load_checkpoint, save_checkpoint
from recinterp.models.benchmark import DREAMREC_VARIANTS, Benchmark, dreamrec_fit_config, fit_dreamrec, prepare
from recinterp.models.train import FitConfig, seed_everything
from recinterp.plan import resolve_preset

TABLE, MARKDOWN, FIGURE = "dreamrec_grid.csv", "dreamrec_grid.md", "dreamrec_grid.png"
REFERENCE = "sasrec"  # the encoder whose table the frozen variants read and that every variant is compared with


def reference_encoder(preset: str, dname: str, d, ckpt_root: Path, seed: int = 0, log=print):
    """SASRec for ``dname``: notebook 02's checkpoint when there, else trained now (and saved there)."""
    try:
        return load_checkpoint(ckpt_root, dname, REFERENCE)
    except (FileNotFoundError, ValueError) as e:
        log(f"[{dname}] no {REFERENCE} checkpoint in {ckpt_root} ({str(e)[:120]}): training it")
    cfg = resolve_preset(preset, "recommenders", dataset=dname)
    seed_everything(seed)
    enc = build_encoder(REFERENCE, n_items=d.ds.n_items, **cfg["models"][REFERENCE])
    bench = Benchmark({dname: d}, seed=seed)
    entry = bench.fit(dname, REFERENCE, enc, FitConfig(**{**cfg["train"], "seed": seed}), log=log)
    save_checkpoint(enc, ckpt_root, dname, metrics=entry, seed=seed)
    enc.checkpoint_info = {"metrics": entry}  # as a loaded checkpoint carries it (the figure's reference line)
    return enc.eval()


def variant_result(bench: Benchmark, dname: str, name: str) -> dict:
    """A variant's entry (means, CIs, training summary, curve) with its paired HR@10 / NDCG@10 differences
    against SASRec and popularity on every split."""
    e = bench.results[(dname, name)]
    vs = {f"{metric} - {base}": {sp: bench.vs(dname, name, sp, metric, base) for sp in bench.data[dname].evals}
          for base in (REFERENCE, "popularity") for metric in ("HR@10", "NDCG@10")}
    curve = [h for h in bench.histories if (h["dataset"], h["model"]) == (dname, name)]
    return {**{k: v for k, v in e.items() if k != "train_config"}, "vs": vs, "curve": curve,
            "train_config": e.get("train_config")}


def grid_rows(results: dict) -> list[dict]:
    """One row per (dataset, variant, split): HR@10 / NDCG@10 with CIs, the paired differences, the best epoch."""
    rows = []
    for (dname, v), r in results.items():
        for sp in (k for k in r if isinstance(r.get(f"{k}_ci"), dict)):
            rows.append({"dataset": dname, "variant": v, "split": sp, "n": r[sp]["n"],
                         "objective": r.get("objective", ""), "table": r.get("item_source", ""), "w": r.get("w"),
                         "HR@10": r[sp]["HR@10"], "HR@10 95% CI": format_ci(r[f"{sp}_ci"]["HR@10"]),
                         "NDCG@10": r[sp]["NDCG@10"],
                         "HR@10 - sasrec": _ci(r["vs"]["HR@10 - sasrec"][sp]),
                         "HR@10 - popularity": _ci(r["vs"]["HR@10 - popularity"][sp]),
                         "best epoch": f"{r.get('best_epoch')}/{r.get('epochs')}",
                         "val NDCG@10": r.get("best_val_NDCG@10"),
                         "item norm": (r.get("diagnostics") or {}).get("item_norm_mean")})
    return rows


def _ci(b: dict) -> str:
    return format_ci({"mean": b["diff"], "lo": b["lo"], "hi": b["hi"]}, signed=True)


def plot_grid(results: dict):
    """Per dataset: validation NDCG@10 per epoch (left) and the mean item-embedding norm per epoch (right)."""
    import matplotlib.pyplot as plt

    dnames = sorted({d for d, _ in results})
    fig, axes = plt.subplots(len(dnames), 2, figsize=(11, 3.4 * len(dnames)), squeeze=False)
    for row, dname in zip(axes, dnames):
        for (d, v), r in sorted(results.items()):
            if d != dname or not r["curve"]:
                continue
            ep = [h["epoch"] for h in r["curve"]]
            row[0].plot(ep, [h["val_NDCG@10"] for h in r["curve"]], marker=".", label=v)
            row[1].plot(ep, [h.get("item_norm_mean", float("nan")) for h in r["curve"]], marker=".", label=v)
        ref = next((r.get("reference_val_NDCG@10") for (d, _), r in results.items() if d == dname), None)
        if ref is not None:
            row[0].axhline(ref, color="grey", ls="--", lw=1, label=f"{REFERENCE} (best val)")
        row[0].set(title=f"{dname}: validation NDCG@10 per epoch", xlabel="epoch", ylabel="val NDCG@10")
        row[1].set(title=f"{dname}: mean item-embedding norm", xlabel="epoch", ylabel="norm", yscale="log")
        row[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _done(f: Path, fit_config) -> bool:
    """A variant's result is reused only when it was trained with these very settings (else it is retrained)."""
    if not f.exists():
        return False
    from dataclasses import asdict

    return json.loads(f.read_text()).get("train_config") == asdict(fit_config)


def run(preset: str, out: Path, ckpt_root: Path, datasets: str = "", variants=None, epochs: int | None = None,
        seed: int = 0, log=print) -> dict:
    cfg = resolve_preset(preset, "recommenders")
    dr = cfg["dreamrec"]
    variants = list(variants or DREAMREC_VARIANTS)
    results = {}
    for dname, src in dataset_sources(datasets, cfg["datasets"]).items():
        train = {**dr["train"], **({"epochs": epochs} if epochs else {})}
        todo = [v for v in variants if not _done(out / dname / f"{v}.json", dreamrec_fit_config(v, train, seed))]
        if todo:
            d = prepare(load_dataset(src), cfg["max_train_rows"], seed)
            enc = reference_encoder(preset, dname, d, ckpt_root, seed, log)
            bench = Benchmark({dname: d}, seed=seed)
            bench.record(dname, "popularity", d.popularity())
            bench.record(dname, REFERENCE, enc)
            ref_val = (getattr(enc, "checkpoint_info", {}).get("metrics") or {}).get("best_val_NDCG@10")
            for v in todo:
                t0 = time.time()
                fit_dreamrec(bench, dname, [v], dr["model"], train, table_encoder=enc, seed=seed, log=log)
                r = {**variant_result(bench, dname, f"dreamrec_{v}"), "seconds": time.time() - t0,
                     "reference_val_NDCG@10": ref_val, "threads": torch.get_num_threads()}
                write_json_atomic(out / dname / f"{v}.json", r)
        for f in sorted((out / dname).glob("*.json")):  # the table holds every variant measured so far
            if f.stem in DREAMREC_VARIANTS:
                results[(dname, f.stem)] = json.loads(f.read_text())
    import pandas as pd

    df = pd.DataFrame(grid_rows(results))
    df.to_csv(out / TABLE, index=False)
    write_text_atomic(out / MARKDOWN, df.to_markdown(index=False, floatfmt=".4f") + "\n")
    plot_grid(results).savefig(out / FIGURE, dpi=120, bbox_inches="tight")
    return results


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--checkpoint-dir", default=None, help="notebook 02's checkpoints (default results/<preset>/checkpoints)")
    ap.add_argument("--out", default=None, help="default results/<preset>/dreamrec_grid")
    ap.add_argument("--datasets", default="", help="comma-separated subset (default: the preset's)")
    ap.add_argument("--variants", default="", help=f"comma-separated subset of {sorted(DREAMREC_VARIANTS)}")
    ap.add_argument("--epochs", type=int, default=None, help="cap every variant's epochs (a scoping run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    unknown = [v for v in a.variants.split(",") if v and v not in DREAMREC_VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}: choose from {sorted(DREAMREC_VARIANTS)}")
    out = resolve(a.out or f"results/{a.preset}/dreamrec_grid")
    ckpt = resolve(a.checkpoint_dir or f"results/{a.preset}/checkpoints")
    run(a.preset, out, ckpt, a.datasets, [v for v in a.variants.split(",") if v] or None, a.epochs, a.seed)
    print(f"wrote {out / MARKDOWN} and {out / FIGURE}")


if __name__ == "__main__":
    main()
