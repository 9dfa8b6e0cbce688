"""Synthetic catalogues and interaction logs made in code, for the scaling benchmark (bench/bench_scale.py).

    ds = synthetic_dataset(5000, n_users=800, seed=0)       # a RecDataset: titles "Name (Year)", windows of 10
    write_log_folder(folder, 5000, n_users=800)             # the same as interactions.csv + items.csv (notebook 01's log)

Titles look like MovieLens ones: one to five capitalised words drawn from a fixed word list, a year in
parentheses, sometimes a trailing article ("Lost Harbor, The (1987)"), unique within the catalogue;
normalised with the project's own ``normalize_title``.  Users follow a popularity-skewed walk (Zipf
popularity, each next item near the previous one in a random item order), so an encoder has something to
learn.  The log's size is set by ``n_users`` and ``seq_len`` only, not by the catalogue: the benchmark
varies the catalogue with the log held fixed, so each stage's growth is the catalogue's alone.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from recinterp.data.llara import split_from_windows, windows
from recinterp.data.titles import normalize_title
from recinterp.data.types import Catalogue, RecDataset

SIZES = (1682, 5000, 20000, 100000)  # MovieLens-100K's catalogue, then the sizes the issue names
WORDS = ("Night", "River", "Blue", "Stone", "Garden", "Silent", "Shadow", "King", "Lost", "Summer", "Winter",
         "Dream", "City", "Fire", "Heart", "Road", "Star", "Island", "Mirror", "Golden", "Last", "Broken", "Wild",
         "House", "Empire", "Ghost", "Ocean", "Secret", "Storm", "Crown", "Angel", "Iron", "Paper", "Glass", "Red",
         "Harbor", "Machine", "Forest", "Letter", "Journey", "Return", "Story", "Love", "War", "Dance", "Hunter",
         "Valley", "Bridge", "Moon", "Desert", "Tiger", "Circus", "Train", "Portrait", "Echo", "Kingdom",
         "Murder", "Wedding", "Highway", "Spirit", "Legend", "Village", "Thunder", "Saint", "Castle", "Pilot")
ARTICLES = ("The", "A", "Le", "La", "Il")


def synthetic_titles(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct raw titles in MovieLens' form, e.g. "Silent River (1994)", "Lost Harbor, The (1987)"."""
    if n < 1:
        raise ValueError(f"a catalogue needs at least one item, got n={n}")
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.choice((1, 2, 2, 3, 3, 4, 5))))
        name = f"{words}, {rng.choice(ARTICLES)}" if rng.random() < 0.15 else words
        title = f"{name} ({rng.randint(1920, 2020)})"
        if title in seen:  # rare at MovieLens size, common at 100k: a sequel number keeps titles distinct
            title = f"{words} {len(out) % 9 + 2} ({rng.randint(1920, 2020)})"
            if title in seen:
                title = f"{words} Part {len(out)} ({rng.randint(1920, 2020)})"
        seen.add(title)
        out.append(title)
    return out


def user_sequences(n_users: int, n_items: int, seq_len: tuple[int, int] = (12, 40), seed: int = 0) -> list[list[int]]:
    """Per user a walk over the catalogue: Zipf-popular starting items, each next item near the previous one
    in a fixed random item order (so histories carry a signal), a popular item now and then."""
    if n_users < 3 or n_items < 2:
        raise ValueError(f"need at least 3 users and 2 items, got {n_users} users, {n_items} items")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_items)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    lengths = np.random.default_rng([seed, 1]).integers(seq_len[0], seq_len[1] + 1, n_users)  # the same at any size
    seqs = []
    for n in lengths.tolist():
        pos = int(np.flatnonzero(order == rng.choice(n_items, p=pop))[0])
        seq = []
        for _ in range(n):
            if rng.random() < 0.2:
                seq.append(int(rng.choice(n_items, p=pop)))
            else:
                pos = (pos + int(rng.integers(1, 4))) % n_items
                seq.append(int(order[pos]))
        seqs.append(seq)
    return seqs


def synthetic_dataset(n_items: int, n_users: int = 800, seq_len: tuple[int, int] = (12, 40), max_len: int = 10,
                      seed: int = 0) -> RecDataset:
    """A ``RecDataset`` of ``n_items`` synthetic titles and ``n_users`` walks, split by user 80/10/10 as
    ``recinterp.data.log`` splits a log (train: every window; val/test: each user's last item)."""
    raw = synthetic_titles(n_items, seed)
    seqs = user_sequences(n_users, n_items, seq_len, seed)
    n_test = n_val = max(1, n_users // 10)
    test_u, val_u, train_u = seqs[:n_test], seqs[n_test:n_test + n_val], seqs[n_test + n_val:]

    def rows(us, last_only):
        return [r for s in us for r in windows(s, n_items, max_len, start=len(s) - 1 if last_only else 1)]

    return RecDataset(name=f"synthetic{n_items}", n_items=n_items, train=split_from_windows(rows(train_u, False), max_len),
                      val=split_from_windows(rows(val_u, True), max_len), test=split_from_windows(rows(test_u, True), max_len),
                      catalogue=Catalogue(raw, [normalize_title(t) for t in raw], [[] for _ in raw]), max_len=max_len,
                      extra={"test_all": split_from_windows(rows(test_u, False), max_len)},
                      notes=[f"synthetic catalogue of {n_items} items, {n_users} users (seed {seed})"], noun="movie",
                      nouns="movies")


def write_log_folder(folder: str | Path, n_items: int, n_users: int = 800, seq_len: tuple[int, int] = (12, 40),
                     seed: int = 0) -> Path:
    """interactions.csv (user,item,timestamp,rating) + items.csv (item,title,genres): the same catalogue and
    walks as ``synthetic_dataset``, as a folder notebook 01 reads as an interaction log."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    seqs = user_sequences(n_users, n_items, seq_len, seed)
    rows = [(f"u{u}", f"i{it}", 1_600_000_000 + 10_000 * u + k, 4) for u, s in enumerate(seqs) for k, it in enumerate(s)]
    pd.DataFrame(rows, columns=["user", "item", "timestamp", "rating"]).to_csv(folder / "interactions.csv", index=False)
    pd.DataFrame({"item": [f"i{i}" for i in range(n_items)], "title": synthetic_titles(n_items, seed),
                  "genres": "Drama"}).to_csv(folder / "items.csv", index=False)
    return folder


def random_encoder(n_items: int, d: int = 64, seed: int = 0, max_len: int = 10):
    """An untrained SASRec of the classroom preset's shape: the benchmark times the route, not the readings."""
    from recinterp.models import build_encoder

    torch.manual_seed(seed)
    enc = build_encoder("sasrec", n_items, d=d, max_len=max_len, n_blocks=2, n_heads=1, dropout=0.2).eval()
    enc.name = "sasrec"
    return enc
