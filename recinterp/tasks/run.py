"""One call per (task, encoder, dataset, input): cases -> adapter -> training -> evaluation.

    cfg = resolve_preset("cpu", "residual", dataset="movielens", encoder="sasrec")   # recinterp.plan
    item = run_task("item", enc, ds, llm, out_dir=out / "item", adapter=cfg["adapter"], train=cfg["item_stage"]["train"])
    res = run_task("residual", enc, ds, llm, input="pair", out_dir=out / "sasrec_pair", adapter=cfg["adapter"],
                   train=cfg["train"], eval=cfg["eval"], init_adapter=item["adapter_dir"])

Everything lands in ``out_dir``: cached cases (``cases/<split>``), the training
checkpoint and final adapter (a rerun resumes or, when finished, skips training), and
the returned dict (history, evaluation) that a notebook writes into its metrics.json.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from recinterp import probes
from recinterp.adapter import (build_adapter, fit_input_stats, init_from, least_squares_init, llm_token_norm,
                               load_adapter, match_output_norm)
from recinterp.cases import Cases, cached, get_task, nouns_meta
from recinterp.config import state_sha256
from recinterp.interpreter import Interpreter
from recinterp.models.train import Popularity
from recinterp.tasks.evaluate import EvalConfig, evaluate_task
from recinterp.train_adapter import FINAL, TrainConfig, train_adapter


def subsample(cases: Cases, n: int | None, seed: int) -> Cases:
    if n is None or n >= len(cases):
        return cases
    idx = torch.randperm(len(cases), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return cases.subset(idx)


def build_cases(task: str, enc, ds, split: str, input: str | None = None, positions: str = "last",
                cache_dir: str | os.PathLike | None = None, held_out_items: float = 0.1, seed: int = 0) -> Cases:
    """Cases of ``task`` on a split, cached under ``cache_dir`` (the encoder runs once).

    Item alignment has no user split: ``split`` is "train" (items the adapter learns) or
    "held_out" (a seeded ``held_out_items`` share of the catalogue it never sees).
    """
    t = get_task(task)
    input = input or t.inputs[0]
    made_from = {"encoder_sha256": state_sha256(enc)} if cache_dir is not None else None
    cases = cached(cache_dir, lambda: t.build(enc, ds, split, input, positions, seed, held_out_items), made_from)
    cases.meta.update(nouns_meta((ds.noun, ds.nouns)))  # the dataset's wording, also for cases cached without it
    return cases


def popularity_counts(ds) -> np.ndarray:
    """(n_items,) training counts (history + next items): the popularity control and sampler of every evaluation."""
    return Popularity.from_split(ds.train, ds.n_items).counts.double().numpy()


def evaluated_cases(task: str, enc, ds, split: str, input: str, positions: str, out_dir: str | os.PathLike,
                    n_cases: int | None, seed: int = 0) -> Cases:
    """The cases a run in ``out_dir`` evaluates on ``split``: cached under ``out_dir/cases/<split>``, a seeded
    subsample of ``n_cases``.  ``run_task`` and ``run_aligned`` return them as ``result["cases"][split]``."""
    return subsample(build_cases(task, enc, ds, split, input, positions, Path(out_dir) / "cases" / split, seed=seed),
                     n_cases, seed)


def run_task(task: str, enc, ds, llm, *, out_dir: str | os.PathLike, input: str | None = None,
             adapter: dict | None = None, train: dict | None = None, eval: dict | None = None,
             max_train_cases: int | None = None, init_adapter: str | os.PathLike | None = None,
             readout: dict | None = None, encoder_name: str | None = None, seed: int = 0,
             progress: bool = True) -> dict:
    """Train (or resume / reuse) the adapter for one task and evaluate it with every control."""
    out = Path(out_dir)
    adapter, eval = dict(adapter or {}), dict(eval or {})
    t = get_task(task)
    input = input or adapter.pop("input", None) or t.inputs[0]
    adapter.pop("input", None)
    positions = adapter.pop("positions", "last")
    norm_init = adapter.pop("norm_init", False)  # a fresh linear / conv_pool adapter starts at the LLM's token norm
    ls_init = adapter.pop("ls_init", False)  # ... or at the least-squares map to the answers' title tokens
    titles = ds.catalogue.norm_titles
    encoder_name = encoder_name or getattr(enc, "name", "")

    tr_cases = subsample(build_cases(task, enc, ds, "train", input, positions, out / "cases" / "train", seed=seed),
                         max_train_cases, seed)
    P = tr_cases.features.shape[2]
    cfg = {"kind": "linear", "n_tokens": 1, **adapter}
    if cfg.get("out_norm") == "llm":  # the LLM's own token scale (recinterp.adapter.llm_token_norm)
        cfg["out_norm"] = llm_token_norm(llm)
    proj = build_adapter(**cfg, d_in=tr_cases.features.shape[-1], d_llm=llm.hidden_size, n_positions=P,
                         input=input, task=task, encoder=encoder_name, dataset=ds.name, llm=llm.name,
                         encoder_sha256=state_sha256(enc))
    if init_adapter is not None:
        init_from(proj, load_adapter(init_adapter, d_llm=llm.hidden_size))
    if proj.cfg.kind in ("linear", "conv_pool"):  # its input statistics, from this task's training cases
        fit_input_stats(proj, tr_cases.features)  # (a resumed run reloads the checkpoint's own)
        if ls_init and init_adapter is None:
            from recinterp.align import title_token_targets

            targets, _ = title_token_targets(llm, [titles[int(a)] for a in tr_cases.answers[:, 0]], k=proj.cfg.n_tokens)
            least_squares_init(proj, tr_cases.features[:, 0], targets)
        elif norm_init and init_adapter is None:
            match_output_norm(proj, tr_cases.features, proj.cfg.out_norm or llm_token_norm(llm))
    tcfg = TrainConfig.from_dict({**(train or {}), "seed": (train or {}).get("seed", seed)})
    interp = Interpreter(llm, proj, max_target_tokens=tcfg.max_target_tokens)
    # resumes from out_dir/checkpoint; a finished run only reloads its checkpoint (0 new steps)
    history = train_adapter(interp, tr_cases, titles, tcfg, out_dir=out, progress=progress)
    result = {"task": task, "input": input, "encoder": encoder_name, "dataset": ds.name,
              "adapter_dir": str(out / FINAL), "train": history}
    if not eval:
        return result

    pop = popularity_counts(ds)
    ro = None
    if readout is not None and t.readout_reference:
        ro = probes.reference_readout(tr_cases, ds.n_items, seed=seed, **readout)
    ecfg = EvalConfig.from_dict(eval)
    kw = ecfg.evaluate_kwargs()
    result["eval"], result["cases"] = {}, {}
    for sp in t.eval_splits(ecfg.split):
        cases = result["cases"][sp] = evaluated_cases(task, enc, ds, sp, input, positions, out, ecfg.n_cases, seed)
        result["eval"][sp] = evaluate_task(interp, cases, titles, popularity=pop,
                                           item_embeddings=enc.item_embeddings.weight, readout=ro, seed=seed, **kw)
    return result
