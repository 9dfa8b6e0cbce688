"""Learning curves of task 2's two routes on the same cases: what the paper's route needs to light.

The paper trains the adapter *end to end* through the frozen LLM; on a CPU the presets cut it to
the aligned fit's wall-clock (a few dozen steps), where it reads nothing.  This module trains it
on and evaluates it at checkpoints (e.g. 0, 30, 100, 300, 1000 steps), each time with the
headline's evaluation of the preset: the same split, the same seeded sample of cases, the same
controls (shuffled and zeroed soft tokens, popularity) and paired 95% CIs; the token-space
route (``recinterp.tasks.aligned``, no LLM pass) is one point on the same axes, at its fit's seconds.

    python -m recinterp.curve --preset cpu --checkpoint-dir results/cpu/checkpoints --out results/cpu/curve \\
        --plan linear:0,30,100,300 conv_pool:0,30,100 linear:1000 --deadline 19:45 --threads 2
    make curve CURVE_ARGS="--deadline 19:45"

Variants (``VARIANTS``), both on the paper's two-slot prompt (``input="two_slots"``):
- ``linear``     the preset's residual adapter (cpu: linear, 4 soft tokens per slot, last states)
                 started from the item stage (the preset's ``item_stage``): notebook 04's contrast;
- ``conv_pool``  the authors' adapter: every position's state pooled by a learned convolution into
                 one soft token per slot, from scratch.
- ``linear_scaled`` the preset's adapter with the must-light world's scale fixes (standardised inputs,
                 soft tokens at the LLM's own token norm, a norm-matched start), from scratch.
The plan is run in its order (``variant:steps,...``; each variant's steps increasing), so the
variant most likely to light goes first.  A checkpoint continues the same training run
(``run_task`` resumes ``out_dir/<variant>/checkpoint`` with ``max_steps`` raised).  With a
``deadline``, every checkpoint's training stops in time for its evaluation (estimated from those
measured so far) to end by then, and the row records the steps reached; a checkpoint of which less
than a quarter of its new steps would fit is skipped (listed in ``curve.json``).

Every checkpoint's readings (generation hit rate, probe Hit@1 of the first sampler) are appended
to ``curve.csv`` (rewritten atomically) as soon as they are measured, with the training steps and
seconds, the wall clock, the torch threads and the machine's load (load average, and the share of
the threads' CPU time this process got); a rerun skips every (variant, target steps) already
there.  ``curve.png`` is redrawn after every row.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time
from pathlib import Path

import torch

from recinterp import report as R
from recinterp.config import STRUCTURED_TEMPERATURE, resolve, write_json_atomic, write_text_atomic
from recinterp.metrics import format_ci
from recinterp.plan import resolve_preset
from recinterp.tasks.aligned import run_aligned
from recinterp.tasks.run import run_task

CSV, FIGURE, LOG = "curve.csv", "curve.png", "curve.json"
ALIGNED = "aligned"
VARIANTS = {  # name -> how the adapter is built (None: the preset's residual adapter) and started
    "linear": {"input": "two_slots", "adapter": None, "init": "item"},
    "conv_pool": {"input": "two_slots", "adapter": {"kind": "conv_pool", "n_tokens": 1, "positions": "all"},
                  "init": None},
    # the preset's adapter with the scale fixes of the must-light world (recinterp.must_light): inputs
    # standardised, soft tokens at the LLM's token norm, a norm-matched start; from scratch
    "linear_scaled": {"input": "two_slots", "adapter": None, "init": None,
                      "fixes": {"standardize": True, "out_norm": "llm", "norm_init": True}},
}
MIN_SHARE = 0.25  # a checkpoint cut by the deadline is still trained if this share of its new steps fits


def parse_plan(items: list[str]) -> list[tuple[str, int]]:
    """["linear:0,30", "conv_pool:0", "linear:100"] -> [(linear, 0), (linear, 30), (conv_pool, 0), (linear, 100)]."""
    plan, last = [], {}
    for item in items:
        name, sep, steps = item.partition(":")
        if not sep or name not in VARIANTS:
            raise ValueError(f"plan entry {item!r}: write VARIANT:STEPS[,STEPS...] with VARIANT one of {sorted(VARIANTS)}")
        try:
            counts = [int(s) for s in steps.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"plan entry {item!r}: steps must be whole numbers, e.g. linear:0,30,100") from None
        if not counts:
            raise ValueError(f"plan entry {item!r} names no steps")
        for s in counts:
            if s < 0 or s <= last.get(name, -1):
                raise ValueError(f"plan entry {item!r}: a variant's steps must be >= 0 and increase through the plan "
                                 f"({name} reaches {s} after {last.get(name)})")
            last[name] = s
            plan.append((name, s))
    return plan


def variant_setup(name: str, cfg: dict) -> dict:
    """The run_task arguments of a variant under a resolved ``residual`` preset section."""
    v = VARIANTS[name]
    return {"input": v["input"], "adapter": {**(v["adapter"] or cfg["adapter"]), **v.get("fixes", {})}, "init": v["init"]}


def describe(name: str, cfg: dict) -> str:
    s = variant_setup(name, cfg)
    a = s["adapter"]
    init = f"item stage ({cfg['item_stage']['train']['max_steps']} steps)" if s["init"] else "scratch"
    fixes = ", scale fixes" if VARIANTS[name].get("fixes") else ""
    return f"{s['input']}, {a['kind']} {a.get('n_tokens', 1)} tok, {a.get('positions', 'last')} states{fixes}, from {init}"


def machine_note(device: str | torch.device = "cpu") -> dict:
    """Where a row was measured: the device that trained and evaluated (a GPU by name), torch threads, CPUs, load."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    load1, load5, load15 = os.getloadavg()
    return {"device": name, "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load1": round(load1, 2),
            "load5": round(load5, 2), "load15": round(load15, 2)}


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _summary(prefix: str, s: dict | None) -> dict:
    s = s or {}
    return {prefix: s.get("mean"), f"{prefix}_lo": s.get("lo"), f"{prefix}_hi": s.get("hi")}


def _conditions(block: R.RunBlock, reading: str) -> dict:
    """{condition: its own {mean, lo, hi, n}} of one headline reading of ``block``."""
    if reading.startswith("generation"):
        return {c: v["mean"] for c, v in block["generation"]["conditions"].items()}
    p = block["probe"][block["samplers"][0]]
    return {c: v["Hit@1"] for c, v in p["conditions"].items() if "Hit@1" in v}


def reading_rows(block: R.RunBlock, point: dict) -> list[dict]:
    """One row per headline reading of ``block`` (``recinterp.report.headline``): the model and every
    control with their CIs, model − control with its paired CI, whether it clears shuffled and zero."""
    rows = []
    for h in R.headline([block], roles=(block["role"],)):
        conds = _conditions(block, h["reading"])
        row = {**point, "metric": h["reading"], "n": h["n"], **_summary("model", h["model"])}
        for c in R.CONTROLS:
            row.update(_summary(c, conds.get(c)))
            row.update(_summary(f"model_minus_{c}", h["vs"].get(c)))
        rows.append({**row, "clears": h["clears"], "adapter_side": h["adapter_side"]})
    return rows


def read_rows(out_dir: str | os.PathLike) -> list[dict]:
    import pandas as pd

    p = Path(out_dir) / CSV
    return pd.read_csv(p).to_dict("records") if p.exists() else []


def device_of(row: dict) -> str:
    """The device a row was measured on; rows written before the column existed were measured on the CPU."""
    d = row.get("device")
    return d if isinstance(d, str) and d else "cpu"


def measured_curves(results: str | os.PathLike, preset: str, curve_dir: str | os.PathLike = "") -> list[tuple[str, list[dict]]]:
    """The learning curves a results folder holds, each as (where it was measured, its rows): `make curve`'s
    (``curve_dir``, else ``<results>/curve``) and, for the cpu preset, the GPU check's curve
    (``<results>/../device_check/curve.csv``: ``bench/device_check.sh`` runs the cpu preset's curve on a GPU).
    Seconds on a GPU and on a CPU do not share an axis, so each comes back on its own."""
    results = Path(results)
    places = [Path(curve_dir) if curve_dir else results / "curve"]
    if preset == "cpu":
        places.append(results.parent / "device_check")
    found = []
    for place in places:
        rows = read_rows(place)
        if rows:  # named by the results folder's path, not this machine's (the figure's title names the device)
            try:
                where = place.resolve().relative_to(results.resolve().parent.parent).as_posix()
            except ValueError:
                where = place.name
            found.append((where, rows))
    return found


def write_rows(out_dir: str | os.PathLike, rows: list[dict]) -> Path:
    import pandas as pd

    return write_text_atomic(Path(out_dir) / CSV, pd.DataFrame(rows).to_csv(index=False))


def measured(rows: list[dict]) -> set[tuple[str, int]]:
    return {(r["variant"], int(r["steps_target"])) for r in rows}


def _role(cfg: dict, route: str) -> str:
    headline_route = cfg.get("headline_route", "end_to_end")
    return "main" if (route == ALIGNED) == (headline_route == ALIGNED) else "contrast"


def aligned_point(enc, ds, llm, cfg: dict, out: Path, seed: int) -> tuple[R.RunBlock, float]:
    """The token-space route on the same cases; its fit seconds (from the fit reports if it was cached)."""
    al = cfg.get("aligned") or {}
    res = run_aligned("residual", enc, ds, llm, out_dir=out / ALIGNED, align_cfg=al.get("align"),
                      readout=al.get("readout"), temperature=al.get("temperature", STRUCTURED_TEMPERATURE), eval=cfg["eval"], seed=seed)
    fit = res["fit"]
    reported = fit["aligner"].get("seconds", 0.0) + fit["readout"].get("seconds", 0.0)
    ev = next(iter(res["eval"].values()))
    block = R.run_block(res, route=ALIGNED, role=_role(cfg, ALIGNED), extra={"adapter_side": ev["adapter_side"]})
    return block, max(fit["seconds_total"], reported)


def run_curve(enc, ds, llm, cfg: dict, out_dir: str | os.PathLike, plan: list[tuple[str, int]], *,
              deadline: float | None = None, aligned: bool = True, seed: int = 0, preset: str = "",
              log=print) -> list[dict]:
    """Measure every checkpoint of ``plan`` (and the aligned point) not yet in ``out_dir/curve.csv``.

    ``cfg``: the resolved ``residual`` section (``resolve_preset(preset, "residual", dataset=, encoder=)``);
    ``deadline``: a ``time.time()`` by which the last evaluation must end (None: no limit).
    Returns every row of the CSV.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, t_start = read_rows(out), time.time()
    done = measured(rows)
    state = {"plan": [f"{v}:{s}" for v, s in plan], "skipped": [], "started": dt.datetime.now().isoformat(timespec="seconds")}
    rates = {"s_per_step": None, "eval_s": None}  # measured here, to estimate whether a checkpoint fits

    def record(new: list[dict]):
        rows.extend(new)
        write_rows(out, rows)
        plot_curve(rows, out / FIGURE, title=f"{ds.name} / {getattr(enc, 'name', '')}: task 2, two routes", preset=preset)

    def point(variant: str, target: int, steps: int, seconds: float, extra_s: float, seg_wall: float,
              seg_cpu: float, eval_s: float, stopped: str, setup: str, loss_last) -> dict:
        threads = torch.get_num_threads()
        return {"variant": variant, "setup": setup, "steps_target": target, "steps": steps,
                "train_seconds": round(seconds, 3), "stage_seconds": round(extra_s, 3),
                "seconds": round(seconds + extra_s, 1), "eval_seconds": round(eval_s, 1), "stopped_by": stopped,
                "loss_last": loss_last, "wall_clock": dt.datetime.now().isoformat(timespec="seconds"),
                "elapsed_s": round(time.time() - t_start, 1), **machine_note(llm.device),
                "cpu_share": round(seg_cpu / max(seg_wall, 1e-9) / threads, 3)}

    if aligned and (ALIGNED, 0) not in done:
        w0, c0 = time.time(), _cpu_seconds()
        block, fit_s = aligned_point(enc, ds, llm, cfg, out, seed)
        wall = time.time() - w0
        rates["eval_s"] = wall - fit_s
        record(reading_rows(block, point(ALIGNED, 0, 0, fit_s, 0.0, wall, _cpu_seconds() - c0, wall - fit_s, "fit",
                                         "token space: readout + item aligner (no LLM pass)", None)))
        log(f"aligned: fit {fit_s:.0f} s, {wall:.0f} s with evaluation")

    item_stage = {}

    def item_dir() -> tuple[str, float]:
        if not item_stage:
            r = run_task("item", enc, ds, llm, out_dir=out / "item", adapter=cfg["adapter"],
                         train=cfg["item_stage"]["train"], max_train_cases=cfg["item_stage"].get("n_items"),
                         seed=seed, progress=False)
            item_stage.update(dir=r["adapter_dir"], seconds=r["train"]["seconds_total"])
        return item_stage["dir"], item_stage["seconds"]

    reached = {}  # variant -> steps its checkpoint holds (estimated from the rows when resuming)
    for r in rows:
        if r["variant"] != ALIGNED:
            reached[r["variant"]] = max(reached.get(r["variant"], 0), int(r["steps"]))
    for variant, target in plan:
        if (variant, target) in done:
            continue
        setup = variant_setup(variant, cfg)
        train = {**cfg["train"], "max_steps": target, "time_budget_s": None}
        new_steps = target - reached.get(variant, 0)
        if deadline is not None:
            left = deadline - time.time() - (rates["eval_s"] or 0.0)
            need = new_steps * (rates["s_per_step"] or 0.0)
            if left <= 0 or (need > left and left < MIN_SHARE * need):
                state["skipped"].append({"variant": variant, "steps": target, "left_s": round(left),
                                         "needed_s": round(need)})
                write_json_atomic(out / LOG, state)
                log(f"skip {variant}:{target}: needs ~{need:.0f} s of training, {max(left, 0):.0f} s left")
                continue
            train["time_budget_s"] = left  # never past the deadline: train for what remains, evaluate where it stopped
        init, stage_s = item_dir() if setup["init"] == "item" else (None, 0.0)
        w0, c0 = time.time(), _cpu_seconds()
        res = run_task("residual", enc, ds, llm, out_dir=out / variant, input=setup["input"], adapter=setup["adapter"],
                       train=train, eval=cfg["eval"], max_train_cases=cfg.get("max_train_cases"),
                       init_adapter=init, seed=seed, progress=False)
        wall, h = time.time() - w0, res["train"]
        eval_s = wall - h["seconds_this_run"]
        rates["eval_s"] = max(rates["eval_s"] or 0.0, eval_s)
        if h["steps"]:
            rates["s_per_step"] = h["seconds_total"] / h["steps"]
        reached[variant] = h["steps"]
        block = R.run_block(res, route=variant, role=_role(cfg, variant))
        loss = block["train"]["loss_last"] if block["train"] else None
        record(reading_rows(block, point(variant, target, h["steps"], h["seconds_total"], stage_s, wall,
                                         _cpu_seconds() - c0, eval_s, h["stopped_by"], describe(variant, cfg), loss)))
        log(f"{variant}: {h['steps']} steps, {h['seconds_total']:.0f} s of training, evaluated in {eval_s:.0f} s")
    state["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    write_json_atomic(out / LOG, state)
    return rows


def plot_curve(rows: list[dict], path: str | os.PathLike, title: str = "", preset: str = ""):
    """One panel per reading: each variant's model value (95% CI) against seconds of training, its
    controls (shuffled, zeroed: the band spans both CIs) shaded, the aligned route as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import pandas as pd

    from recinterp.figures import stamp

    df = pd.DataFrame(rows)
    if not len(df):
        return None
    metrics = list(dict.fromkeys(df["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.2), squeeze=False)
    colours = dict(zip(dict.fromkeys(df["variant"]), plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, m in zip(axes[0], metrics):
        for v, g in df[df.metric == m].groupby("variant", sort=False):
            g = g.sort_values("seconds")
            x, c = g["seconds"].to_numpy(float), colours[v]
            band_lo = g[["shuffled_lo", "zero_lo"]].min(axis=1).to_numpy(float)
            band_hi = g[["shuffled_hi", "zero_hi"]].max(axis=1).to_numpy(float)
            yerr = [g["model"] - g["model_lo"], g["model_hi"] - g["model"]]
            ax.vlines(x, band_lo, band_hi, color=c, alpha=0.3, lw=8)  # each point's control band
            if v == ALIGNED:
                ax.errorbar(x, g["model"], yerr=yerr, fmt="*", ms=14, color=c, capsize=4, label="aligned (fit)")
                continue
            ax.fill_between(x, band_lo, band_hi, color=c, alpha=0.12)
            ax.errorbar(x, g["model"], yerr=yerr, fmt="o-", color=c, capsize=3, label=f"{v} (end to end)")
            for xi, yi, s in zip(x, g["model"], g["steps"]):
                ax.annotate(f"{int(s)}", (xi, yi), textcoords="offset points", xytext=(3, 5), fontsize=7, color=c)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, max(10.0, float(df["seconds"].max())) * 2)  # from 0, with a decade or more in view
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("seconds of training\n(labels: steps; shaded: shuffled / zeroed controls, 95% CIs)")
        ax.set_ylabel(m)
        ax.set_title(f"{m} (n = {int(df[df.metric == m]['n'].max())})")
        ax.legend(fontsize=8, loc="upper left")
    note = df.iloc[-1]
    on = "" if device_of(note) == "cpu" else f"{device_of(note)} + "
    fig.suptitle(f"{title}  —  {on}torch threads {note['threads']}, load {note['load5']} (5 min) on {note['cpus']} cpus")
    stamp(fig, preset)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)
    plt.close(fig)
    return Path(path)


def ensure_encoder(preset: str, ds, encoder: str, root: Path, device: str = "cpu", seed: int = 0, log=print):
    """The encoder's checkpoint under ``root``; trained first, as notebook 02 trains it (the preset's
    ``recommenders`` settings, the same seed and validation prefixes), if it is not there."""
    from recinterp.models import build_encoder, load_checkpoint, save_checkpoint
    from recinterp.models.train import FitConfig, evaluate_rows, expand_prefixes, fit, seed_everything

    try:
        return load_checkpoint(root, ds.name, encoder)
    except FileNotFoundError:
        pass
    cfg = resolve_preset(preset, "recommenders", dataset=ds.name)
    train = ds.train
    if cfg["max_train_rows"] and len(train) > cfg["max_train_rows"]:  # notebook 02's seeded subset
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: cfg["max_train_rows"]]
        train = train.subset(keep.sort().values)
    seed_everything(seed)
    model = build_encoder(encoder, n_items=ds.n_items, **cfg["models"][encoder]).to(device)
    res = fit(model, train, expand_prefixes(ds.val, ds.pad_id), FitConfig(**{**cfg["train"], "seed": seed}), log=log)
    rows = evaluate_rows(model, ds.test, seed=seed)
    metrics = {"test": {**{k: float(v.mean()) for k, v in rows.items()}, "n": len(ds.test)}, "seconds": res.seconds}
    save_checkpoint(model.cpu(), root, ds.name, metrics=metrics, seed=seed)
    log(f"trained {ds.name}/{encoder} in {res.seconds:.0f} s: test {metrics['test']}")
    return load_checkpoint(root, ds.name, encoder)


def curve_table(rows: list[dict]):
    """The CSV as docs/measurements.md shows it: one row per point and reading, "mean [lo, hi]" for the model,
    each control's value, model − control with its paired CI, whether it clears shuffled and zero."""
    import pandas as pd

    def ci(r, k):
        return format_ci({"mean": r[k], "lo": r[f"{k}_lo"], "hi": r[f"{k}_hi"]}, signed=k.startswith("model_minus"))

    return pd.DataFrame([{"route": r["variant"], "steps": int(r["steps"]), "seconds": f"{r['seconds']:.0f}", "reading": r["metric"],
                          "n": int(r["n"]), "model [95% CI]": ci(r, "model"),
                          **{f"{c} (model − it)": f"{r[c]:.3f} ({ci(r, f'model_minus_{c}')})" for c in R.CONTROLS},
                          "clears": "yes" if r["clears"] else "no", "load (5 min)": f"{r['load5']:.1f}",
                          "cpu share": f"{r['cpu_share']:.2f}"} for r in rows])


def parse_deadline(text: str | None, budget_min: float | None, now: dt.datetime | None = None) -> float | None:
    """--deadline HH:MM (today on this machine's clock; tomorrow if already past) or --budget-min."""
    now = now or dt.datetime.now()
    if text and budget_min is not None:
        raise ValueError("give --deadline or --budget-min, not both")
    if budget_min is not None:
        return now.timestamp() + 60 * budget_min
    if not text:
        return None
    try:
        t = dt.datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise ValueError(f"--deadline {text!r}: write the machine clock's HH:MM, e.g. 19:45") from None
    at = dt.datetime.combine(now.date(), t)
    return (at if at > now else at + dt.timedelta(days=1)).timestamp()


def cli(prog: str, doc: str, threads: int = 0) -> argparse.ArgumentParser:
    """The command line the measurement scripts share (curve, readouts, seeds): preset, encoders, output,
    threads, LLM, device."""
    ap = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--checkpoint-dir", required=True, help="where notebook 02 saved the encoders")
    ap.add_argument("--out", required=True, help="output folder (CSV, figure or table, the runs)")
    ap.add_argument("--threads", type=int, default=threads, help="torch CPU threads (0: PyTorch's default)")
    ap.add_argument("--llm", default="", help="HF id, local path or 'tiny' (default: the preset's)")
    ap.add_argument("--device", default="auto")
    return ap


def main(argv=None) -> int:
    from recinterp.data import load_dataset
    from recinterp.llm import load_llm
    from recinterp.models import load_checkpoint

    ap = cli("python -m recinterp.curve", __doc__, threads=2)
    ap.add_argument("--dataset", default="movielens")
    ap.add_argument("--encoder", default="sasrec")
    ap.add_argument("--plan", nargs="+", default=["linear:0,30,100,300", "conv_pool:0,30,100", "linear:1000,3000"],
                    help="VARIANT:STEPS,... in the order to run (variants: %(choices)s)" % {"choices": sorted(VARIANTS)})
    ap.add_argument("--deadline", default=None, help="HH:MM (machine clock) by which the last evaluation must end")
    ap.add_argument("--budget-min", type=float, default=None, help="or: minutes from now")
    ap.add_argument("--no-aligned", action="store_true", help="leave out the aligned route's point")
    ap.add_argument("--train-encoder", action="store_true",
                    help="train the encoder as notebook 02 does if its checkpoint is missing (a fresh GPU machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replot", action="store_true", help="only redraw curve.png from curve.csv and print its table")
    a = ap.parse_args(argv)
    if a.replot:
        out = resolve(a.out)
        from recinterp.figures import markdown_table

        rows = read_rows(out)
        plot_curve(rows, out / FIGURE, title=f"{a.dataset} / {a.encoder}: task 2, two routes", preset=Path(a.preset).stem)
        print(markdown_table(curve_table(rows)))
        return 0
    plan = parse_plan(a.plan)
    deadline = parse_deadline(a.deadline, a.budget_min)
    if a.threads:
        torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset)
    cfg = resolve_preset(a.preset, "residual", dataset=ds.name, encoder=a.encoder)
    llm = load_llm(a.llm or cfg["llm"], device=a.device)
    root = resolve(a.checkpoint_dir)
    enc = (ensure_encoder(a.preset, ds, a.encoder, root, device=str(llm.device)) if a.train_encoder
           else load_checkpoint(root, ds.name, a.encoder))
    rows = run_curve(enc, ds, llm, cfg, resolve(a.out), plan, deadline=deadline, aligned=not a.no_aligned, seed=a.seed,
                     preset=Path(a.preset).stem)
    print(json.dumps({"rows": len(rows), "csv": str(resolve(a.out) / CSV), "figure": str(resolve(a.out) / FIGURE)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
