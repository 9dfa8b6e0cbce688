"""The aligned route: each task's adapter fitted in token space (recinterp.align), no LLM pass.

    res = run_aligned("residual", enc, ds, llm, out_dir=out / "aligned", eval=cfg["eval"])

Beside ``run_task`` (the paper's end-to-end adapter), this builds, per task:
- ``item``      the item aligner, fitted on the training share of the catalogue; evaluated on
                those items and on the held-out ones it never saw (expected near chance);
- ``recovery``  the structured adapter per position: a readout from each position's state to
                the item at that position, the catalogue aligner, P x k soft tokens laid out as
                a numbered list (``layout="list"``);
- ``residual``  the structured adapter on [h_before, h_after]: a readout to the added item (fitted
                on the training windows, plus, with ``random_appends``, every catalogue item
                appended to real training prefixes: training data only, never the test windows).
``finetune_aligned`` then trains a fitted adapter on with the paper's loss, through the frozen LLM
(the end-to-end route, started from the aligned one instead of from scratch).
Every adapter is evaluated by the same evaluators as the end-to-end route, with the same
controls (shuffled and zeroed soft tokens, popularity) on the same cases, and the adapter-side
accuracies (aligner / readout top-1 among all items) come back beside the LLM's.
Fitted parts are cached in ``out_dir`` (a rerun reloads them).
"""
from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from recinterp import align
from recinterp.adapter import Adapter, load_adapter
from recinterp.cases import Cases, get_task
from recinterp.config import STRUCTURED_TEMPERATURE, IntegrityError, from_options, read_json, seal, state_sha256, verify, write_json_atomic
from recinterp.interpreter import Interpreter
from recinterp.tasks.evaluate import EvalConfig, evaluate_task
from recinterp.tasks.item import held_out_split
from recinterp.tasks.run import build_cases, evaluated_cases, popularity_counts, run_task

ALIGNER, ADAPTER = "aligner", "adapter"


def align_config(d: dict | None) -> align.AlignConfig:
    return from_options(align.AlignConfig, d or {}, "alignment")  # None: every default


def _cached_adapter(folder: Path, d_llm: int, build, settings: dict) -> tuple[Adapter, dict]:
    """Load the adapter saved in ``folder`` (with its fit report), or build and save both.

    ``settings`` (what the fit depends on) are stored in the report; a cache fitted with other
    settings is refitted (seconds), with a warning, rather than silently reused."""
    report_path = folder / "fit.json"
    if report_path.exists():
        try:  # a fitted cache is rebuilt in seconds: a damaged one is refitted, saying which file
            verify(folder, ("fit.json",), f"delete {folder} (it is refitted)")
            report = read_json(report_path)
            if report.get("settings") == settings:
                return load_adapter(folder, d_llm=d_llm), report
            warnings.warn(f"{folder} was fitted with settings {report.get('settings')}, not {settings}: refitting it")
        except IntegrityError as e:
            warnings.warn(f"{e} (by hand). Refitting it now.")
    proj, report = build()
    report["settings"] = settings
    proj.save(folder)
    write_json_atomic(report_path, report)  # written last: its presence means the adapter is complete
    seal(folder, ("fit.json",))
    return proj, report


def _ids_digest(ids: torch.Tensor) -> str:
    return hashlib.sha256(ids.long().numpy().tobytes()).hexdigest()[:16]


def item_table(enc) -> torch.Tensor:
    return enc.item_embeddings.weight[: enc.n_items].detach().float().cpu()


def catalogue_aligner(enc, ds, llm, out_dir: str | os.PathLike, align_cfg: dict | None = None,
                      item_ids: torch.Tensor | None = None) -> tuple[Adapter, dict]:
    """The item aligner fitted on ``item_ids`` (default: the whole catalogue), cached in ``out_dir``."""
    cfg = align_config(align_cfg)
    table = item_table(enc)
    ids = torch.arange(enc.n_items) if item_ids is None else torch.as_tensor(item_ids).long()
    enc_sha = state_sha256(enc)

    def build():
        targets, lens = align.title_token_targets(llm, ds.catalogue.norm_titles[: enc.n_items], cfg.k)
        aligner, rep = align.fit_item_aligner(table[ids], targets[ids], cfg, d_llm=llm.hidden_size, task="item",
                                              encoder=getattr(enc, "name", ""), dataset=ds.name, llm=llm.name,
                                              encoder_sha256=enc_sha)
        rep["title_tokens_mean"] = float(lens.float().mean())
        rep["title_tokens_truncated"] = float((lens == cfg.k).float().mean())
        top1_ids = ids
        if len(ids) > align.TOP1_MAX_ITEMS:  # every fitted item against every title grows with the items' square
            top1_ids = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(cfg.seed))
                           [: align.TOP1_MAX_ITEMS]]
            rep["token_top1_sampled_items"] = len(top1_ids)
        rep["token_top1_fitted_items"] = align.token_top1(aligner, table[top1_ids], targets, top1_ids)
        return aligner, rep

    # what the fit is made from: a retrained encoder or another LLM refits it
    settings = {"align": asdict(cfg), "items": len(ids), "items_sha": _ids_digest(ids), "encoder_sha256": enc_sha,
                "llm": llm.name}
    return _cached_adapter(Path(out_dir) / ALIGNER, llm.hidden_size, build, settings)


def readout_pairs(cases: Cases) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) a readout learns from (``Task.readout_pairs``): per position for recovery, one per case for residual."""
    return get_task(cases.task).readout_pairs(cases)


def fit_readout(cases: Cases, table: torch.Tensor, kind: str = "fitted", max_pairs: int | None = None,
                seed: int = 0, extra: tuple[torch.Tensor, torch.Tensor] | None = None,
                **fit_kw) -> tuple[torch.nn.Linear, dict]:
    """The state -> item-logits readout of the structured adapter.

    ``kind="encoder"``: the encoder's own scores (no fitting); ``"fitted"``: softmax regression
    on the training cases, started from the encoder's scores where they have the right shape.
    ``extra``: more (x, y) training pairs, added to the cases' own (``residual.appended_pairs``).
    """
    if kind not in align.READOUTS:
        raise ValueError(f"unknown readout {kind!r}: choose one of {align.READOUTS}")
    x, y = readout_pairs(cases)
    n_case_pairs = int(len(y))
    if extra is not None:
        x, y = torch.cat([x, extra[0].to(x.dtype)]), torch.cat([y, extra[1].to(y.dtype)])
    if max_pairs is not None and len(y) > max_pairs:
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:max_pairs]
        x, y = x[keep], y[keep]
    try:
        init = align.encoder_readout_weight(table, cases.task, x.shape[1])
    except ValueError:
        init = None
    t0 = time.time()
    if kind == "encoder":
        if init is None:
            raise ValueError(f"no encoder readout for {cases.task} input {cases.input!r}")
        lin = torch.nn.Linear(x.shape[1], table.shape[0])
        with torch.no_grad():
            lin.weight.copy_(init)
            lin.bias.zero_()
    else:
        lin = align.fit_linear_readout(x, y, table.shape[0], init=init, seed=seed, **fit_kw)
    return lin.eval(), {"kind": kind, "n_pairs": int(len(y)), "n_case_pairs": n_case_pairs, "seconds": time.time() - t0,
                        "top1_train": align.readout_top1(lin, x, y), "init": "encoder" if init is not None else "random"}


def run_aligned(task: str, enc, ds, llm, *, out_dir: str | os.PathLike, input: str | None = None,
                align_cfg: dict | None = None, readout: dict | None = None, temperature: float = STRUCTURED_TEMPERATURE,
                layout: str | None = None, eval: dict | None = None, held_out_items: float = 0.1,
                catalogue_dir: str | os.PathLike | None = None, seed: int = 0) -> dict:
    """Fit (or reload) the aligned adapter of ``task`` and evaluate it with every control.

    ``catalogue_dir``: where the whole-catalogue aligner is cached (share it between tasks of
    one encoder and dataset); default ``out_dir``.
    ``readout``: ``kind`` (fitted | encoder), ``max_pairs``, ``random_appends`` (residual: every
    catalogue item appended this many times to real training prefixes, ``residual.appended_pairs``;
    the real windows name only a fraction of a large catalogue), and the fit's epochs, lr, batch_size.
    """
    out = Path(out_dir)
    readout = dict(readout or {})
    ecfg = EvalConfig.from_dict(eval or {})
    t = get_task(task)
    input = input or t.inputs[0]
    titles = ds.catalogue.norm_titles
    enc_name = getattr(enc, "name", "")
    table = item_table(enc)
    t0 = time.time()
    result = {"task": task, "input": input, "encoder": enc_name, "dataset": ds.name, "route": "aligned",
              "temperature": temperature}

    if t.aligned_route == "aligner":  # the item aligner on the items build_cases calls "train"
        train_ids = held_out_split(ds.n_items, held_out_items, seed)["train"]
        adapter, fit = catalogue_aligner(enc, ds, llm, out, align_cfg, train_ids)
        result["fit"] = {"aligner": fit}
    else:
        aligner, fit = catalogue_aligner(enc, ds, llm, catalogue_dir or out, align_cfg)
        tr = build_cases(task, enc, ds, "train", input, "last", out / "cases" / "train", seed=seed)
        P = int(tr.features.shape[2])
        layout = layout or t.layout

        def build():
            ro = dict(readout)
            appends = int(ro.pop("random_appends", 0) or 0)
            extra = t.extra_readout_pairs(enc, ds.train, appends, input, seed=seed) if appends else None
            lin, rep = fit_readout(tr, table, seed=seed, extra=extra, **ro)
            rep["random_appends"] = appends
            proj = align.structured_adapter(lin, table, aligner, n_positions=P, temperature=temperature,
                                            layout=layout, input=input, task=task, encoder=enc_name,
                                            dataset=ds.name, llm=llm.name, encoder_sha256=state_sha256(enc))
            return proj, {"readout": rep}

        settings = {"readout": readout, "temperature": temperature, "layout": layout, "input": input, "seed": seed,
                    "aligner": fit.get("settings")}
        adapter, rfit = _cached_adapter(out / ADAPTER, llm.hidden_size, build, settings)
        result["fit"] = {"aligner": fit, **rfit}
    result["fit"]["seconds_total"] = time.time() - t0  # what this call spent fitting (0-ish when reloaded)
    result["adapter_dir"] = str(out / (ALIGNER if t.aligned_route == "aligner" else ADAPTER))
    if not eval:
        return result

    interp = Interpreter(llm, adapter)
    pop = popularity_counts(ds)  # as run_task counts it
    result["eval"], result["cases"] = {}, {}
    for sp in t.eval_splits(ecfg.split):
        cases = result["cases"][sp] = evaluated_cases(task, enc, ds, sp, input, "last", out, ecfg.n_cases, seed)
        res = evaluate_task(interp, cases, titles, popularity=pop, item_embeddings=enc.item_embeddings.weight,
                            seed=seed, **ecfg.evaluate_kwargs())
        res["adapter_side"] = adapter_side(adapter, cases, table, llm, titles, fit)
        result["eval"][sp] = res
    return result


def finetune_aligned(task: str, enc, ds, llm, *, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike,
                     train: dict | None = None, eval: dict | None = None, seed: int = 0, progress: bool = False) -> dict:
    """The paper's loss from the aligned start: the structured adapter saved in ``adapter_dir`` (its
    readout and aligner; the item table stays the encoder's, a buffer) trained on through the frozen
    LLM by ``run_task`` (resumable like every end-to-end run), then evaluated with ``eval``.  Given the
    aligned route's ``eval``, both adapters read the same cases and controls, so before and after pair
    up case by case (``recinterp.report.before_after``)."""
    c = load_adapter(adapter_dir, d_llm=llm.hidden_size).cfg
    if c.kind != "structured":
        raise ValueError(f"{adapter_dir} holds a {c.kind!r} adapter: fine-tuning starts from the aligned route's "
                         f"structured adapter")
    if c.task != task:
        raise ValueError(f"{adapter_dir} was fitted for task {c.task!r}, not {task!r}")
    shape = {k: getattr(c, k) for k in ("kind", "n_tokens", "hidden", "standardize", "n_items", "d_item",
                                         "temperature", "layout")}
    res = run_task(task, enc, ds, llm, out_dir=out_dir, input=c.input, adapter=shape, train=train, eval=eval,
                   init_adapter=adapter_dir, seed=seed, progress=progress)
    res["start"] = str(adapter_dir)
    return res


@torch.no_grad()
def adapter_side(adapter: Adapter, cases: Cases, table: torch.Tensor, llm, titles: list[str], fit: dict) -> dict:
    """What the adapter alone gets right on these cases, before the LLM reads anything:
    the aligner's nearest title in token space (item), the readout's top-1 among all items."""
    t = get_task(cases.task)
    if t.aligned_route == "aligner":
        k = adapter.cfg.n_tokens
        targets, _ = align.title_token_targets(llm, titles[: table.shape[0]], k)
        ids = cases.answers[:, 0]
        return {"token_top1": align.token_top1(adapter, table[ids], targets, ids), "n": len(ids)}
    x, y = t.readout_pairs(cases)
    ro = adapter.layers.readout
    return {"readout_top1": align.readout_top1(ro, x, y), "n": int(len(y)), "per": t.readout_per}
