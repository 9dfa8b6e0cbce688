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

import torch

from recinterp.cases import INPUTS, Cases


@torch.no_grad()
def recovery_cases(enc, split, input: str = "all", dataset: str = "", split_name: str = "",
                   batch_size: int = 2048) -> Cases:
    if input not in INPUTS["recovery"]:
        raise ValueError(f"unknown recovery input {input!r}: choose one of {INPUTS['recovery']}")
    if len(split) == 0:
        raise ValueError("recovery_cases needs a non-empty split")
    enc.eval()
    dev = next(enc.parameters()).device
    seqs, lens = split.seqs.long(), split.lens.long()
    h = torch.cat([enc.hidden_states(seqs[s:s + batch_size].to(dev), lens[s:s + batch_size].to(dev)).float().cpu()
                   for s in range(0, len(seqs), batch_size)])  # (N, L, d), zeros at padding
    h_last = h[torch.arange(len(h)), lens - 1]  # (N, d)
    h_mean = h.sum(1) / lens[:, None].float()
    feats = h[:, None] if input == "all" else h_last[:, None, None]
    valid = torch.arange(seqs.shape[1])[None, :] < lens[:, None]
    items = torch.where(valid, seqs, torch.full_like(seqs, -1))
    return Cases("recovery", input, feats.contiguous(), items, items.clone(), {"h_last": h_last, "h_mean": h_mean},
                 {"dataset": dataset, "encoder": getattr(enc, "name", ""), "n_items": enc.n_items, "split": split_name})
