"""Task 1, sequence recovery: from the representation of a window, list its titles.

Inputs (``input``): ``all`` = the states of all positions (N, 1, L, d; padded positions
zero), the authors' setting (their conv_pool adapter pools them into one soft token;
``linear`` gives one soft token per position); ``last`` = the state at the last valid
position only (N, 1, 1, d), the user representation a recommender scores with.
Target: the normalised titles joined by "; ", oldest first (``target_order="keep"``) or
in a per-epoch random order (``"shuffle"``), which with the 32-token truncation
supervises every title over the epochs instead of only the first three to five.
"""
from __future__ import annotations

import random

import torch

from recinterp import align, probes
from recinterp import prompts as P
from recinterp.cases import Cases, Task, get_split, hidden_states, nouns_meta, register_task
from recinterp.config import LIST_TOKENS

INPUTS = ("all", "last")


@torch.no_grad()
def recovery_cases(enc, split, input: str = "all", dataset: str = "", split_name: str = "",
                   batch_size: int = 2048, nouns: tuple[str, str] | None = None) -> Cases:
    if input not in INPUTS:
        raise ValueError(f"unknown recovery input {input!r}: choose one of {INPUTS}")
    if len(split) == 0:
        raise ValueError("recovery_cases needs a non-empty split")
    seqs, lens = split.seqs.long(), split.lens.long()
    h = hidden_states(enc, seqs, lens, batch_size)  # (N, L, d), zeros at padding
    h_last = h[torch.arange(len(h)), lens - 1]  # (N, d)
    h_mean = h.sum(1) / lens[:, None].float()
    feats = h[:, None] if input == "all" else h_last[:, None, None]
    valid = torch.arange(seqs.shape[1])[None, :] < lens[:, None]
    items = torch.where(valid, seqs, torch.full_like(seqs, -1))
    return Cases("recovery", input, feats.contiguous(), items, items.clone(), {"h_last": h_last, "h_mean": h_mean},
                 {"dataset": dataset, "encoder": getattr(enc, "name", ""), "n_items": enc.n_items, "split": split_name,
                  **nouns_meta(nouns)})


class RecoveryTask(Task):
    """Task 1: the window's titles, as a list (oldest first or shuffled per epoch)."""

    name, inputs = "recovery", INPUTS
    generation_metric = "found"  # how many of the window's titles the text names: 0..L
    layout = "list"  # the aligned route gives each position its own numbered line
    readout_per = "position"
    # "own" distractors do not exist here: every item of the window is a true answer.
    eval_defaults = {"max_new_tokens": LIST_TOKENS}

    def prompts(self, input):
        return P.RECOVERY

    def target(self, ids, titles, order="keep", rng=None):
        if order == "shuffle":
            (rng or random).shuffle(ids)
        elif order != "keep":
            raise ValueError(f"unknown target order {order!r}: choose 'keep' (oldest first) or 'shuffle'")
        return P.list_target([titles[j] for j in ids])

    def answer_texts(self, candidates, titles):
        # the title as the first entry of the list ("Title;"): with shuffled targets, a membership score
        end = P.TITLE_SEP.strip()
        return [[titles[c] + end for c in row] for row in candidates], False

    def build(self, enc, ds, split, input, positions="last", seed=0, held_out_items=0.1):
        sp, used = get_split(ds, split)
        return recovery_cases(enc, sp, input, dataset=ds.name, split_name=used, nouns=(ds.noun, ds.nouns))

    def readout_inputs(self, cases):
        return torch.cat([cases.states["h_last"], cases.states["h_mean"]], 1)

    def readout_pairs(self, cases):
        if cases.input != "all":
            raise ValueError("the per-position readout needs recovery input 'all'")
        return align.position_pairs(cases.features, cases.answers)

    def encoder_scores(self, item_embeddings, cases, candidates):
        return probes.mean_state_scores(item_embeddings, cases.states["h_mean"], candidates)


RECOVERY = register_task(RecoveryTask())
