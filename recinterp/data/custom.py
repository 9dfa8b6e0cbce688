"""Your own dataset in the released LLaRA format: a folder of pickled splits + a title file.

    ds = load_dataset("path/to/lastfm", noun="track", hashes="path/to/SHA256SUMS")

The folder holds ``Train_data.df`` (or one ``train_data.df*``), ``Val_data.df``,
``Test_data.df`` (pandas pickles with ``seq`` and ``next`` columns, as in the
Hugging Face dataset ``joyliao7777/LLaRA``) and an id -> title file: ``id2name.txt``
(``id::name``, ids from 0) or a ``u.item``-style file (``|``-separated, ids from 1 as
in MovieLens, genre flags optional).  What is not assumed but read from the files: the
window length, the padding id and the item count (the title file's largest id + 1).

Checks: every pickle is unpickled only when its SHA-256 is a released LLaRA file's or one
the user vouched for (``checksums.verify_user_file``); an id outside the catalogue (or
without a title) is an error naming the file and row; rows whose history is all padding
(the released files have them) are dropped and counted in ``notes``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .checksums import user_hashes, verify_user_file
from .llara import infer_layout, read_pickle_rows, rows_to_split
from .titles import normalize_title
from .types import Catalogue

SPLIT_FILES = {"val": "Val_data.df", "test": "Test_data.df"}
TITLE_FILES = ("id2name.txt", "u.item")
# The 19 genre flags of a MovieLens u.item, in file order.
ML_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
             "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def is_llara_folder(folder: str | os.PathLike) -> bool:
    folder = Path(folder)
    return folder.is_dir() and (folder / "Test_data.df").exists()


def find_files(folder: str | os.PathLike) -> dict[str, Path]:
    """{"train", "val", "test", "titles"} -> path; a clear error for what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such dataset folder: {folder}")
    names = sorted(p.name for p in folder.iterdir())
    train = [n for n in names if n == "Train_data.df" or n.startswith("train_data.df")]
    titles = [n for n in TITLE_FILES if n in names]
    missing = [f for f in SPLIT_FILES.values() if f not in names]
    if not train:
        missing.append("Train_data.df (or train_data.df*)")
    if not titles:
        missing.append(" or ".join(TITLE_FILES))
    if missing:
        raise FileNotFoundError(f"{folder} is not a LLaRA-format folder: missing {', '.join(missing)} "
                                f"(it holds {names[:12]})")
    if len(train) > 1:
        raise ValueError(f"{folder} holds several train files {train}: keep one")
    return {"train": folder / train[0], **{k: folder / f for k, f in SPLIT_FILES.items()}, "titles": folder / titles[0]}


def _lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # MovieLens' u.item is Latin-1
    return text.splitlines()


def read_titles(path: Path) -> tuple[dict[int, str], dict[int, list[str]]]:
    """{item id: title}, {item id: genres} from ``id2name.txt`` or a ``u.item``-style file."""
    titles, genres = {}, {}
    u_item = path.name != "id2name.txt"
    for ln, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        if u_item:
            fields = line.split("|")
            key, title, flags = fields[0], (fields[1] if len(fields) > 1 else ""), fields[5:]
        else:
            if "::" not in line:
                raise ValueError(f"{path}:{ln}: expected 'id::name', got {line[:60]!r}")
            (key, title), flags = line.split("::", 1), []
        try:
            i = int(key) - (1 if u_item else 0)  # u.item ids count from 1, the splits' from 0
        except ValueError:
            raise ValueError(f"{path}:{ln}: item id {key[:20]!r} is not an integer") from None
        if i < 0:
            raise ValueError(f"{path}:{ln}: item id {key} is negative")
        if i in titles:
            raise ValueError(f"{path}:{ln}: item id {key} appears twice")
        if title.strip():
            titles[i] = title.strip()
            genres[i] = [g for g, f in zip(ML_GENRES, flags) if f.strip() == "1"] if len(flags) == len(ML_GENRES) else []
    if not titles:
        raise ValueError(f"{path}: no titles")
    return titles, genres


def build(folder: str | os.PathLike, hashes=None, trust_unverified: bool | None = None) -> dict:
    """The pieces of a :class:`RecDataset` (without name and nouns) and its statistics."""
    files = find_files(folder)
    vouched = user_hashes(hashes)
    frames = {}
    for key in ("train", "val", "test"):
        verify_user_file(files[key], vouched, trust_unverified)  # before anything is unpickled
        frames[key] = read_pickle_rows(files[key])
    titles, genres = read_titles(files["titles"])
    n_items = max(titles) + 1
    max_len, pad = infer_layout({str(files[k]): df for k, df in frames.items()}, n_items)
    known = [i in titles for i in range(n_items)]
    splits, dropped = {}, {}
    for key, df in frames.items():
        splits[key], dropped[key] = rows_to_split(df, n_items, str(files[key]), max_len, pad, known)
        if len(splits[key]) == 0:
            raise ValueError(f"{files[key]}: no row with a non-empty history ({len(df)} rows, all padding)")
    raw_titles = [titles.get(i, f"(untitled item {i})") for i in range(n_items)]
    untitled = n_items - len(titles)
    notes = [f"LLaRA-format folder {Path(folder)}: train {files['train'].name}, window {max_len}, padding id {pad}"
             f"{'' if pad == n_items else f' (read from the files; stored as {n_items})'}, {n_items} items from "
             f"{files['titles'].name}.",
             f"Rows whose history is all padding, dropped: " + ", ".join(f"{k} {v}" for k, v in dropped.items()) + "."]
    if untitled:
        notes.append(f"{untitled} ids below {n_items} have no title in {files['titles'].name}; no row uses them.")
    stats = {"format": "llara", "folder": str(Path(folder)), "items": n_items, "max_len": max_len, "pad_id_in_files": pad,
             "official_rows": {k: len(df) for k, df in frames.items()}, "dropped_empty_history": dropped,
             "untitled_ids": untitled}
    catalogue = Catalogue(raw_titles, [normalize_title(t) for t in raw_titles],
                          [genres.get(i, []) for i in range(n_items)], [[] for _ in range(n_items)])
    return dict(n_items=n_items, train=splits["train"], val=splits["val"], test=splits["test"], extra={},
                catalogue=catalogue, max_len=max_len, notes=notes, stats=stats)
