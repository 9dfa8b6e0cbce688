"""A world where the paper's route must light: the end-to-end adapter proven on a case it can learn.

The paper's route trains an adapter (recommender vector -> soft tokens) through the frozen LLM's
loss alone.  Before reading any MovieLens number of that route, this world asks whether the
machinery can teach an LLM to *name* an item at all:

- 16 items with one-word titles ("Apple", "River", ...), each a random N(0, 1) vector of width 64
  (well separated, so a linear map can carry them);
- the item task's prompts ("Here is a movie: <emb>. What is its title?"), the paper's ``linear``
  adapter writing 1 soft token, the embedded SmolLM2-135M frozen;
- a few dozen AdamW steps of ``recinterp.train_adapter`` (one step = the whole catalogue);
- greedy answers on the held-out phrasing, scored beside the shuffled and zeroed controls.

    from recinterp.llm import load_llm
    from recinterp.must_light import run_must_light
    res = run_must_light(load_llm(), steps=40)       # ~1 min on 2 CPU cores
    res["generation"]["model"]["hit"]                 # {mean, lo, hi, n}: answers that name the item

``out_norm=False, norm_init=False`` is the route as the authors build it (tests/test_must_light.py runs
it); the defaults add the scale fixes (soft tokens rescaled to the LLM's own token-embedding norm from a
norm-matched start), which the real catalogue's tiny item embeddings need (``recinterp.evidence``).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch
import torch.nn as nn

from recinterp.adapter import build_adapter, fit_input_stats, llm_token_norm, match_output_norm
from recinterp.controls import CONTROLS
from recinterp.interpreter import Interpreter
from recinterp.tasks.evaluate import generation_eval
from recinterp.tasks.item import item_cases
from recinterp.train_adapter import TrainConfig, train_adapter

TITLES = ("Apple", "River", "Tiger", "Piano", "Castle", "Rocket", "Garden", "Dragon",
          "Forest", "Island", "Candle", "Mirror", "Thunder", "Window", "Bridge", "Shadow")


@dataclass
class WorldEncoder:
    """The least a task needs of an encoder: an item table and a name."""
    item_embeddings: nn.Embedding
    name: str = "world"

    @property
    def n_items(self) -> int:
        return self.item_embeddings.num_embeddings


def must_light_world(n_items: int = 16, d: int = 64, seed: int = 0):
    """(encoder, titles, cases): ``n_items`` one-word titles, N(0, 1) item vectors, one item case each."""
    if not 2 <= n_items <= len(TITLES):
        raise ValueError(f"the must-light world has 2..{len(TITLES)} items, got {n_items}")
    g = torch.Generator().manual_seed(seed)
    enc = WorldEncoder(nn.Embedding.from_pretrained(torch.randn(n_items, d, generator=g)))
    titles = list(TITLES[:n_items])
    return enc, titles, item_cases(enc, range(n_items), dataset="", split="train")


def run_must_light(llm, steps: int = 40, lr: float = 1e-3, out_norm: bool = True, norm_init: bool = True,
                   standardize: bool = False,
                   n_tokens: int = 1, n_items: int = 16, seed: int = 0, eval_every: int | None = None,
                   progress: bool = False) -> dict:
    """Train the paper's ``linear`` adapter on the must-light world and read its answers with controls.

    Returns {"generation": generation_eval's result (model / shuffled / zero, hit with CI, paired
    differences), "curve": [(step, hit of model, shuffled, zero)] when ``eval_every``, "train": history,
    "soft_norm", "llm_token_norm"}."""
    enc, titles, cases = must_light_world(n_items, seed=seed)
    token_norm = llm_token_norm(llm)
    adapter = build_adapter(kind="linear", d_in=cases.features.shape[-1], d_llm=llm.hidden_size, n_tokens=n_tokens,
                            standardize=standardize, out_norm=token_norm if out_norm else 0.0,
                            input="item", task="item", encoder=enc.name, llm=llm.name)
    fit_input_stats(adapter, cases.features)
    if norm_init:
        match_output_norm(adapter, cases.features[:, 0], token_norm)
    interp = Interpreter(llm, adapter)
    cfg = dict(lr=lr, batch_size=n_items, warmup_steps=0, warmup_start=1.0, ckpt_every=0, seed=seed)
    read = dict(controls=CONTROLS, max_new_tokens=16, batch_size=n_items, seed=seed)
    curve, history = [], []
    with tempfile.TemporaryDirectory() as tmp:  # a curve's segments resume one run (optimiser state kept)
        for stop in sorted({*(range(0, steps, eval_every) if eval_every else ()), steps}):
            history = train_adapter(interp, cases, titles, TrainConfig(max_steps=stop, **cfg), out_dir=tmp,
                                    progress=progress)["history"]
            gen = generation_eval(interp, cases, titles, **read)
            curve.append({"step": stop, **{c: gen[c]["hit"]["mean"] for c in ("model", *CONTROLS)}})
    with torch.no_grad():
        soft = interp.adapter(cases.features[:, 0].to(llm.device))
    return {"generation": gen, "curve": curve, "train": history, "n_items": n_items,
            "soft_norm": float(soft.float().norm(dim=-1).mean()), "llm_token_norm": token_norm,
            "settings": {"steps": steps, "lr": lr, "out_norm": out_norm, "norm_init": norm_init, "standardize": standardize,
                         "n_tokens": n_tokens, "seed": seed}}
