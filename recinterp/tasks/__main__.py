"""Train one adapter from the command line — the way to use several GPUs.

    accelerate launch -m recinterp.tasks residual --dataset movielens --encoder sasrec \\
        --preset gpu --llm meta-llama/Llama-2-7b-hf \\
        --checkpoint-dir results/gpu/checkpoints --out results/gpu/04_sequence_residual/runs/movielens/sasrec/main

The adapter lands in ``<out>/adapter`` (and ``<out>/checkpoint`` while training, so a stopped
run resumes).  Give the notebook the same folder and it reuses the finished training instead
of repeating it (``run_task`` skips training that is already complete).  Settings come from
the preset's section for the task (``adapter``, ``train``); ``--steps`` overrides the budget.
"""
from __future__ import annotations

import argparse
import json

from recinterp.tasks import TASKS
from recinterp.config import resolve
from recinterp.data import load_dataset
from recinterp.llm import load_llm
from recinterp.models import load_checkpoint
from recinterp.plan import resolve_preset
from recinterp.tasks.run import run_task


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m recinterp.tasks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=sorted(TASKS))
    ap.add_argument("--dataset", required=True, help="movielens, steam, or a folder of your own (name or path)")
    ap.add_argument("--encoder", default="sasrec")
    ap.add_argument("--input", default=None, help="task input (recovery: all|last; residual: pair|diff|two_slots)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--llm", default="", help="HF id, local path or 'tiny' (default: the preset's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", help="LLM weights: auto (bf16 on GPU), bf16, fp32")
    ap.add_argument("--checkpoint-dir", required=True, help="where notebook 02 saved the encoders")
    ap.add_argument("--out", required=True, help="run folder (adapter, checkpoint, cached cases)")
    ap.add_argument("--init-adapter", default=None, help="adapter folder to initialise from (e.g. the item stage)")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's max_steps")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    ds = load_dataset(a.dataset)  # a name or a folder path: settings and checkpoints go by the dataset's name
    # the item stage is part of the residual notebook, so of its preset section
    cfg = resolve_preset(a.preset, "residual" if a.task == "item" else a.task, dataset=ds.name, encoder=a.encoder)
    train = dict(cfg["item_stage"]["train"] if a.task == "item" else cfg["train"])
    if a.steps is not None:
        train["max_steps"] = a.steps
    adapter = cfg["adapter"] if "adapter" in cfg else (cfg.get("adapters") or [{}])[0]
    llm = load_llm(a.llm or cfg["llm"], device=a.device, dtype=a.dtype)
    result = run_task(a.task, load_checkpoint(resolve(a.checkpoint_dir), ds.name, a.encoder), ds,
                      llm, out_dir=resolve(a.out), input=a.input, adapter=adapter, train=train,
                      init_adapter=a.init_adapter, seed=a.seed)
    print(json.dumps({k: v for k, v in result.items() if k not in ("train", "cases")}, indent=1))
    return result


if __name__ == "__main__":
    main()
