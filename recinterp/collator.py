"""The collator: examples -> one tokenised, padded batch (what a Hugging Face processor is to its model).

    collate = Collator(llm, max_target_tokens=32)
    batch = collate([Example(prompt, features, target), ...])            # training / likelihood
    batch = collate(examples, side="left", targets=False)                # scoring, generation

It owns everything textual about a batch: prompt tokenisation (memoised: a few templates
repeat over thousands of cases), target tokenisation with EOS and the truncation to
``max_target_tokens`` (the authors: 32), padding on either side, labels (``IGNORE`` outside
the target), position ids that ignore left padding, and the mask of the slot positions
the interpreter writes the soft tokens into.  The interpreter never tokenises.
``truncation_report`` measures what that truncation leaves of a recovery target (notebook 03).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recinterp.prompts import TITLE_SEP

IGNORE = -100  # label of a position without a target token (torch's cross-entropy ignore_index)


@dataclass
class Example:
    prompt: str  # full prompt text: chat template applied, placeholders expanded into slot tokens
    features: torch.Tensor  # (S, P, d_in): what the adapter reads for each of the S placeholders
    target: str = ""  # answer text (training, likelihood); "" for generation


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) int64, slots hold the slot-token id
    attention_mask: torch.Tensor  # (B, T) int64, 0 at padding
    position_ids: torch.Tensor  # (B, T) int64, counted from each row's first real token
    labels: torch.Tensor  # (B, T) int64, IGNORE except at target tokens
    slot_mask: torch.Tensor  # (B, T) bool, True at reserved positions
    features: torch.Tensor  # (B, S, P, d_in) float

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.position_ids,
                                               self.labels, self.slot_mask, self.features)))

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def n_target_tokens(self) -> int:
        """Target tokens the loss averages over (each is predicted from the position before it)."""
        return int((self.labels[:, 1:] != IGNORE).sum())


def pad(rows: list[list[int]], value: int, side: str) -> torch.Tensor:
    """(len(rows), longest) int64 tensor, each row padded with ``value`` on ``side``."""
    T = max(len(r) for r in rows)
    if side == "right":
        out = [r + [value] * (T - len(r)) for r in rows]
    elif side == "left":
        out = [[value] * (T - len(r)) + r for r in rows]
    else:
        raise ValueError(f"padding side must be 'left' or 'right', got {side!r}")
    return torch.tensor(out, dtype=torch.long)


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that ignore left padding: 0 at each row's first real token."""
    return (attention_mask.cumsum(1) - 1).clamp(min=0)


class Collator:
    def __init__(self, llm, max_target_tokens: int | None = 32):
        self.llm = llm  # a FrozenLLM: its tokenizer, chat flag and special ids
        self.max_target_tokens = max_target_tokens
        self._prompt_ids: dict[str, list[int]] = {}  # prompts repeat (a few templates): tokenise each once

    def tokenize_prompt(self, text: str) -> list[int]:
        ids = self._prompt_ids.get(text)
        if ids is None:
            # A chat template writes its own special tokens; a bare prompt gets the tokenizer's (BOS).
            ids = self.llm.tokenizer(text, add_special_tokens=not self.llm.chat)["input_ids"]
            if len(self._prompt_ids) < 10_000:
                self._prompt_ids[text] = ids
        return ids

    def tokenize_targets(self, texts: list[str], eos: bool = True) -> list[list[int]]:
        """Answer ids (+ EOS), truncated to ``max_target_tokens``."""
        rows = self.llm.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
        rows = [r + [self.llm.eos_token_id] if eos else r for r in rows]
        if self.max_target_tokens:
            rows = [r[: self.max_target_tokens] for r in rows]
        return rows

    def __call__(self, examples: list[Example], side: str = "right", targets: bool = True) -> Batch:
        """Tokenise a batch once: prompt (+ target), padding, labels, slot mask, stacked features."""
        if not examples:
            raise ValueError("empty batch")
        if targets and any(not e.target for e in examples):
            raise ValueError("every example needs a target text when targets=True")
        prompts = [self.tokenize_prompt(e.prompt) for e in examples]
        answers = self.tokenize_targets([e.target for e in examples]) if targets else [[] for _ in examples]
        ids = pad([p + a for p, a in zip(prompts, answers)], self.llm.pad_token_id, side)
        attn = pad([[1] * (len(p) + len(a)) for p, a in zip(prompts, answers)], 0, side)
        labels = pad([[IGNORE] * len(p) + a for p, a in zip(prompts, answers)], IGNORE, side)
        shapes = {tuple(e.features.shape) for e in examples}
        if len(shapes) != 1:
            raise ValueError(f"all examples of a batch need features of one shape, got {sorted(shapes)}")
        feats = torch.stack([e.features for e in examples]).float()
        if feats.dim() != 4:
            raise ValueError(f"features must be (S, P, d_in) per example, got {tuple(feats.shape[1:])}")
        return Batch(ids, attn, positions(attn), labels, ids == self.llm.slot_token_id, feats)


def truncation_report(tokenizer, split, titles: list[str], max_tokens: int, n: int = 500, seed: int = 0) -> dict:
    """How much of a recovery target (titles joined by "; ", + EOS) the first ``max_tokens`` tokens hold,
    over a seeded sample of ``n`` training windows."""
    g = torch.Generator().manual_seed(seed)
    n_titles, n_tokens, inside = [], [], []
    for i in torch.randperm(len(split), generator=g)[:n].tolist():
        ts = [titles[j] for j in split.seqs[i, : int(split.lens[i])].tolist()]
        ends = [len(tokenizer(TITLE_SEP.join(ts[: k + 1]), add_special_tokens=False)["input_ids"]) for k in range(len(ts))]
        n_titles.append(len(ts))
        n_tokens.append(ends[-1] + 1)  # + EOS
        inside.append(sum(e <= max_tokens for e in ends))
    return {"max_target_tokens": max_tokens, "n_windows": len(n_titles), "mean_target_tokens": float(np.mean(n_tokens)),
            "mean_titles": float(np.mean(n_titles)), "mean_titles_supervised": float(np.mean(inside)),
            "share_titles_supervised": float(np.sum(inside) / np.sum(n_titles))}
