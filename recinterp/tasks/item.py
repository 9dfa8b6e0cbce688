"""Item-level alignment: one item embedding -> its title.

A task of its own (can the LLM read *one* vector of the recommender's item space?) and
an optional first stage: its adapter initialises the residual adapter
(``recinterp.adapter.init_from``); notebook 04's ablation measures whether that helps.
"""
from __future__ import annotations

import torch

from recinterp.cases import Cases


@torch.no_grad()
def item_cases(enc, item_ids, dataset: str = "", split: str = "") -> Cases:
    """Cases for items ``item_ids``: features (N, 1, 1, d) = their rows of the item table."""
    ids = torch.as_tensor(item_ids, dtype=torch.long).reshape(-1)
    if ids.numel() == 0:
        raise ValueError("item_cases needs at least one item id")
    if int(ids.min()) < 0 or int(ids.max()) >= enc.n_items:
        raise ValueError(f"item id out of range 0..{enc.n_items - 1}")
    emb = enc.item_embeddings.weight[ids].detach().float().cpu()  # (N, d)
    return Cases("item", "item", emb[:, None, None, :].clone(), ids[:, None].clone(),
                 torch.full((len(ids), 1), -1, dtype=torch.long), {"item": emb},
                 {"dataset": dataset, "encoder": getattr(enc, "name", ""), "n_items": enc.n_items, "split": split})
