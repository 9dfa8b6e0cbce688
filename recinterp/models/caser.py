"""Caser: convolutional sequence embedding (Tang & Wang, 2018).

The last L items form an L x d "image"; horizontal filters (heights 1..L, full
width d, max-pooled over time) catch union-level patterns, vertical filters
(L x 1) are learned weighted sums over positions.  No user embedding here (the
LLaRA splits are anonymous windows).

Caser summarises a whole window, but the interface wants a state per position.
``h_all[:, t]`` is therefore Caser applied to the prefix ``0..t``: all L
prefixes are encoded in one batched pass (B*L small images).  Each prefix is
*right-aligned* (its newest item in the last row, zeros above), as in the
original left-padded Caser, so the vertical filters mean "k steps ago" whatever
the length.  Training needs only the last prefix (``user_state``), 10x cheaper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from recinterp.labels import ENCODER_LABELS

from .base import EncoderConfig, SeqEncoder


@dataclass
class CaserConfig(EncoderConfig):
    n_h: int = 16  # horizontal filters per height (heights 1..max_len)
    n_v: int = 4  # vertical filters
    dropout: float = 0.3


class Caser(SeqEncoder):
    name, label = "caser", ENCODER_LABELS["caser"]

    def __init__(self, cfg: CaserConfig):
        super().__init__(cfg)
        L, d = cfg.max_len, cfg.d
        # A (h x d) filter sliding down the L x d image is a Conv1d over time with d channels.
        self.horizontal = nn.ModuleList(nn.Conv1d(d, cfg.n_h, h) for h in range(1, L + 1))
        # An (L x 1) filter is a weighted sum over the L rows, per embedding column: a Linear over L.
        self.vertical = nn.Linear(L, cfg.n_v)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.n_h * L + cfg.n_v * d, d)
        self.ln_f = nn.LayerNorm(d)  # same output scale as SASRec / GRU4Rec (see gru4rec.py)
        self._init_weights()
        # Filters see up to L*d inputs of scale 0.02: a 0.02 std would make them vanish at init.
        for conv in [*self.horizontal, self.vertical]:
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")

    def _window(self, img: torch.Tensor) -> torch.Tensor:
        """img (N, L, d) right-aligned windows -> (N, d)."""
        seq = img.transpose(1, 2)  # (N, d, L): channels = embedding columns
        pooled = [F.relu(conv(seq)).amax(dim=2) for conv in self.horizontal]  # each (N, n_h), max over time
        v = F.relu(self.vertical(seq)).flatten(1)  # (N, d * n_v)
        return self.ln_f(self.fc(self.drop(torch.cat([*pooled, v], dim=1))))  # (N, d)

    def _right_align(self, x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """x (B, L, d); last (B, K) index of each prefix's newest item -> (B, K, L, d) windows
        whose row r holds item last - (L-1-r), zero where that index is negative."""
        L = x.shape[1]
        src = last[..., None] - (L - 1) + torch.arange(L, device=x.device)  # (B, K, L)
        keep = src >= 0
        B, K, _ = src.shape
        rows = x.gather(1, src.clamp(min=0).view(B, K * L, 1).expand(B, K * L, x.shape[2]))
        return rows.view(B, K, L, x.shape[2]) * keep[..., None]  # d spelt out: B may be 0

    def _encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        if L != self.max_len:  # the vertical filter spans exactly max_len rows
            x = F.pad(x, (0, 0, 0, self.max_len - L))
        last = torch.arange(L, device=x.device).expand(B, L)  # prefix t ends at item t
        win = self._right_align(x, last)  # (B, L, Lmax, d)
        return self._window(win.reshape(B * L, self.max_len, d)).view(B, L, d)

    def user_state(self, ids: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        # Only the last prefix: same numbers as user_repr(hidden_states(...)), 10x less work.
        ids, lens = self.check_ids(ids, lens)
        B, L = ids.shape
        x = self.item_embeddings(ids)
        x = x * self.valid_mask(lens, L)[..., None]
        if L != self.max_len:
            x = F.pad(x, (0, 0, 0, self.max_len - L))
        win = self._right_align(x, (lens - 1).view(B, 1))  # (B, 1, Lmax, d)
        return self._window(win.view(B, self.max_len, self.d))
