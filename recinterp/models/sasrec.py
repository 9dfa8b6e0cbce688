"""SASRec: self-attentive sequential recommendation (Kang & McAuley, 2018).

item embedding + learned position embedding -> n_blocks pre-LN Transformer
blocks with a *causal* mask -> final LayerNorm.  With right padding, causality
alone makes every valid state blind to the padded tail, so no key-padding mask
is needed (and padded states are zeroed by the base class anyway).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from recinterp.labels import ENCODER_LABELS

from .base import EncoderConfig, SeqEncoder


@dataclass
class SASRecConfig(EncoderConfig):
    n_blocks: int = 2
    n_heads: int = 1


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d={d} is not divisible by n_heads={n_heads}")
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # 3 x (B, L, d)
        q, k, v = (t.view(B, L, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, L, dh)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, L, d)
        return self.resid_drop(self.proj(y))


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d)
        # SASRec's point-wise feed-forward keeps width d (the paper's choice).
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class SASRec(SeqEncoder):
    name, label = "sasrec", ENCODER_LABELS["sasrec"]

    def __init__(self, cfg: SASRecConfig):
        super().__init__(cfg)
        self.pos_embeddings = nn.Embedding(cfg.max_len, cfg.d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg.d, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_blocks))
        self.ln_f = nn.LayerNorm(cfg.d)
        self._init_weights()

    def _encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        h = self.drop(x + self.pos_embeddings.weight[:L])  # (B, L, d)
        for block in self.blocks:
            h = block(h)
        return self.ln_f(h)  # (B, L, d)
