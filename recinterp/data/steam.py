"""Steam in the LLaRA form.

No raw Steam interactions are reachable here, so the recommenders train on the
official Val split plus the 1,000-row sample of the official train file; Test is kept
for evaluation.  Every notebook that shows Steam numbers says so (``RecDataset.notes``).
"""
from __future__ import annotations

import ast
import gzip
from pathlib import Path

import pandas as pd
import torch

from .llara import rows_to_split
from .types import Catalogue, Split

N_ITEMS = 3581


def read_id2name(path: Path) -> list[str]:
    names = {}
    with open(path, encoding="utf-8", newline="") as f:
        for ln, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            if "::" not in line:
                raise ValueError(f"{path}:{ln}: expected 'id::name', got {line[:60]!r}")
            i, name = line.split("::", 1)
            names[int(i)] = name
    if sorted(names) != list(range(N_ITEMS)):
        raise ValueError(f"{path}: expected ids 0..{N_ITEMS - 1}, got {len(names)} ids")
    return [names[i] for i in range(N_ITEMS)]


def read_meta(path: Path, names: list[str]) -> tuple[list[list[str]], list[list[str]], int]:
    """Genres and tags per item, matched on the game name; returns (genres, tags, n_matched).

    Each line is a Python dict literal: parsed with ``ast.literal_eval``, never ``eval``.
    """
    want = {n: i for i, n in enumerate(names)}
    genres, tags = [[] for _ in names], [[] for _ in names]
    matched = set()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            d = ast.literal_eval(line)
            i = want.get(d.get("app_name")) if isinstance(d, dict) else None
            if i is None:
                i = want.get(d.get("title")) if isinstance(d, dict) else None
            if i is not None and i not in matched:
                matched.add(i)
                genres[i] = list(d.get("genres") or [])
                tags[i] = list(d.get("tags") or [])
    return genres, tags, len(matched)


def concat(*splits: Split) -> Split:
    return Split(torch.cat([s.seqs for s in splits]), torch.cat([s.lens for s in splits]),
                 torch.cat([s.next for s in splits]))


def build(val_df: pd.DataFrame, test_df: pd.DataFrame, train_sample: pd.DataFrame | None,
          id2name: Path, meta: Path | None) -> dict:
    from .titles import normalize_title

    names = read_id2name(id2name)
    val, dv = rows_to_split(val_df, N_ITEMS, "steam/Val_data.df")
    test, dt = rows_to_split(test_df, N_ITEMS, "steam/Test_data.df")
    parts, notes = [val], []
    if train_sample is not None:
        sample, ds = rows_to_split(train_sample, N_ITEMS, "steam/train_data.df1000")
        parts.append(sample)
        notes.append(f"Steam: the full official train file is not available here; recommenders train on the "
                     f"official Val split ({len(val)} rows) + a {len(sample)}-row sample of the official train "
                     f"file, and early-stop on a held-out 10% of that. Test is the official Test split.")
    else:
        ds = 0
        notes.append("Steam: no train sample found; recommenders train on the official Val split only.")
    train = concat(*parts)
    genres, tags, matched = ([[] for _ in names], [[] for _ in names], 0)
    if meta is not None:
        genres, tags, matched = read_meta(meta, names)
    else:
        notes.append("Steam metadata (steam_games.json.gz) unavailable: no genres/tags.")
    stats = {
        "items": N_ITEMS,
        "official_rows": {"val": len(val_df), "test": len(test_df), "train_sample": 0 if train_sample is None else len(train_sample)},
        "dropped_empty_history": {"val": dv, "test": dt, "train_sample": ds},
        "meta_matched_items": matched,
    }
    # Steam has no separate validation users once Val is used for training: hold out 10% of
    # the training rows (seeded) for early stopping.
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(train), generator=g)
    n_val = max(1, len(train) // 10)
    early = train.subset(perm[:n_val])
    train = train.subset(perm[n_val:])
    return dict(n_items=N_ITEMS, train=train, val=early, test=test, extra={},
                catalogue=Catalogue(names, [normalize_title(n) for n in names], genres, tags), notes=notes, stats=stats)
