"""MovieLens-100K in the LLaRA form: official Val/Test rows, train rebuilt from raw ratings.

The official train file is not at hand, so it is rebuilt exactly as LLaRA describes:
the users that are in neither Val nor Test, ratings >= 3, each user's ratings sorted by
time, one row per prefix (window of at most 10), padding id 1682.  Ties in timestamps
make a byte-identical rebuild impossible; ``compare_with_official`` measures how close
we are.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from .llara import MAX_LEN, rows_to_split, split_from_windows, windows
from .types import Catalogue

N_ITEMS = 1682
MIN_RATING = 3
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def read_ratings(raw: Path) -> pd.DataFrame:
    """(user, item, rating, ts) with item = MovieLens id - 1, in file order, from either raw source."""
    if (raw / "u.data").exists():
        df = pd.read_csv(raw / "u.data", sep="\t", names=["user", "item", "rating", "ts"])
    elif (raw / "ml-100k.inter").exists():
        df = pd.read_csv(raw / "ml-100k.inter", sep="\t", header=0, names=["user", "item", "rating", "ts"])
    else:
        raise FileNotFoundError(f"no u.data or ml-100k.inter in {raw}: run recinterp.data.fetch.fetch_ml100k first")
    df = df.astype({"user": int, "item": int, "rating": int, "ts": int})
    df["item"] -= 1
    if len(df) == 0:
        raise ValueError(f"{raw}: no ratings")
    if df["item"].min() < 0 or df["item"].max() >= N_ITEMS:
        raise ValueError(f"{raw}: item ids out of range 1..{N_ITEMS}")
    return df


def read_items(u_item: Path | None, raw: Path) -> tuple[list[str], list[list[str]]]:
    """Titles ("Toy Story (1995)") and genres per item id, from u.item or RecBole's ml-100k.item."""
    titles, genres = [""] * N_ITEMS, [[] for _ in range(N_ITEMS)]
    if u_item is None and (raw / "u.item").exists():
        u_item = raw / "u.item"
    if u_item is not None:
        with open(u_item, encoding="latin-1", newline="") as f:
            for row in csv.reader(f, delimiter="|"):
                if not row:
                    continue
                i = int(row[0]) - 1
                titles[i] = row[1]
                flags = [c.strip() for c in row[5:5 + len(GENRES)]]
                genres[i] = [g for g, fl in zip(GENRES, flags) if fl == "1"]
    else:
        df = pd.read_csv(raw / "ml-100k.item", sep="\t", header=0, names=["item", "title", "year", "genres"],
                         keep_default_na=False, dtype=str)
        for it, title, year, g in df.itertuples(index=False):
            i = int(it) - 1
            titles[i] = f"{title} ({year})" if year else title
            genres[i] = g.split() if g else []
    missing = [i for i, t in enumerate(titles) if not t]
    if missing:
        raise ValueError(f"MovieLens item file lacks titles for ids {missing[:5]}...")
    return titles, genres


def user_sequences(ratings: pd.DataFrame) -> dict[int, list[int]]:
    """Each user's items with rating >= 3, oldest first (stable: file order breaks time ties)."""
    kept = ratings[ratings["rating"] >= MIN_RATING]
    kept = kept.sort_values(["user", "ts"], kind="stable")
    return {int(u): g["item"].tolist() for u, g in kept.groupby("user", sort=True)}


def locate_users(rows: pd.DataFrame, seqs: dict[int, list[int]], where: str) -> list[int]:
    """The user of each official row: the only one who rated all its items (window + next).

    Matched on item *sets*, not order: ratings with equal timestamps were ordered differently
    by the official preprocessing.
    """
    owners: dict[int, set[int]] = {}
    for u, s in seqs.items():
        for it in s:
            owners.setdefault(it, set()).add(u)
    users = []
    for i, (seq, nxt) in enumerate(zip(rows["seq"], rows["next"])):
        window = [int(x[0]) for x in seq if int(x[0]) != N_ITEMS] + [int(nxt[0])]
        found = set.intersection(*(owners.get(it, set()) for it in window))
        if len(found) > 1:
            # Several users rated these items: keep the one in whose sequence they sit closest
            # together (a block, up to timestamp ties), then the one where they come last.
            tight = min(_span(seqs[u], window) for u in found)
            found = {u for u in found if _span(seqs[u], window) == tight}
        if len(found) > 1:
            found = {u for u in found if set(seqs[u][-len(window):]) == set(window)}
        if len(found) != 1:
            raise ValueError(f"{where} row {i}: {len(found)} users rated all of {window}, expected exactly 1")
        users.append(found.pop())
    return users


def _span(seq: list[int], window: list[int]) -> int:
    pos = [seq.index(it) for it in window]
    return max(pos) - min(pos) + 1


def rebuild_train_rows(seqs: dict[int, list[int]], exclude: set[int]) -> list[tuple[list[int], int, int]]:
    """Official-format train rows (including the empty-history first row of each user)."""
    rows = []
    for u in sorted(seqs):
        if u not in exclude:
            rows.extend(windows(seqs[u], N_ITEMS))
    return rows


def compare_with_official(rebuilt: list[tuple[list[int], int, int]], official: pd.DataFrame,
                          ratings: pd.DataFrame, seqs: dict[int, list[int]]) -> dict:
    """How many official rows our rebuild reproduces exactly, and how many differ only by ties.

    A row "differs only by timestamp ties" when it is not among our rows but its items are one
    user's, in an order whose timestamps never decrease: the official preprocessing ordered equal
    timestamps differently (an unstable sort), which no rebuild can recover.
    """
    exact = {(tuple(seq[:n]), nxt) for seq, n, nxt in rebuilt}
    kept = ratings[ratings["rating"] >= MIN_RATING]
    ts = {(int(u), int(i)): int(t) for u, i, t in zip(kept["user"], kept["item"], kept["ts"])}
    owners: dict[int, set[int]] = {}
    for u, sq in seqs.items():
        for it in sq:
            owners.setdefault(it, set()).add(u)
    n_exact = n_tie = 0
    for seq, nxt in zip(official["seq"], official["next"]):
        items = [int(x[0]) for x in seq if int(x[0]) != N_ITEMS] + [int(nxt[0])]
        if (tuple(items[:-1]), items[-1]) in exact:
            n_exact += 1
            continue
        for u in set.intersection(*(owners.get(it, set()) for it in items)):
            times = [ts[(u, it)] for it in items]
            if all(a <= b for a, b in zip(times, times[1:])):
                n_tie += 1
                break
    n = len(official)
    return {"official_rows": n, "exact": n_exact, "tie_reordered": n_tie, "different": n - n_exact - n_tie}


def build(raw: Path, val_df: pd.DataFrame, test_df: pd.DataFrame, u_item: Path | None,
          official_train: pd.DataFrame | None, source: str) -> dict:
    """Everything MovieLens needs, as plain pieces for ``recinterp.data.load_dataset``."""
    from .titles import normalize_title

    ratings = read_ratings(raw)
    seqs = user_sequences(ratings)
    val_users = locate_users(val_df, seqs, "movielens/Val_data.df")
    test_users = locate_users(test_df, seqs, "movielens/Test_data.df")
    held_out = set(val_users) | set(test_users)
    train_rows = rebuild_train_rows(seqs, held_out)
    train = split_from_windows(train_rows)
    val, dropped_v = rows_to_split(val_df, N_ITEMS, "movielens/Val_data.df")
    test, dropped_t = rows_to_split(test_df, N_ITEMS, "movielens/Test_data.df")
    # Every next-item position of the held-out test users: a steadier test set than 95 rows.
    test_all = split_from_windows([r for u in sorted(set(test_users)) for r in windows(seqs[u], N_ITEMS, start=1)])
    titles, genres = read_items(u_item, raw)
    stats = {
        "source": source,
        "users": int(ratings["user"].nunique()),
        "items": N_ITEMS,
        "ratings": int(len(ratings)),
        "ratings_kept": int((ratings["rating"] >= MIN_RATING).sum()),
        "train_users": len(set(seqs) - held_out),
        "val_users": len(set(val_users)),
        "test_users": len(set(test_users)),
        "train_rows_official_format": len(train_rows),
        "dropped_empty_history": {"train": len(train_rows) - len(train), "val": dropped_v, "test": dropped_t},
    }
    if official_train is not None:
        stats["train_rebuild_vs_official"] = compare_with_official(train_rows, official_train, ratings, seqs)
    notes = [f"MovieLens-100K raw ratings from {source}; train rebuilt from the {stats['train_users']} users in "
             f"neither Val nor Test (ratings >= {MIN_RATING}, time-ordered, windows of <= {MAX_LEN})."]
    return dict(n_items=N_ITEMS, train=train, val=val, test=test, extra={"test_all": test_all},
                catalogue=Catalogue(titles, [normalize_title(t) for t in titles], genres), notes=notes, stats=stats)
