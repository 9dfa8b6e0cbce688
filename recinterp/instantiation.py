"""Task 3, ideal-item instantiation: let the LLM name an item that may not exist.

DreamRec generates, for a history, the embedding of an oracle next item.  To make the
LLM name it we reuse the task-2 route: append the item to the history *as an embedding*,
take the recommender's representation before and after, and ask the residual adapter's
LLM which item was added.  The same route instantiates a real item (SASRec's top-1, a
random item), which gives both the comparison the paper makes and a fidelity control:
for a real item we know what the LLM should have said.

Windows follow task 2 exactly: ``after`` = the last ``max_len`` items of history + [new],
``before`` = ``after`` without its last item.  For a full history of 10 the oldest item
falls out of both, as it does in the data's sliding windows.
"""
from __future__ import annotations

import torch

from .models import SeqEncoder


def append_embedding(enc: SeqEncoder, ids: torch.Tensor, lens: torch.Tensor, item: torch.Tensor):
    """Item embeddings of (history + new item), window-shifted; also the ``before`` window.

    ids (B, L) right-padded, lens (B,) in 1..L, item (B, d) in the encoder's item space.
    Returns x_before (B, L, d), lens_before (B,), x_after (B, L, d), lens_after (B,).
    """
    B, L = ids.shape
    if item.shape != (B, enc.d):
        raise ValueError(f"item must be ({B}, {enc.d}) embeddings in the encoder's item space, got {tuple(item.shape)}")
    ids, lens = enc.check_ids(ids, lens)
    x = enc.item_embeddings(ids)  # (B, L, d); padded rows are the zero padding vector
    full = lens == L
    # A full window drops its oldest item to make room (as sliding windows do).
    x = torch.where(full.view(B, 1, 1), torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], 1), x)
    lens_after = torch.where(full, lens, lens + 1)
    pos = (lens_after - 1).view(B, 1, 1).expand(B, 1, enc.d)
    x_after = x.scatter(1, pos, item.to(x.dtype).unsqueeze(1))
    lens_before = lens_after - 1
    x_before = x_after.clone()
    x_before.scatter_(1, pos, torch.zeros_like(item).to(x.dtype).unsqueeze(1))
    return x_before, lens_before, x_after, lens_after


@torch.no_grad()
def residual_states(enc: SeqEncoder, ids: torch.Tensor, lens: torch.Tensor, item: torch.Tensor):
    """Hidden states before/after appending ``item``: (h_before, lens_before, h_after, lens_after).

    ``lens_before`` >= 1 always: a history keeps at least one item in ``before`` (max_len >= 2).
    """
    x_b, l_b, x_a, l_a = append_embedding(enc, ids, lens, item)
    return enc.hidden_states_from_embeddings(x_b, l_b), l_b, enc.hidden_states_from_embeddings(x_a, l_a), l_a
