"""The one interface every ID-based sequential recommender offers.

Everything after training (the adapter, the residual task, DreamRec's ideal item)
talks to an encoder only through this class, so it never needs to know which
model it holds:

    h_all = enc.hidden_states(ids, lens)          # (B, L, d), padded positions = 0
    h_all = enc.hidden_states_from_embeddings(x, lens)   # same, from item *embeddings*
    user  = enc.user_repr(h_all, lens)            # (B, d), state at position lens-1
    logit = enc.scores(user)                      # (B, n_items), padding column excluded

Conventions (as in the LLaRA data): sequences are right-padded with
``pad_id == n_items``; ``h_all[:, t]`` summarises items ``0..t`` only (every
encoder here is causal), so a state never depends on what sits in a padded slot.
Scores are inner products with the item table (weights tied), which keeps the
item table and the user states in one space: the space task 3 writes into.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class EncoderConfig:
    n_items: int  # real items are 0..n_items-1; n_items is the padding id
    d: int = 64  # embedding / hidden size (the paper's 64)
    max_len: int = 10  # window of the LLaRA splits
    dropout: float = 0.2
    init_std: float = 0.02  # N(0, 1) item embeddings gave HR = 0 in a prototype; 0.02 trains


class SeqEncoder(nn.Module):
    """Base class: input checks, masking, user representation, tied scoring, loss.

    Subclasses implement ``_encode(x, valid) -> (B, L, d)`` on already-masked item
    embeddings ``x`` (B, L, d) with ``valid`` (B, L) bool; they must be causal.
    """

    name = "base"
    label = ""  # how prose names it ("SASRec"); empty: its name

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        if cfg.n_items < 1 or cfg.d < 1 or cfg.max_len < 1:
            raise ValueError(f"n_items, d and max_len must be positive, got {cfg.n_items}, {cfg.d}, {cfg.max_len}")
        self.cfg = cfg
        self.item_embeddings = nn.Embedding(cfg.n_items + 1, cfg.d, padding_idx=cfg.n_items)

    # -- sizes --------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.cfg.n_items

    @property
    def d(self) -> int:
        return self.cfg.d

    @property
    def max_len(self) -> int:
        return self.cfg.max_len

    @property
    def pad_id(self) -> int:
        return self.cfg.n_items

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    def _init_weights(self) -> None:
        # Small normal init everywhere (GPT-2 style); the padding row stays zero.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                nn.init.normal_(m.weight, 0.0, self.cfg.init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, self.cfg.init_std)
                if m.padding_idx is not None:
                    with torch.no_grad():
                        m.weight[m.padding_idx].zero_()

    # -- input checks -------------------------------------------------------------------
    def _check_lens(self, lens: torch.Tensor, B: int, L: int) -> torch.Tensor:
        if not isinstance(lens, torch.Tensor):
            lens = torch.as_tensor(lens)
        if lens.dim() != 1 or lens.shape[0] != B:
            raise ValueError(f"lens must have shape ({B},), got {tuple(lens.shape)}")
        if lens.is_floating_point():
            raise ValueError(f"lens must be an integer tensor, got {lens.dtype}")
        if B and (int(lens.min()) < 1 or int(lens.max()) > L):
            raise ValueError(f"lens must be in 1..{L} (empty sequences are not allowed), "
                             f"got min {int(lens.min())}, max {int(lens.max())}")
        return lens.long()

    def _check_L(self, L: int) -> None:
        if L < 1 or L > self.max_len:
            raise ValueError(f"sequence length {L} is outside 1..max_len={self.max_len}")

    def valid_mask(self, lens: torch.Tensor, L: int) -> torch.Tensor:
        """(B, L) bool: True at positions 0..lens-1 (right padding)."""
        return torch.arange(L, device=lens.device)[None, :] < lens[:, None]

    def check_ids(self, ids: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
            raise ValueError(f"ids must be a (B, L) tensor, got {getattr(ids, 'shape', type(ids))}")
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise ValueError(f"ids must be an integer tensor, got {ids.dtype}")
        B, L = ids.shape
        self._check_L(L)
        lens = self._check_lens(lens, B, L)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) > self.n_items):
            raise ValueError(f"item id out of range 0..{self.n_items} (pad = {self.n_items}): "
                             f"got min {int(ids.min())}, max {int(ids.max())}")
        valid = self.valid_mask(lens.to(ids.device), L)
        if bool((ids[valid] == self.pad_id).any()):
            raise ValueError(f"padding id {self.pad_id} found inside the valid part of a sequence (positions < lens)")
        return ids.long(), lens.to(ids.device)

    # -- the interface ------------------------------------------------------------------
    def hidden_states(self, ids: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """ids (B, L) int64 right-padded, lens (B,) -> h_all (B, L, d), zeros at padded positions."""
        ids, lens = self.check_ids(ids, lens)
        return self.hidden_states_from_embeddings(self.item_embeddings(ids), lens)

    def hidden_states_from_embeddings(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """x (B, L, d) float item embeddings (padded rows arbitrary, even NaN) -> (B, L, d).

        The entry point for items without an id (DreamRec's ideal item): append its
        embedding after a history and ask for the new states.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d:
            raise ValueError(f"x must be (B, L, {self.d}) item embeddings, got {getattr(x, 'shape', type(x))}")
        if not x.is_floating_point():
            raise ValueError(f"x must be a float tensor, got {x.dtype}")
        B, L, _ = x.shape
        self._check_L(L)
        lens = self._check_lens(lens, B, L).to(x.device)
        valid = self.valid_mask(lens, L)  # (B, L)
        # where() rather than multiply: a NaN in a padded row must not leak (NaN * 0 = NaN).
        x = torch.where(valid[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        h = self._encode(x, valid)  # (B, L, d)
        return torch.where(valid[..., None], h, torch.zeros((), dtype=h.dtype, device=h.device))

    def append_embedding(self, ids: torch.Tensor, lens: torch.Tensor,
                         e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of each history with ``e`` (B, d) put right after its last item.

        Returns x (B, L, d) and lens + 1, ready for ``hidden_states_from_embeddings``: the
        way an item without an id (DreamRec's ideal item) joins a history.  Histories must
        have room (lens < L): trim full windows first, the choice of what to drop is the caller's.
        """
        ids, lens = self.check_ids(ids, lens)
        B, L = ids.shape
        if e.shape != (B, self.d):
            raise ValueError(f"e must be ({B}, {self.d}), got {tuple(e.shape)}")
        if bool((lens >= L).any()):
            raise ValueError(f"no room to append: some histories already hold {L} items (trim them first)")
        x = self.item_embeddings(ids).clone()
        x[torch.arange(B, device=ids.device), lens] = e.to(x.dtype)
        return x, lens + 1

    def user_repr(self, h_all: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """h_all (B, L, d), lens (B,) -> (B, d): the state at the last valid position."""
        if h_all.dim() != 3:
            raise ValueError(f"h_all must be (B, L, d), got {tuple(h_all.shape)}")
        B, L, d = h_all.shape
        lens = self._check_lens(lens, B, L).to(h_all.device)
        idx = (lens - 1).view(B, 1, 1).expand(B, 1, d)
        return h_all.gather(1, idx).squeeze(1)

    def scores(self, user: torch.Tensor) -> torch.Tensor:
        """user (B, d) -> (B, n_items) logits; the padding row of the table is left out."""
        return user @ self.item_embeddings.weight[: self.n_items].T

    # -- training / evaluation helpers (shared by train.py) ------------------------------
    def user_state(self, ids: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """(B, d) user representation straight from ids (subclasses may skip unused positions)."""
        return self.user_repr(self.hidden_states(ids, lens), lens)

    def loss(self, ids: torch.Tensor, lens: torch.Tensor, target: torch.Tensor,
             positions: str = "last") -> torch.Tensor:
        """Next-item cross-entropy over the full catalogue.

        positions="last": one prediction per row, at lens-1 (the row's ``next``).
        positions="all": every valid position t predicts item t+1 (the row's ``next``
        after the last one) -- ten times the supervision per row, worth it when the
        training split is small (Steam) and redundant when rows are all prefixes (MovieLens).
        """
        if target.dim() != 1 or target.shape[0] != ids.shape[0]:
            raise ValueError(f"target must be ({ids.shape[0]},), got {tuple(target.shape)}")
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= self.n_items):
            raise ValueError(f"target id out of range 0..{self.n_items - 1}")
        if positions == "last":
            return F.cross_entropy(self.scores(self.user_state(ids, lens)), target)
        if positions != "all":
            raise ValueError(f"positions must be 'last' or 'all', got {positions!r}")
        ids, lens = self.check_ids(ids, lens)
        h = self.hidden_states(ids, lens)  # (B, L, d)
        B, L = ids.shape
        # targets[:, t] = ids[:, t+1] for t < lens-1, = next at t = lens-1
        tgt = torch.cat([ids[:, 1:], ids.new_full((B, 1), self.pad_id)], dim=1)
        tgt = tgt.scatter(1, (lens - 1).view(B, 1), target.view(B, 1))
        valid = self.valid_mask(lens, L)
        return F.cross_entropy(self.scores(h[valid]), tgt[valid])

    @torch.no_grad()
    def score_sequences(self, ids: torch.Tensor, lens: torch.Tensor, generator=None) -> torch.Tensor:
        """(B, n_items) ranking scores for the next item (``generator`` unused: deterministic)."""
        return self.scores(self.user_state(ids, lens))

    def _encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError
