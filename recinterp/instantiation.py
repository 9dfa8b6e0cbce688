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


def trim_full(enc: SeqEncoder, ids: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the oldest item of every full window (as sliding windows do), to make room for one more."""
    ids, lens = enc.check_ids(ids, lens)
    B, L = ids.shape
    full = lens == L
    shifted = torch.cat([ids[:, 1:], ids.new_full((B, 1), enc.pad_id)], 1)
    return torch.where(full.view(B, 1), shifted, ids), torch.where(full, lens - 1, lens)


@torch.no_grad()
def residual_states(enc: SeqEncoder, ids: torch.Tensor, lens: torch.Tensor, item: torch.Tensor):
    """Hidden states before/after appending ``item`` (B, d), an embedding in the encoder's item space.

    Returns (h_before, lens_before, h_after, lens_after), each h (B, L, d): exactly what task 2
    computes for a window whose last item is ``item``.
    """
    if item.shape != (ids.shape[0], enc.d):
        raise ValueError(f"item must be ({ids.shape[0]}, {enc.d}) embeddings in the encoder's item space, "
                         f"got {tuple(item.shape)}")
    ids_b, lens_b = trim_full(enc, ids, lens)
    x_a, lens_a = enc.append_embedding(ids_b, lens_b, item)
    return enc.hidden_states(ids_b, lens_b), lens_b, enc.hidden_states_from_embeddings(x_a, lens_a), lens_a
