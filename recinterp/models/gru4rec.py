"""GRU4Rec: a GRU over the item sequence (Hidasi et al., 2016), trained here with
full-catalogue cross-entropy instead of the original session-parallel ranking losses.

A GRU is causal by construction, and with right padding the valid prefix is read
before any padded slot, so no packing is needed: states at padded positions are
simply discarded (zeroed) by the base class.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from recinterp.labels import ENCODER_LABELS

from .base import EncoderConfig, SeqEncoder


@dataclass
class GRU4RecConfig(EncoderConfig):
    n_layers: int = 1


class GRU4Rec(SeqEncoder):
    name, label = "gru4rec", ENCODER_LABELS["gru4rec"]

    def __init__(self, cfg: GRU4RecConfig):
        super().__init__(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.d, cfg.d, num_layers=cfg.n_layers, batch_first=True,
                          dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        # With 0.02-scale inputs the raw GRU states are ~1e-2 and the tied logits ~1e-4:
        # training crawls out of that saddle.  A final LayerNorm (as in SASRec) fixes the
        # scale and gives all three encoders states of comparable size for the adapter.
        self.ln_f = nn.LayerNorm(cfg.d)
        self._init_weights()  # embeddings N(0, 0.02); the GRU keeps PyTorch's uniform init

    def _encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.drop(x))  # (B, L, d)
        return self.ln_f(out)
