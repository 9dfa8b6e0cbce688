"""Training and evaluation shared by the encoders and DreamRec, plus the popularity baseline.

A model here is anything with ``.loss(ids, lens, target)`` and
``.score_sequences(ids, lens, generator=None) -> (B, n_items)``.  ``fit`` runs
AdamW over shuffled mini-batches of a :class:`~recinterp.data.types.Split`,
evaluates full-ranking NDCG@10 on the validation split after every epoch, keeps
the best weights and stops after ``patience`` epochs without improvement.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from recinterp.data.types import Split
from recinterp.metrics import topk_metrics_per_row


@dataclass
class FitConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    patience: int = 5  # epochs without a better validation score before stopping
    seed: int = 0
    grad_clip: float | None = 5.0
    loss_positions: str = "last"  # encoders only: "last" | "all" (see SeqEncoder.loss)
    val_metric: str = "NDCG@10"
    eval_batch_size: int = 1024


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one dict per epoch
    best_epoch: int = 0
    best_val: float = float("-inf")
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def first_loss(self) -> float:
        return self.history[0]["loss"]

    @property
    def last_loss(self) -> float:
        return self.history[-1]["loss"]

    def summary(self) -> dict:
        """What a notebook records of a fit (notebook 02's metrics.json): losses, epochs, the best one, time."""
        return {"first_loss": self.first_loss, "last_loss": self.last_loss, "epochs": len(self.history),
                "best_epoch": self.best_epoch, "best_val_NDCG@10": self.best_val, "stopped_early": self.stopped_early,
                "seconds": self.seconds, "seconds_per_epoch": self.seconds / len(self.history)}


def expand_prefixes(split: Split, pad_id: int) -> Split:
    """The rows plus every (prefix, following item) pair inside each row's window.

    A row (i1..in, next) yields (i1 -> i2), (i1 i2 -> i3), ..., (i1..in -> next).  The
    MovieLens validation split has only 94 rows (one window per user); its prefixes give
    ~10x more validation targets from the same held-out users, so early stopping is steadier.
    """
    out_s, out_l, out_n = [split.seqs], [split.lens], [split.next]
    for k in range(1, split.seqs.shape[1]):
        rows = split.lens > k  # rows long enough to hold a prefix of length k and its successor
        s = split.seqs[rows].clone()
        out_n.append(s[:, k].clone())
        s[:, k:] = pad_id
        out_s.append(s)
        out_l.append(torch.full((s.shape[0],), k, dtype=torch.long))
    return Split(torch.cat(out_s), torch.cat(out_l), torch.cat(out_n))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _device(model) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def _batches(n: int, batch_size: int, generator: torch.Generator | None = None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i: i + batch_size]


def fit(model: torch.nn.Module, train: Split, val: Split, cfg: FitConfig,
        log: Callable[[str], None] | None = print) -> TrainResult:
    """Train in place; on return the model holds its best-validation weights, in eval mode."""
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"empty split: train has {len(train)} rows, val has {len(val)}")
    torch.manual_seed(cfg.seed)  # dropout, DreamRec's noise and step draws
    shuffle = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_kw = {"positions": cfg.loss_positions} if cfg.loss_positions != "last" else {}
    res, best_state, bad, t0 = TrainResult(), None, 0, time.perf_counter()
    dev = _device(model)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t_ep, total, n = time.perf_counter(), 0.0, 0
        for idx in _batches(len(train), cfg.batch_size, shuffle):
            loss = model.loss(train.seqs[idx].to(dev), train.lens[idx].to(dev), train.next[idx].to(dev), **loss_kw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        train_s = time.perf_counter() - t_ep
        val_m = evaluate_means(model, val, batch_size=cfg.eval_batch_size, seed=cfg.seed)
        row = {"epoch": epoch, "loss": total / n, "train_seconds": train_s,
               "seconds": time.perf_counter() - t_ep, **{f"val_{k}": v for k, v in val_m.items() if k != "n"},
               **(model.diagnostics() if hasattr(model, "diagnostics") else {})}  # DreamRec: its item norm
        res.history.append(row)
        score = val_m[cfg.val_metric]
        if score > res.best_val:
            res.best_val, res.best_epoch, bad = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        if log:
            log(f"  epoch {epoch:3d}  loss {row['loss']:.4f}  val {cfg.val_metric} {score:.4f}  "
                f"({row['seconds']:.1f}s){'  *' if bad == 0 else ''}")
        if bad >= cfg.patience:
            res.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    res.seconds = time.perf_counter() - t0
    return res


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_rows(model, split: Split, ks: Sequence[int] = (10, 20), batch_size: int = 1024,
                  seed: int = 0, score_kwargs: dict | None = None) -> dict[str, np.ndarray]:
    """Per-row full-ranking HR@K / NDCG@K over all items (no history masking, as the papers).

    ``seed`` fixes the sampling noise of stochastic models (DreamRec), so a score is
    reproducible; ``score_kwargs`` go to ``score_sequences`` (e.g. DreamRec's ``w``).
    """
    if len(split) == 0:
        raise ValueError("cannot evaluate on an empty split")
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    gen = torch.Generator().manual_seed(seed)  # on the CPU: the same draws on any device
    dev = _device(model)
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(split), batch_size):
        sl = slice(i, i + batch_size)
        scores = model.score_sequences(split.seqs[sl].to(dev), split.lens[sl].to(dev), generator=gen,
                                       **(score_kwargs or {}))
        for k, v in topk_metrics_per_row(scores, split.next[sl].to(scores.device), ks).items():
            parts.setdefault(k, []).append(v)
    if was_training:
        model.train()
    return {k: np.concatenate(v) for k, v in parts.items()}


def evaluate_means(model, split: Split, ks: Sequence[int] = (10, 20), batch_size: int = 1024,
             seed: int = 0, score_kwargs: dict | None = None) -> dict[str, float]:
    """Mean HR@K / NDCG@K and the number of rows ``n``."""
    rows = evaluate_rows(model, split, ks, batch_size, seed, score_kwargs)
    out = {k: float(v.mean()) for k, v in rows.items()}
    out["n"] = len(split)
    return out


class Popularity:
    """Recommend the most frequent training items to everyone.

    Counts each item once per training row where it is the next item and once per
    row where it appears in the history (Steam's train split has only ~2.2k rows,
    so next items alone would leave most of the catalogue at zero).
    """

    name = "popularity"

    def __init__(self, counts: torch.Tensor):
        self.counts = counts.float()
        self.n_items = counts.shape[0]

    @classmethod
    def from_split(cls, split: Split, n_items: int, include_history: bool = True) -> "Popularity":
        counts = torch.bincount(split.next, minlength=n_items)[:n_items].float()
        if include_history:
            valid = torch.arange(split.seqs.shape[1])[None, :] < split.lens[:, None]
            counts += torch.bincount(split.seqs[valid], minlength=n_items)[:n_items].float()
        return cls(counts)

    def score_sequences(self, ids: torch.Tensor, lens: torch.Tensor, generator=None) -> torch.Tensor:
        return self.counts.expand(ids.shape[0], -1)
