"""The RecInterpreter tasks: which states feed which placeholder, and which text is the answer.

- ``item``      one item embedding -> its title (alignment; optional first stage)
- ``recovery``  task 1: a window's states -> the titles of the window
- ``residual``  task 2: states before/after the last item -> that item's title

    cases = residual_cases(enc, ds.test, input="pair", dataset="movielens")   # encoder run once
    res = evaluate_residual(interp, cases, ds.catalogue.norm_titles, popularity=pop)
    # or all of it (cases cached, adapter trained / resumed, evaluated with controls):
    res = run_task("residual", enc, ds, llm, input="pair", out_dir=..., adapter=..., train=..., eval=...)
"""
from recinterp.cases import INPUTS, TASKS, Cases, cached, make_examples, prompts_for
from recinterp.tasks.evaluate import (EvalConfig, evaluate, evaluate_item, evaluate_recovery, evaluate_residual,
                                      generation_eval, ranking_eval)
from recinterp.tasks.item import item_cases
from recinterp.tasks.recovery import recovery_cases
from recinterp.tasks.residual import residual_cases, residual_features
from recinterp.tasks.run import build_cases, get_split, run_task, subsample

__all__ = ["EvalConfig", "TASKS", "INPUTS", "Cases", "cached", "make_examples", "prompts_for", "item_cases", "recovery_cases",
           "residual_cases", "residual_features", "evaluate", "evaluate_item",
           "evaluate_recovery", "evaluate_residual", "generation_eval", "ranking_eval", "build_cases", "get_split",
           "run_task", "subsample"]
