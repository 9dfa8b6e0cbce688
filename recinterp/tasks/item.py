"""Item-level alignment: one item embedding -> its title.

A task of its own (can the LLM read *one* vector of the recommender's item space?) and
an optional first stage: its adapter initialises the residual adapter
(``recinterp.adapter.init_from``); notebook 04's ablation measures whether that helps.
"""
from __future__ import annotations

import torch

from recinterp import prompts as P
from recinterp.cases import Cases, Task, nouns_meta, register_task
from recinterp.config import TITLE_TOKENS


@torch.no_grad()
def item_cases(enc, item_ids, dataset: str = "", split: str = "", nouns: tuple[str, str] | None = None) -> Cases:
    """Cases for items ``item_ids``: features (N, 1, 1, d) = their rows of the item table."""
    ids = torch.as_tensor(item_ids, dtype=torch.long).reshape(-1)
    if ids.numel() == 0:
        raise ValueError("item_cases needs at least one item id")
    if int(ids.min()) < 0 or int(ids.max()) >= enc.n_items:
        raise ValueError(f"item id out of range 0..{enc.n_items - 1}")
    emb = enc.item_embeddings.weight[ids].detach().float().cpu()  # (N, d)
    return Cases("item", "item", emb[:, None, None, :].clone(), ids[:, None].clone(),
                 torch.full((len(ids), 1), -1, dtype=torch.long), {"item": emb},
                 {"dataset": dataset, "encoder": getattr(enc, "name", ""), "n_items": enc.n_items, "split": split,
                  **nouns_meta(nouns)})


def held_out_split(n_items: int, share: float = 0.1, seed: int = 0) -> dict[str, torch.Tensor]:
    """The catalogue split of item alignment: {"train": ids the adapter learns, "held_out": a seeded
    ``share`` of the catalogue it never sees}, each sorted."""
    perm = torch.randperm(n_items, generator=torch.Generator().manual_seed(seed))
    n_out = int(round(share * n_items))
    return {"train": perm[n_out:].sort().values, "held_out": perm[:n_out].sort().values}


class ItemTask(Task):
    """Item alignment: one item embedding -> its title; no user split (``train`` / ``held_out`` items)."""

    name, inputs = "item", ("item",)
    aligned_route = "aligner"  # the aligned route is the item aligner alone
    readout_reference = False  # the item table itself is the reference
    eval_defaults = {"max_new_tokens": TITLE_TOKENS}

    def prompts(self, input):
        return P.ITEM

    def build(self, enc, ds, split, input, positions="last", seed=0, held_out_items=0.1):
        ids = held_out_split(ds.n_items, held_out_items, seed).get(split)
        if ids is None:
            raise ValueError(f"item cases come from split 'train' or 'held_out', not {split!r}")
        return item_cases(enc, ids, dataset=ds.name, split=split, nouns=(ds.noun, ds.nouns))

    def eval_splits(self, split):
        return ["train", "held_out"]  # the items it learned and those it never saw

    def readout_inputs(self, cases):
        return cases.states["item"]


ITEM = register_task(ItemTask())
