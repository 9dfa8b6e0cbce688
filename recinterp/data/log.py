"""A plain interaction log -> the same :class:`RecDataset` as the released splits.

    ds = load_dataset("path/to/myshop")        # a folder with interactions.csv + items.csv
    ds, stats = build_log_dataset("log.tsv", "items.csv", name="myshop", min_rating=3, noun="product")

Inputs: a log with columns ``user, item, timestamp[, rating]`` and an items file with
``item, title[, genres]`` (CSV, TSV, or Parquet when pyarrow is installed; genres
``|``-separated).  Built as the official LLaRA splits are: ratings below ``min_rating``
dropped (when given), each user's items in time order, users split (seeded) into
train / val / test users; a val or test user gives one row (the last item after the
``max_len`` before it: leave-last-out), a train user every prefix row; ``test_all``
holds every position of the test users (like MovieLens').

Handled and counted in ``notes`` and the stats: rows with a missing field, duplicate
rows, rows below the rating threshold, interactions on items without a title, users
with one interaction, users whose rows were not in time order (sorted, ties kept in
file order).  A timestamp column mixing date formats, times with and without a zone, or
epoch units (seconds with milliseconds) is an error naming a line of each kind; Parquet nulls are
missing fields, dropped and counted as in a CSV.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .llara import MAX_LEN, split_from_windows, windows
from .titles import normalize_title
from .types import Catalogue, RecDataset

LOG_NAMES = ("interactions", "ratings", "log")
ITEM_NAMES = ("items",)
SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
COLUMNS = {"user": ("user", "user_id", "userid"), "item": ("item", "item_id", "itemid"),
           "timestamp": ("timestamp", "ts", "time", "datetime", "date"), "rating": ("rating", "score"),
           "title": ("title", "name", "item_name"), "genres": ("genres", "genre", "tags", "categories")}


def find_log_files(folder: str | os.PathLike) -> tuple[Path, Path] | None:
    """(interactions file, items file) in ``folder``, or None when it holds no log."""
    folder = Path(folder)

    def first(stems):
        found = [folder / f"{s}{x}" for s in stems for x in SUFFIXES if (folder / f"{s}{x}").is_file()]
        return found[0] if found else None

    log, items = first(LOG_NAMES), first(ITEM_NAMES)
    if log is None:
        return None
    if items is None:
        raise FileNotFoundError(f"{folder} holds the log {log.name} but no items file (items.csv / items.tsv / "
                                f"items.parquet with columns item, title[, genres])")
    return log, items


def read_table(path: str | os.PathLike, sep: str | None = None) -> pd.DataFrame:
    """A CSV / TSV / Parquet file as strings (so "NA" or "007" stay what they are)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    if path.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(f"{path} is Parquet, which needs pyarrow (pip install pyarrow); or save it as CSV") from None
        df = pd.read_parquet(path)
        return pd.DataFrame({c: [_parquet_text(v) for v in df[c].tolist()] for c in df.columns}, index=df.index,
                            dtype=object)
    given, sep = sep, sep or ("\t" if path.suffix in (".tsv", ".txt") else ",")
    what = {"\t": "tab-separated", ",": "comma-separated"}.get(sep, f"separated by {sep!r}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): it needs a header row and one row per record "
                         f"(see docs/guide.md, 'Your own data')")
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} holds no table (only blank lines?): it needs a header row and one row per "
                         f"record") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}; Latin-1 / Windows-1252?): "
                         f"save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > utf8_{path.name}`, "
                         f"and put that file in its place") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: cannot parse as {what} text: {e}") from None
    if given is None and len(df.columns) == 1:  # every table here has two columns or more
        header = str(df.columns[0])
        for other, name, fix in (("\t", "tab", "name it .tsv"), (",", "comma", "name it .csv"), (";", "semicolon", "")):
            if other != sep and other in header:
                raise ValueError(f"{path} read as {what} gives one column {header!r}: it looks {name}-separated. "
                                 f"{fix + ', or pass' if fix else 'Pass'} sep={other!r} (an option of load_dataset "
                                 f"or a key of dataset.json)")
    return df


def _parquet_text(v) -> str:
    """A Parquet cell as the text its CSV would hold: a null is "" (a missing field, dropped and counted
    as in a CSV), a whole float is an integer (an int column with a null is read as float), a time is
    ISO 8601."""
    if v is None or (not isinstance(v, (list, tuple)) and not hasattr(v, "__len__") and pd.isna(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if hasattr(v, "tolist") and not isinstance(v, str):  # a list cell (genres): "|"-separated as in a CSV
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return "|".join(str(x) for x in v)
    return str(v)


_ZONE = r"(?:Z|[+-]\d\d:?\d\d)$"  # a time zone at the end of a date-time: "Z", "+01:00", "-0500"


def _line_of(values: pd.Series, rows: pd.Series, k: int) -> str:
    return f"line {int(rows.iloc[k]) + 2}: {values.iloc[k]!r}"


def _dates(values: pd.Series, rows: pd.Series, path: Path, what: str) -> pd.Series:
    """Date-times as nanoseconds since 1970 (UTC); a column mixing date formats, or times with and without
    a time zone, is an error naming a line of each kind."""
    zoned = values.str.contains(_ZONE, regex=True).to_numpy() & values.str.contains(":", regex=False).to_numpy()
    if zoned.any() and not zoned.all():
        k, j = int(zoned.argmax()), int((~zoned).argmax())
        raise ValueError(f"{path}: the {what} column mixes times with a time zone ({_line_of(values, rows, k)}) and "
                         f"without one ({_line_of(values, rows, j)}): their order is unknown. Write every {what} "
                         f"with its zone (e.g. 2020-01-31T12:00:00Z) or every one in the same zone without it")
    with warnings.catch_warnings():  # "could not infer format": we only ask whether every value parses
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce", utc=True)  # one format, inferred from the first value
        if parsed.notna().all():
            return pd.Series(parsed.astype("int64").to_numpy(), index=values.index)
        mixed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    j = int(parsed.isna().to_numpy().argmax())
    if pd.notna(mixed.iloc[j]):
        raise ValueError(f"{path}: the {what} column mixes date formats ({_line_of(values, rows, 0)}; "
                         f"{_line_of(values, rows, j)}): a date such as 02/01/2020 could be read two ways. Write every "
                         f"{what} in one format, e.g. ISO 8601 (2020-01-31 or 2020-01-31T12:00:00Z)")
    raise ValueError(f"{path} line {int(rows.iloc[j]) + 2} (data row {int(rows.iloc[j])}): {what} "
                     f"{values.iloc[j]!r} is not a number or a date")


# Epoch times by their number of digits: a column must keep one unit.
_UNITS = ((8, 10, "seconds"), (11, 13, "milliseconds"), (14, 16, "microseconds"), (17, 19, "nanoseconds"))


def _one_unit(out: pd.Series, values: pd.Series, rows: pd.Series, path: Path, what: str) -> None:
    """Numeric times mixing seconds with milliseconds (or other units) since 1970 are an error: sorted as
    they are, they would be put out of order without a word."""
    digits = np.floor(np.log10(out.abs().clip(lower=1).to_numpy(dtype=float))).astype(int) + 1
    kinds = {}
    for k, d in enumerate(digits):
        unit = next((u for lo, hi, u in _UNITS if lo <= d <= hi), None)
        if unit is not None:
            kinds.setdefault(unit, k)
    if len(kinds) > 1:
        (u1, k1), (u2, k2) = sorted(kinds.items(), key=lambda kv: kv[1])[:2]
        raise ValueError(f"{path}: the {what} column mixes units: {_line_of(values, rows, k1)} looks like {u1} since "
                         f"1970, {_line_of(values, rows, k2)} like {u2}. Write every {what} in one unit "
                         f"(e.g. divide the {u2 if u2 != 'seconds' else u1} by 1000 to get seconds)")


def _pick(df: pd.DataFrame, role: str, path: Path, columns: dict | None, required: bool = True) -> str | None:
    """The column playing ``role`` (user, item, ...): given in ``columns`` or found by its usual names."""
    if columns and role in columns:
        if columns[role] not in df.columns:
            raise ValueError(f"{path}: no column {columns[role]!r} (given for {role}); columns: {list(df.columns)}")
        return columns[role]
    lower = {c.strip().lower(): c for c in df.columns}
    for name in COLUMNS[role]:
        if name in lower:
            return lower[name]
    if required:
        raise ValueError(f"{path}: no {role} column (looked for {list(COLUMNS[role])}; columns: {list(df.columns)}); "
                         f"name it so, or pass columns={{'{role}': '<your column>'}}")
    return None


def _numbers(values: pd.Series, rows: pd.Series, path: Path, what: str, dates: bool = False) -> pd.Series:
    """Numbers (datetimes: nanoseconds); an unreadable value is an error naming its line in the file,
    and so is a column mixing numbers and dates (their scales cannot be compared)."""
    out = pd.to_numeric(values, errors="coerce")
    if dates and out.isna().any() and out.notna().any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            as_date = pd.to_datetime(values[out.isna()], errors="coerce", utc=True, format="mixed")
        if as_date.notna().any():
            k, j = int(out.notna().to_numpy().argmax()), int(as_date.notna().to_numpy().argmax())
            line = {i: int(r) + 2 for i, r in zip(values.index, rows)}
            d = as_date.index[j]
            raise ValueError(f"{path}: the {what} column mixes numbers (line {line[values.index[k]]}: "
                             f"{values.iloc[k]!r}) and dates (line {line[d]}: {values[d]!r}); write every {what} "
                             f"one way (all numbers, e.g. Unix seconds, or all dates)")
    if dates and out.isna().all():
        return _dates(values, rows, path, what)
    bad = out.isna().to_numpy()
    if bad.any():
        k = int(bad.argmax())
        raise ValueError(f"{path} line {int(rows.iloc[k]) + 2} (data row {int(rows.iloc[k])}): {what} "
                         f"{values.iloc[k]!r} is not a number{' or a date' if dates else ''}")
    if dates:
        _one_unit(out, values, rows, path, what)
    return out


def read_items(path: Path, columns: dict | None = None, sep: str | None = None,
               genre_sep: str = "|") -> tuple[dict[str, str], dict[str, list[str]], dict]:
    """{item key: title}, {item key: genres}, counts; empty titles are left out (counted)."""
    df = read_table(path, sep)
    key_col, title_col = _pick(df, "item", path, columns), _pick(df, "title", path, columns)
    genre_col = _pick(df, "genres", path, columns, required=False)
    titles, genres, counts = {}, {}, {"items_rows": len(df), "empty_title": 0, "duplicate_item_rows": 0}
    for i, (key, title) in enumerate(zip(df[key_col].str.strip(), df[title_col])):
        if key in titles:
            counts["duplicate_item_rows"] += 1
            continue
        if not title.strip():
            counts["empty_title"] += 1
            continue
        titles[key] = title.strip()
        raw = df[genre_col].iloc[i] if genre_col else ""
        genres[key] = [g.strip() for g in raw.split(genre_sep) if g.strip()] if raw else []
    return titles, genres, counts


def build_log_dataset(interactions: str | os.PathLike, items: str | os.PathLike, name: str | None = None,
                      **options) -> tuple[RecDataset, dict]:
    """The dataset and its statistics from a log + items file (options: see :func:`build`, and noun/nouns)."""
    noun = options.pop("noun", None) or "item"
    nouns = options.pop("nouns", None) or noun + "s"
    parts = build(interactions, items, **options)
    stats = parts.pop("stats")
    return RecDataset(name=name or Path(interactions).parent.name, noun=noun, nouns=nouns, **parts), stats


def build(interactions: str | os.PathLike, items: str | os.PathLike, min_rating: float | None = None,
          max_len: int = MAX_LEN, val_users: float = 0.1, test_users: float = 0.1, seed: int = 0,
          columns: dict | None = None, sep: str | None = None, genre_sep: str = "|") -> dict:
    """The pieces of a :class:`RecDataset` (without name and nouns) and its statistics.

    ``min_rating``: keep ratings >= it (needs a rating column; None keeps all).
    ``val_users`` / ``test_users``: shares of the users (at least one each).
    ``columns``: {role: column name} for columns not named user/item/timestamp/rating/title/genres.
    """
    log_path, items_path = Path(interactions), Path(items)
    if max_len < 1 or not (0 < val_users < 1 and 0 < test_users < 1 and val_users + test_users < 1):
        raise ValueError("need max_len >= 1 and 0 < val_users, test_users with val_users + test_users < 1")
    titles, genres, item_counts = read_items(items_path, columns, None, genre_sep)
    df = read_table(log_path, sep)
    u_col, i_col = _pick(df, "user", log_path, columns), _pick(df, "item", log_path, columns)
    t_col, r_col = _pick(df, "timestamp", log_path, columns), _pick(df, "rating", log_path, columns, required=False)
    counts = {"rows": len(df)}
    log = pd.DataFrame({"user": df[u_col].str.strip(), "item": df[i_col].str.strip(), "ts_raw": df[t_col].str.strip(),
                        "rating_raw": df[r_col].str.strip() if r_col else "", "row": range(len(df))})
    missing = (log["user"] == "") | (log["item"] == "") | (log["ts_raw"] == "")  # (a rating is checked below)
    counts["missing_field"] = int(missing.sum())
    log = log[~missing]
    log["ts"] = _numbers(log["ts_raw"], log["row"], log_path, "timestamp", dates=True)
    if min_rating is not None:
        if r_col is None:
            raise ValueError(f"min_rating={min_rating} needs a rating column in {log_path} (columns: {list(df.columns)})")
        no_rating = log["rating_raw"] == ""
        counts["missing_field"] += int(no_rating.sum())
        log = log[~no_rating]
        keep = _numbers(log["rating_raw"], log["row"], log_path, "rating") >= min_rating
        counts["below_min_rating"] = int((~keep).sum())
        log = log[keep]
    dup = log.duplicated(["user", "item", "ts"], keep="first")
    counts["duplicate_rows"] = int(dup.sum())
    log = log[~dup]
    untitled = ~log["item"].isin(titles.keys())
    counts["rows_on_untitled_items"] = int(untitled.sum())
    counts["untitled_items"] = int(log.loc[untitled, "item"].nunique())
    log = log[~untitled]
    # Time order per user; equal timestamps keep their file order (a stable sort).
    unsorted = log.groupby("user", sort=False)["ts"].apply(lambda s: bool((s.diff().dropna() < 0).any()))
    counts["users_not_in_time_order"] = int(unsorted.sum())
    log = log.sort_values(["user", "ts", "row"], kind="stable")
    sizes = log.groupby("user", sort=False).size()
    single = sizes[sizes < 2].index
    counts["users_with_one_interaction"] = len(single)
    log = log[~log["user"].isin(single)]
    if log.empty:
        raise ValueError(f"{log_path}: no user has two or more interactions left after filtering ({counts})")

    # Item ids: the items file's order, keeping only items that occur in the log.
    used = set(log["item"])
    keys = [k for k in titles if k in used]
    ids = {k: i for i, k in enumerate(keys)}
    n_items = len(keys)
    seqs = {u: [ids[k] for k in g] for u, g in log.groupby("user", sort=True)["item"]}
    users = sorted(seqs)
    if len(users) < 3:
        raise ValueError(f"{log_path}: {len(users)} users with two or more interactions; need at least 3 "
                         f"(one each for train, val and test)")
    perm = torch.randperm(len(users), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test, n_val = max(1, round(test_users * len(users))), max(1, round(val_users * len(users)))
    if n_test + n_val >= len(users):
        n_test, n_val = 1, 1
    test_u = [users[i] for i in perm[:n_test]]
    val_u = [users[i] for i in perm[n_test:n_test + n_val]]
    train_u = [users[i] for i in perm[n_test + n_val:]]

    def last_row(u):
        return list(windows(seqs[u], n_items, max_len, start=len(seqs[u]) - 1))

    def all_rows(us):
        return [r for u in sorted(us) for r in windows(seqs[u], n_items, max_len, start=1)]

    train = split_from_windows(all_rows(train_u), max_len)
    val = split_from_windows([r for u in sorted(val_u) for r in last_row(u)], max_len)
    test = split_from_windows([r for u in sorted(test_u) for r in last_row(u)], max_len)
    test_all = split_from_windows(all_rows(test_u), max_len)
    raw_titles = [titles[k] for k in keys]
    stats = {"format": "log", "log": str(log_path), "items_file": str(items_path), **counts, **item_counts,
             "interactions_kept": int(len(log)), "users": len(users), "items": n_items,
             "items_never_interacted": len(titles) - n_items, "train_users": len(train_u), "val_users": len(val_u),
             "test_users": len(test_u), "min_rating": min_rating, "max_len": max_len, "seed": seed}
    notes = [f"Interaction log {log_path} ({counts['rows']} rows) + items {items_path.name}: {len(log)} interactions "
             f"of {len(users)} users on {n_items} items kept; users split (seed {seed}) into {len(train_u)} train / "
             f"{len(val_u)} val / {len(test_u)} test; val/test: each user's last item after up to {max_len} before it.",
             f"Dropped: {counts['missing_field']} rows with a missing user/item/timestamp, "
             f"{counts['duplicate_rows']} duplicate rows, "
             + (f"{counts['below_min_rating']} rows rated below {min_rating}, " if min_rating is not None else "")
             + f"{counts['rows_on_untitled_items']} rows on {counts['untitled_items']} items without a title, "
             f"{counts['users_with_one_interaction']} users with one interaction.",
             f"Re-sorted by timestamp: {counts['users_not_in_time_order']} users whose rows were not in time order."]
    catalogue = Catalogue(raw_titles, [normalize_title(t) for t in raw_titles], [genres.get(k, []) for k in keys],
                          [[] for _ in keys])
    return dict(n_items=n_items, train=train, val=val, test=test, extra={"test_all": test_all}, catalogue=catalogue,
                max_len=max_len, notes=notes, stats=stats)
