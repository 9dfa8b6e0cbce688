"""The RecInterpreter tasks: which states feed which placeholder, and which text is the answer.

- ``item``      one item embedding -> its title (alignment; optional first stage)
- ``recovery``  task 1: a window's states -> the titles of the window
- ``residual``  task 2: states before/after the last item -> that item's title

    cases = residual_cases(enc, ds.test, input="pair", dataset="movielens")   # encoder run once
    res = evaluate_task(interp, cases, ds.catalogue.norm_titles, popularity=pop)   # the task's defaults
    # or all of it (cases cached, adapter trained / resumed, evaluated with controls):
    res = run_task("residual", enc, ds, llm, input="pair", out_dir=..., adapter=..., train=..., eval=...)
"""
from recinterp.cases import TASKS, Cases, Task, cached, get_split, get_task, make_examples, prompts_for, register_task
from recinterp.tasks.evaluate import EvalConfig, evaluate, evaluate_task, generation_eval, ranking_eval
from recinterp.tasks.item import ITEM, item_cases  # importing a task's module registers it
from recinterp.tasks.recovery import RECOVERY, recovery_cases
from recinterp.tasks.residual import RESIDUAL, residual_cases, residual_features
from recinterp.tasks.run import build_cases, run_task, subsample

__all__ = ["EvalConfig", "TASKS", "Task", "register_task", "get_task", "ITEM", "RECOVERY", "RESIDUAL", "Cases", "cached",
           "make_examples", "prompts_for", "item_cases", "recovery_cases",
           "residual_cases", "residual_features", "evaluate", "evaluate_task", "generation_eval", "ranking_eval", "build_cases", "get_split",
           "run_task", "subsample"]
