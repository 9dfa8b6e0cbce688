"""Task 2, sequence residual: which item is in the window *after* but not *before*?

The residual item is the LAST item of a window of n >= 2 items: before = its first n-1
items, after = all n, each encoded on its own unpadded prefix (the state of `before`
is the encoder's state at position n-2 of the shorter window).  That is where task 3
appends the ideal item, so the same adapter serves task 3 (see
``recinterp.instantiation``, which calls ``residual_features``).

Inputs (``input``), the ablation the notebook shows:
- ``pair``       one placeholder; the adapter reads [h_before, h_after] (d_in = 2d),
                 which can start as the item adapter applied to the difference (``init_from``);
- ``diff``       one placeholder; the adapter reads h_after - h_before;
- ``two_slots``  two placeholders (the paper's prompt: "list 1 ... list 2 ..."); the
                 same adapter reads h_before, then h_after.
``positions``: ``last`` (the state at each window's last valid position) or ``all``.
"""
from __future__ import annotations

import torch

from recinterp import probes
from recinterp import prompts as P
from recinterp.cases import Cases, Task, get_split, hidden_states, nouns_meta, register_task
from recinterp.config import TITLE_TOKENS

INPUTS = ("pair", "diff", "two_slots")


def _last(h: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    return h[torch.arange(h.shape[0], device=h.device), lens.to(h.device) - 1]


def residual_features(h_before: torch.Tensor, lens_before: torch.Tensor, h_after: torch.Tensor,
                      lens_after: torch.Tensor, input: str = "pair", positions: str = "last") -> torch.Tensor:
    """(N, L, d) states before/after -> adapter features (N, S, P, d_in)."""
    if input not in INPUTS:
        raise ValueError(f"unknown residual input {input!r}: choose one of {INPUTS}")
    if positions == "last":
        hb, ha = _last(h_before, lens_before)[:, None], _last(h_after, lens_after)[:, None]  # (N, 1, d)
    elif positions == "all":
        hb, ha = h_before, h_after  # (N, L, d), zeros beyond each length
    else:
        raise ValueError(f"unknown positions {positions!r}: choose 'last' or 'all'")
    if input == "pair":
        return torch.cat([hb, ha], -1)[:, None]  # (N, 1, P, 2d)
    if input == "diff":
        return (ha - hb)[:, None]  # (N, 1, P, d)
    return torch.stack([hb, ha], 1)  # (N, 2, P, d): before, after


@torch.no_grad()
def _before_after(enc, seqs: torch.Tensor, lens: torch.Tensor, batch_size: int):
    """Windows (N, L) of ``lens`` >= 2 items -> the window without its last item (``before``: the
    unpadded prefix of n-1 items) and the encoder's states (N, L, d) of ``before`` and of the window."""
    before = seqs.clone()
    before[torch.arange(len(seqs)), lens - 1] = enc.pad_id
    return before, hidden_states(enc, before, lens - 1, batch_size), hidden_states(enc, seqs, lens, batch_size)


@torch.no_grad()
def residual_cases(enc, split, input: str = "pair", positions: str = "last", dataset: str = "",
                   split_name: str = "", batch_size: int = 2048, nouns: tuple[str, str] | None = None) -> Cases:
    """Cases from the windows of ``split`` with at least 2 items (shorter ones are skipped, counted in meta)."""
    keep = (split.lens >= 2).nonzero(as_tuple=True)[0]
    if keep.numel() == 0:
        raise ValueError("residual_cases needs windows of at least 2 items; the split has none")
    seqs, lens = split.seqs[keep].long(), split.lens[keep].long()
    N, L = seqs.shape
    last_item = seqs[torch.arange(N), lens - 1]
    before, hb, ha = _before_after(enc, seqs, lens, batch_size)  # (N, L, d) states each
    feats = residual_features(hb, lens - 1, ha, lens, input, positions)
    valid = torch.arange(L)[None, :] < (lens - 1)[:, None]
    context = torch.where(valid, before, torch.full_like(before, -1))  # the items still visible before
    return Cases("residual", input, feats.contiguous(), last_item[:, None], context,
                 {"h_before": _last(hb, lens - 1), "h_after": _last(ha, lens)},
                 {"dataset": dataset, "encoder": getattr(enc, "name", ""), "n_items": enc.n_items, "split": split_name,
                  "positions": positions, "skipped_short": int(len(split) - N), **nouns_meta(nouns)})


@torch.no_grad()
def appended_pairs(enc, split, per_item: int, input: str = "pair", seed: int = 0,
                   batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Extra training pairs for a residual *readout*: every catalogue item appended ``per_item`` times,
    each time to the prefix of a random window of ``split`` (a window of n >= 2 items keeps its first
    n-1, as in ``residual_cases``, and the item takes the place of its real last one).

    The real windows name only the items users happened to add, a fraction of a large catalogue
    (Steam); these pairs give every item the same number of answers, with the geometry of a real case.
    Returns features (M, d_in) (one placeholder, last position) and (M,) the appended ids, M = per_item x n_items.
    """
    if per_item < 1:
        raise ValueError(f"per_item must be >= 1, got {per_item}")
    if input not in ("pair", "diff"):
        raise ValueError(f"appended pairs feed a one-placeholder readout (input pair or diff), not {input!r}")
    keep = (split.lens >= 2).nonzero(as_tuple=True)[0]
    if keep.numel() == 0:
        raise ValueError("appended_pairs needs windows of at least 2 items; the split has none")
    g = torch.Generator().manual_seed(seed)
    new = torch.arange(enc.n_items).repeat(per_item)
    new = new[torch.randperm(len(new), generator=g)]  # (M,) every item per_item times, in random order
    rows = keep[torch.randint(0, len(keep), (len(new),), generator=g)]
    seqs, lens = split.seqs[rows].long(), split.lens[rows].long()
    seqs[torch.arange(len(new)), lens - 1] = new  # the appended item in place of the real last one
    _, hb, ha = _before_after(enc, seqs, lens, batch_size)
    return residual_features(hb, lens - 1, ha, lens, input, "last")[:, 0, 0], new


class ResidualTask(Task):
    """Task 2: the item in the window after but not before (its last one)."""

    name, inputs = "residual", INPUTS
    eval_defaults = {"samplers": ("own", "random"), "n_distractors": 9, "max_new_tokens": TITLE_TOKENS}

    def prompts(self, input):
        return P.RESIDUAL_TWO if input == "two_slots" else P.RESIDUAL_ONE

    def build(self, enc, ds, split, input, positions="last", seed=0, held_out_items=0.1):
        sp, used = get_split(ds, split)
        return residual_cases(enc, sp, input, positions, dataset=ds.name, split_name=used, nouns=(ds.noun, ds.nouns))

    def readout_inputs(self, cases):
        return torch.cat([cases.states["h_before"], cases.states["h_after"]], 1)

    def readout_pairs(self, cases):
        if cases.features.shape[1:3] != (1, 1):
            raise ValueError(f"the residual readout needs one placeholder of one position (input pair or diff, "
                             f"positions last); got features {tuple(cases.features.shape)}")
        return cases.features[:, 0, 0], cases.answers[:, 0]

    def extra_readout_pairs(self, enc, split, per_item, input, seed=0):
        return appended_pairs(enc, split, per_item, input, seed=seed)

    def encoder_scores(self, item_embeddings, cases, candidates):
        return probes.residual_encoder_scores(item_embeddings, cases.states["h_before"], cases.states["h_after"],
                                              candidates)


RESIDUAL = register_task(ResidualTask())
