"""Reading the official LLaRA pickles into tensors, with the checks the pickles lack."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .types import Split

MAX_LEN = 10


def read_pickle_rows(path: Path) -> pd.DataFrame:
    """Unpickle an official split (its hash was verified before we get here)."""
    df = pd.read_pickle(path)
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{path} is not a LLaRA split: it holds a {type(df).__name__}, not a pandas DataFrame")
    missing = {"seq", "next"} - set(df.columns)
    if missing:
        raise ValueError(f"{path} is not a LLaRA split: columns {sorted(missing)} missing (it has {list(df.columns)})")
    return df


def _item(x) -> int:
    # MovieLens rows hold (item_id, rating) pairs, Steam rows plain ids.
    return int(x[0]) if isinstance(x, (tuple, list)) else int(x)


def infer_layout(frames: dict[str, pd.DataFrame], n_items: int) -> tuple[int, int]:
    """(window length, padding id) as the rows show them, not as assumed.

    The window length is the one length every ``seq`` has.  The padding id is the one id
    outside the catalogue ``0..n_items-1`` that ends rows (short histories are right-padded);
    when no row is padded, it is ``n_items`` (the LLaRA convention).
    """
    lengths: dict[int, tuple[str, int]] = {}
    ends: dict[int, tuple[str, int]] = {}
    for where, df in frames.items():
        for i, seq in enumerate(df["seq"]):
            lengths.setdefault(len(seq), (where, i))
            if len(seq) and not 0 <= _item(seq[-1]) < n_items:
                ends.setdefault(_item(seq[-1]), (where, i))
    if len(lengths) != 1:
        found = ", ".join(f"{n} ({w} row {i})" for n, (w, i) in sorted(lengths.items()))
        raise ValueError(f"rows of different window lengths: {found}; every seq must have the same length")
    (max_len,) = lengths
    if max_len < 1:
        raise ValueError(f"{next(iter(lengths.values()))[0]}: empty sequences; nothing to read")
    if len(ends) > 1:
        found = ", ".join(f"{v} ({w} row {i})" for v, (w, i) in sorted(ends.items()))
        raise ValueError(f"several ids outside the catalogue 0..{n_items - 1} end rows: {found}; "
                         f"expected one padding id")
    return max_len, (next(iter(ends)) if ends else n_items)


def rows_to_split(df: pd.DataFrame, n_items: int, where: str, max_len: int = MAX_LEN, pad: int | None = None,
                  known: list[bool] | None = None) -> tuple[Split, int]:
    """Tensors from LLaRA rows; rows with an empty history are dropped (their count is returned).

    The true length is the number of non-padding ids.  LLaRA stores ``len_seq = 1`` for an
    empty history; we do not trust that column.  ``pad`` is the padding id in the file
    (default ``n_items``); the tensors always pad with ``n_items``.  ``known[i]`` False marks a
    catalogue id without a title: using it is an error, like an id outside the catalogue.
    """
    pad_in = n_items if pad is None else pad
    seqs, lens, nxt, dropped = [], [], [], 0
    for i, (seq, target) in enumerate(zip(df["seq"], df["next"])):
        ids = [_item(x) for x in seq]
        if len(ids) != max_len:
            raise ValueError(f"{where} row {i}: sequence has {len(ids)} entries, expected {max_len}")
        for v in ids + [_item(target)]:
            if v != pad_in and not 0 <= v < n_items:
                raise ValueError(f"{where} row {i}: item id {v} out of range 0..{n_items - 1} (padding {pad_in}): "
                                 f"not in the catalogue")
            if v != pad_in and known is not None and not known[v]:
                raise ValueError(f"{where} row {i}: item id {v} has no title in the catalogue")
        n = sum(v != pad_in for v in ids)
        if any(v == pad_in for v in ids[:n]) or any(v != pad_in for v in ids[n:]):
            raise ValueError(f"{where} row {i}: padding is not at the right end: {ids}")
        if _item(target) == pad_in:
            raise ValueError(f"{where} row {i}: the next item is the padding id {pad_in}")
        if n == 0:
            dropped += 1
            continue
        seqs.append(ids[:n] + [n_items] * (max_len - n))
        lens.append(n)
        nxt.append(_item(target))
    return split_from_windows(zip(seqs, lens, nxt), max_len), dropped


def split_from_windows(rows, max_len: int = MAX_LEN) -> Split:
    """A Split from (padded history, length, next) rows; rows with an empty history are left out."""
    rows = [r for r in rows if r[1] > 0]
    return Split(torch.tensor([r[0] for r in rows], dtype=torch.long).view(-1, max_len),
                 torch.tensor([r[1] for r in rows], dtype=torch.long),
                 torch.tensor([r[2] for r in rows], dtype=torch.long))


def windows(items: list[int], pad: int, max_len: int = MAX_LEN, start: int = 0):
    """One (history, next) row per position t >= start: history = the up-to-``max_len`` items before t."""
    for t in range(start, len(items)):
        hist = items[max(0, t - max_len):t]
        yield hist + [pad] * (max_len - len(hist)), len(hist), items[t]

