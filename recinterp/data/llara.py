"""Reading the official LLaRA pickles into tensors, with the checks the pickles lack."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .types import Split

MAX_LEN = 10


def read_pickle_rows(path: Path) -> pd.DataFrame:
    """Unpickle an official split (its hash was verified by ``llara_file`` before we get here)."""
    df = pd.read_pickle(path)
    missing = {"seq", "len_seq", "next"} - set(df.columns)
    if missing:
        raise ValueError(f"{path} is not a LLaRA split: columns {sorted(missing)} missing")
    return df


def _item(x) -> int:
    # MovieLens rows hold (item_id, rating) pairs, Steam rows plain ids.
    return int(x[0]) if isinstance(x, (tuple, list)) else int(x)


def rows_to_split(df: pd.DataFrame, n_items: int, where: str) -> tuple[Split, int]:
    """Tensors from LLaRA rows; rows with an empty history are dropped (their count is returned).

    The true length is the number of non-padding ids.  LLaRA stores ``len_seq = 1`` for an
    empty history; we do not trust that column.
    """
    pad = n_items
    seqs, lens, nxt, dropped = [], [], [], 0
    for i, (seq, target) in enumerate(zip(df["seq"], df["next"])):
        ids = [_item(x) for x in seq]
        if len(ids) != MAX_LEN:
            raise ValueError(f"{where} row {i}: sequence has {len(ids)} entries, expected {MAX_LEN}")
        for j, v in enumerate(ids + [_item(target)]):
            if not 0 <= v <= pad:
                raise ValueError(f"{where} row {i}: item id {v} out of range 0..{n_items - 1} (padding {pad})")
        n = sum(v != pad for v in ids)
        if any(v == pad for v in ids[:n]) or any(v != pad for v in ids[n:]):
            raise ValueError(f"{where} row {i}: padding is not at the right end: {ids}")
        if _item(target) == pad:
            raise ValueError(f"{where} row {i}: the next item is the padding id {pad}")
        if n == 0:
            dropped += 1
            continue
        seqs.append(ids)
        lens.append(n)
        nxt.append(_item(target))
    split = Split(torch.tensor(seqs, dtype=torch.long).view(-1, MAX_LEN), torch.tensor(lens, dtype=torch.long),
                  torch.tensor(nxt, dtype=torch.long))
    return split, dropped


def windows(items: list[int], pad: int, max_len: int = MAX_LEN, start: int = 0):
    """One (history, next) row per position t >= start: history = the up-to-``max_len`` items before t."""
    for t in range(start, len(items)):
        hist = items[max(0, t - max_len):t]
        yield hist + [pad] * (max_len - len(hist)), len(hist), items[t]
