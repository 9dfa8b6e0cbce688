"""Why the paper's route does or does not light: the measurements behind notebook 04's paragraph.

The paper's route trains an adapter (recommender vector -> soft tokens) through the frozen LLM.  On
MovieLens it has never cleared its controls here; this module measures, on the same controls, what
stands between it and a reading:

1. ``must_light``  the must-light world (recinterp.must_light): the paper's ``linear`` adapter as the
   authors build it, and with the scale fixes (inputs standardised, soft tokens at the LLM's own token
   norm, a norm-matched start), each as a curve of generated hit rate beside shuffled / zeroed controls.
2. ``ceiling``     the best any *linear* map can do from an item's embedding to its title's first tokens
   (least squares, no LLM): R^2 and nearest-title top-1 on training items and on held-out items, for
   catalogues of 64, 256 items and the whole catalogue.  If a linear map cannot carry an item's title,
   no amount of training through the LLM will make a linear adapter name it.
3. ``item_stage``  the item stage on the real catalogue (one SASRec item embedding -> its title) with the
   scale fixes, as a learning curve: generated hit rate on trained items with both controls, the
   soft tokens' norm against the LLM's at each checkpoint; also on a 256-item sub-catalogue.
4. ``ls_bridge``   the bridge between the routes: the same item stage (256 items) started from the
   least-squares map to the title tokens (``adapter.least_squares_init``), then trained through the LLM.

    python -m recinterp.evidence --checkpoint-dir results/cpu/checkpoints --out results/cpu/evidence --parts must_light,ceiling,item_stage
    make evidence

Resumable: every measured point is appended to ``evidence.json`` (atomically) and skipped on a rerun.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from recinterp.config import TITLE_TOKENS, resolve, write_json_atomic

PARTS = ("must_light", "ceiling", "item_stage", "ls_bridge")
LOG = "evidence.json"


@torch.no_grad()
def linear_ceiling(items: torch.Tensor, targets: torch.Tensor, sizes=(64, 256, 0), k: int = 4, holdout: float = 0.2,
                   ridge: float = 1e-3, seed: int = 0) -> list[dict]:
    """Least-squares maps from item embeddings ``items`` (n, d) to their titles' first ``k`` token embeddings
    ``targets`` (n, >=k, d_llm), on random sub-catalogues of each size (0: all items).  Per size: R^2 and the
    share of items whose mapped tokens are nearest to their own title (among the sub-catalogue) on the
    items fitted and on held-out items."""
    from recinterp.adapter import ridge_affine
    from recinterp.align import nearest_items

    g = torch.Generator().manual_seed(seed)
    y_all = targets[:, :k].reshape(len(targets), -1).double()
    out = []
    for size in sizes:
        n = len(items) if not size or size >= len(items) else size
        ids = torch.randperm(len(items), generator=g)[:n]
        n_te = max(1, int(round(holdout * n)))
        te, tr = ids[:n_te], ids[n_te:]
        W, b = ridge_affine(items[tr], y_all[tr], ridge)
        row = {"items": n, "fitted": len(tr), "held_out": len(te), "k": k}
        for name, part in (("fitted", tr), ("held_out", te)):
            pred, y = items[part].double() @ W + b, y_all[part]
            row[f"r2_{name}"] = float(1 - ((y - pred) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
            near = nearest_items(pred.float().view(len(part), k, -1), targets[ids, :k].float())
            row[f"top1_{name}"] = float((ids[near] == part).float().mean())
        out.append(row)
    return out


def _log(out: Path) -> dict:
    f = out / LOG
    return json.loads(f.read_text()) if f.exists() else {"points": []}


def _save(out: Path, log: dict) -> None:
    write_json_atomic(out / LOG, log)


def _have(log: dict, **key) -> bool:
    return any(all(p.get(k, "norm" if k == "start" else None) == v for k, v in key.items()) for p in log["points"])


def must_light_points(llm, out: Path, steps: int = 40, every: int = 20, lr: float = 3e-3, log=print) -> None:
    from recinterp.must_light import run_must_light

    data = _log(out)
    for setting, kw in (("as built", dict(out_norm=False, norm_init=False)), ("scale fixes", dict(out_norm=True, norm_init=True))):
        if _have(data, part="must_light", setting=setting, steps=steps, lr=lr):
            continue
        t0 = time.time()
        r = run_must_light(llm, steps=steps, lr=lr, eval_every=every, **kw)
        g = r["generation"]
        data["points"].append({"part": "must_light", "setting": setting, "steps": steps, "lr": lr, "curve": r["curve"],
                               "hit": g["model"]["hit"], "vs_shuffled": g["model_vs_shuffled"], "vs_zero": g["model_vs_zero"],
                               "soft_norm": r["soft_norm"], "llm_token_norm": r["llm_token_norm"],
                               "loss_first": r["train"][0]["loss"], "loss_last": r["train"][-1]["loss"],
                               "seconds": round(time.time() - t0, 1), "threads": torch.get_num_threads()})
        _save(out, data)
        log(f"must-light, {setting}: hit {g['model']['hit']['mean']:.3f} at {steps} steps")


def ceiling_points(enc, ds, llm, out: Path, k: int = 4, log=print) -> None:
    from recinterp.align import title_token_targets

    data = _log(out)
    if _have(data, part="ceiling", dataset=ds.name, k=k):
        return
    targets, _ = title_token_targets(llm, ds.catalogue.norm_titles, k=k)
    items = enc.item_embeddings.weight[: enc.n_items].detach().float().cpu()
    rows = linear_ceiling(items, targets, k=k)
    data["points"].append({"part": "ceiling", "dataset": ds.name, "encoder": getattr(enc, "name", ""), "k": k, "rows": rows})
    _save(out, data)
    log("linear ceiling: " + "; ".join(f"{r['items']} items top-1 {r['top1_fitted']:.3f} (held out {r['top1_held_out']:.3f})"
                                       for r in rows))


ITEM_ADAPTER = {"kind": "linear", "n_tokens": 4, "standardize": True, "out_norm": "llm", "norm_init": True}


def item_stage_points(enc, ds, llm, out: Path, plan=((256, (160, 320)), (0, (300,))), lr: float = 3e-3,
                      n_cases: int = 60, start: str = "norm", log=print) -> None:
    """The item stage with the scale fixes, on ``n_items`` training items (0: the whole training catalogue),
    evaluated at each step count of ``plan`` on trained items (generation, both controls).  ``start``: "norm"
    (a norm-matched random start) or "ls" (the least-squares map to the title tokens, the bridge)."""
    from recinterp.adapter import llm_token_norm, load_adapter
    from recinterp.tasks.run import run_task

    data = _log(out)
    for n_items, steps_list in plan:
        folder = out / f"item_{n_items or 'all'}{'_ls' if start == 'ls' else ''}"
        adapter = {**ITEM_ADAPTER, **({"ls_init": True, "norm_init": False} if start == "ls" else {})}
        for steps in steps_list:
            if _have(data, part="item_stage", dataset=ds.name, n_items=n_items, steps=steps, start=start):
                continue
            t0 = time.time()
            res = run_task("item", enc, ds, llm, out_dir=folder, adapter=dict(adapter), max_train_cases=n_items or None,
                           train={"max_steps": steps, "lr": lr, "warmup_steps": 10, "ckpt_every": 0},
                           eval={"n_cases": n_cases, "samplers": [], "max_new_tokens": TITLE_TOKENS}, progress=False)  # generation only
            ev = res["eval"]["train"]["generation"]
            ad = load_adapter(res["adapter_dir"], d_llm=llm.hidden_size)
            with torch.no_grad():
                feats = res["cases"]["train"].features[:, 0]
                soft = ad(feats).float().norm(dim=-1).mean()
            hist = res["train"]["history"]
            data["points"].append({"part": "item_stage", "dataset": ds.name, "n_items": n_items, "steps": steps, "lr": lr,
                                   "start": start, "adapter": adapter, "hit": ev["model"]["hit"], "shuffled": ev["shuffled"]["hit"],
                                   "zero": ev["zero"]["hit"], "vs_shuffled": ev["model_vs_shuffled"],
                                   "vs_zero": ev["model_vs_zero"], "texts": ev["model"]["texts"][:5],
                                   "held_out_hit": res["eval"]["held_out"]["generation"]["model"]["hit"],
                                   "soft_norm": float(soft), "llm_token_norm": llm_token_norm(llm),
                                   "loss_last": hist[-1]["loss"] if hist else None,
                                   "epochs": res["train"]["epochs"], "seconds": round(time.time() - t0, 1),
                                   "threads": torch.get_num_threads()})
            _save(out, data)
            log(f"item stage ({start} start), {n_items or 'all'} items, {steps} steps: hit {ev['model']['hit']['mean']:.3f} "
                f"(shuffled {ev['shuffled']['hit']['mean']:.3f}, zero {ev['zero']['hit']['mean']:.3f})")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint-dir", default="results/cpu/checkpoints", help="notebook 02's checkpoints (SASRec)")
    ap.add_argument("--out", default="results/cpu/evidence")
    ap.add_argument("--dataset", default="movielens")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    parts = [p for p in a.parts.split(",") if p]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        ap.error(f"unknown part(s) {bad}: choose from {PARTS}")
    if a.threads:
        torch.set_num_threads(a.threads)
    from recinterp.data import load_dataset
    from recinterp.llm import load_llm
    from recinterp.models import load_checkpoint

    out = resolve(a.out)
    out.mkdir(parents=True, exist_ok=True)
    llm = load_llm()
    if "must_light" in parts:
        must_light_points(llm, out)
    if {"ceiling", "item_stage", "ls_bridge"} & set(parts):
        ds = load_dataset(a.dataset)
        enc = load_checkpoint(resolve(a.checkpoint_dir), a.dataset, "sasrec")
        if "ceiling" in parts:
            ceiling_points(enc, ds, llm, out)
        if "item_stage" in parts:
            item_stage_points(enc, ds, llm, out)
        if "ls_bridge" in parts:  # the bridge: the least-squares start, then trained through the LLM
            item_stage_points(enc, ds, llm, out, plan=((256, (0, 160)),), start="ls")  # step 0: the fit alone
    print(f"wrote {out / LOG}")


if __name__ == "__main__":
    main()
