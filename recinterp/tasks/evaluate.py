"""Evaluation of a trained adapter on one task, always beside its controls.

    res = evaluate_task(interp, test_cases, titles, popularity=pop, item_embeddings=E, readout=ro)
    write_json_atomic(out / "metrics.json", res)   # per-case arrays are numpy: the writer converts them

Two families of measures, each with the number of cases and bootstrap 95% CIs:

1. **Free-text generation** (the paper's metric): batched greedy decoding with a
   repetition control; per case the number of true titles found in the text
   (recinterp.textmatch: literal, case-insensitive, normalised, longest title first).
   Recovery: the count 0..10, its distribution and mean.  Residual / item: the hit rate
   (the true title is found) and the exact-answer rate.  Controls: the same decoding
   with shuffled soft tokens (another case's features) and zero soft tokens, and a
   popularity answer (the most popular titles, as many as the case has answers).
2. **Likelihood ranking** (recinterp.probes) per candidate sampler, with the shuffled
   and zero controls, the popularity ranking, and encoder-space references.

Everything returned is plain dicts, lists and numpy arrays (recinterp.config.write_json_atomic writes them).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from recinterp import probes
from recinterp.cases import Cases, check_titles, get_task
from recinterp.config import MAX_NEW_TOKENS, REPETITION_PENALTY, from_options
from recinterp.controls import (ALL_CONTROLS, CONTROLS, check_controls, paired_differences, popularity_answers,
                                popularity_scores, run_conditions)
from recinterp.metrics import summarize
from recinterp.textmatch import count_titles_found, is_title

@dataclass
class EvalConfig:
    """The evaluation settings of a preset's ``eval`` section; None: the task's own default."""
    split: str = "test"  # the cases evaluated (item alignment: always its train and held-out items)
    n_cases: int | None = None  # a seeded sample of the split (None: every case)
    samplers: tuple | None = None  # candidate samplers of the ranking probe (None: the task's, see evaluate_*)
    n_distractors: int | None = None  # distractors per true answer (None: 19; residual 9)
    controls: tuple = CONTROLS  # soft-token controls of the probe
    generate: bool = True  # also decode answers (the paper's free-text metric)
    gen_controls: tuple = ALL_CONTROLS  # controls of the generated answers
    max_new_tokens: int | None = None  # None: the task's (config.TITLE_TOKENS for one title, LIST_TOKENS for a list)
    repetition_penalty: float = REPETITION_PENALTY
    no_repeat_ngram_size: int = 0
    reduce: str = "sum"  # candidate score: summed (the answer's log-probability) or per-token mean
    prompt_index: int = 0  # which held-out phrasing
    batch_size: int = 16  # generation batch
    max_pairs: int = 128  # (case, candidate) pairs per scoring forward

    @classmethod
    def from_dict(cls, d: dict) -> "EvalConfig":
        return from_options(cls, d, "evaluation")

    def evaluate_kwargs(self) -> dict:
        """The keywords of ``evaluate`` that are set (lists as tuples); split and n_cases are the runner's."""
        return {f.name: tuple(v) if isinstance(v, list) else v for f in fields(self)
                if f.name not in ("split", "n_cases") and (v := getattr(self, f.name)) is not None}


def _answer_titles(cases: Cases, titles: list[str]) -> list[list[str]]:
    return [[titles[a] for a in row if a >= 0] for row in cases.answers.tolist()]


def generation_eval(interp, cases: Cases, titles: list[str], popularity: np.ndarray | None = None,
                    controls=ALL_CONTROLS, max_new_tokens: int = MAX_NEW_TOKENS, batch_size: int = 16,
                    repetition_penalty: float = REPETITION_PENALTY, no_repeat_ngram_size: int = 0, prompt_index: int = 0,
                    seed: int = 0, keep_texts: int | None = None) -> dict:
    """Greedy answers + title counting, for the model and each control (same cases).

    ``texts`` (all of them unless ``keep_texts``) come back with the counts, for the
    notebook's examples with the recovered titles highlighted.
    """
    controls = check_controls(controls, ALL_CONTROLS)
    if "popularity" in controls and popularity is None:
        raise ValueError("the popularity control needs item popularity counts")
    N = len(cases)
    truth = _answer_titles(cases, titles)
    kw = dict(max_new_tokens=max_new_tokens, batch_size=batch_size, repetition_penalty=repetition_penalty,
              no_repeat_ngram_size=no_repeat_ngram_size)
    texts = run_conditions(interp, cases, titles, lambda ex, control: interp.generate(ex, control=control, **kw),
                           [c for c in controls if c != "popularity"], prompt_index, seed)
    if "popularity" in controls:
        texts["popularity"] = popularity_answers(popularity, truth, titles)

    out = {"n": N, "max_answers": int(cases.answers.shape[1]), "decoding": {"greedy": True, **kw}}
    per = {}
    for cond, tx in texts.items():
        counts = np.array([count_titles_found(t, tr) for t, tr in zip(tx, truth)], float)
        res = {"texts": list(tx[:keep_texts])}
        if get_task(cases.task).generation_metric == "found":  # how many of the window's titles the text names: 0..L
            dist = np.bincount(counts.astype(int), minlength=cases.answers.shape[1] + 1)
            res.update(found=summarize(counts), distribution=(dist / max(N, 1)).tolist(), per_case=counts)
        else:  # hit: the true title occurs in the answer; exact: the answer is the title
            exact = np.array([is_title(t, tr[0]) for t, tr in zip(tx, truth)], float)
            res.update(hit=summarize(counts), exact=summarize(exact), per_case=counts)
        per[cond] = counts
        out[cond] = res
    out.update(paired_differences(per))
    return out


def ranking_eval(interp, cases: Cases, titles: list[str], sampler: str = "random", n_distractors: int = 19,
                 popularity: np.ndarray | None = None, item_embeddings: torch.Tensor | None = None,
                 readout=None, controls=CONTROLS, reduce: str = "sum", prompt_index: int = 0,
                 seed: int = 0, max_pairs: int = 128) -> dict:
    """The LLM ranking probe for one sampler + popularity / encoder / readout references."""
    n_items = int(cases.meta.get("n_items") or len(titles))
    cand, n_true, info = probes.sample_candidates(cases, n_distractors, sampler, n_items, popularity, seed)
    A = cases.answers.shape[1]
    out = probes.llm_ranking(interp, cases, titles, cand, n_true, controls, reduce, prompt_index, seed, max_pairs)
    out["candidates"] = info
    refs = {}
    if popularity is not None:
        refs["popularity"] = popularity_scores(popularity, cand)
    enc_scores = None if item_embeddings is None else get_task(cases.task).encoder_scores(item_embeddings, cases, cand)
    if enc_scores is not None:
        refs["encoder"] = enc_scores
    if readout is not None:
        refs["readout"] = readout.candidate_scores(probes.readout_inputs(cases), cand)
    for name, sc in refs.items():
        out[name] = probes.scored(sc, n_true, A)
    out.update(paired_differences({"model": out["model"]["per_case"],
                                   **{name: out[name]["per_case"] for name in refs}}))
    return out


def evaluate(interp, cases: Cases, titles: list[str], *, samplers=("random",), n_distractors: int = 19,
             popularity=None, item_embeddings=None, readout=None, controls=CONTROLS,
             generate: bool = True, gen_controls=ALL_CONTROLS, max_new_tokens: int = MAX_NEW_TOKENS,
             repetition_penalty: float = REPETITION_PENALTY, no_repeat_ngram_size: int = 0, reduce: str = "sum",
             prompt_index: int = 0, seed: int = 0, batch_size: int = 16, max_pairs: int = 128) -> dict:
    """Generation (optional) + one ranking probe per sampler, all with controls."""
    check_titles(cases, titles)
    interp.eval()
    out = {"task": cases.task, "input": cases.input, "n": len(cases), "meta": dict(cases.meta),
           "adapter": dict(vars(interp.adapter_cfg)), "llm": interp.llm.describe()}
    if generate:
        gc = [c for c in gen_controls if c != "popularity" or popularity is not None]
        out["generation"] = generation_eval(interp, cases, titles, popularity, gc, max_new_tokens, batch_size,
                                            repetition_penalty, no_repeat_ngram_size, prompt_index, seed)
    out["ranking"] = {s: ranking_eval(interp, cases, titles, s, n_distractors, popularity, item_embeddings, readout,
                                      controls, reduce, prompt_index, seed, max_pairs) for s in samplers}
    return out


def evaluate_task(interp, cases, titles, **kw) -> dict:
    """``evaluate`` with the defaults of the cases' task (``Task.eval_defaults``; the popularity-matched
    sampler joins when popularity counts are given); what ``kw`` names wins."""
    for k, v in get_task(cases.task).evaluate_kwargs(kw.get("popularity") is not None).items():
        kw.setdefault(k, v)
    return evaluate(interp, cases, titles, **kw)

