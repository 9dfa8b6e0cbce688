"""Datasets: ``load_dataset(name or path)`` -> :class:`RecDataset`.

- ``"movielens"``, ``"steam"``: built from the raw/official files (see ``fetch``).
- Your own data (docs/guide.md, "Your own data"): a folder given by its path, or by its name as a
  subfolder of the LLaRA folder (``llara_dir`` / ``RECINTERP_LLARA_DIR``), holding either
  the released LLaRA format (``custom``) or a plain interaction log + items file (``log``).
  The folder's name names the dataset; options (``noun="track"``, ``min_rating=4``, ...)
  are arguments or keys of an optional ``dataset.json`` in the folder.

The first call builds the dataset and caches it under ``data/processed/<name>/`` as
safetensors + JSON (no pickles), with the SHA-256 of each cache file, ``meta.json``
included, in its ``SHA256SUMS`` (``recinterp.config.seal``; for your own data ``meta.json``
also records each source file's SHA-256 and the options).  Later calls verify the cache,
check its metadata against the arrays (item count against the titles, window length,
padding id) and read it; a damaged cache is rebuilt, saying so, and a changed source or
option rebuilds too.  ``refresh=True`` always rebuilds.  A dataset carries its item nouns (``ds.noun``,
``ds.nouns``); the cases built from it record them, so every task phrases questions in them.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..config import IntegrityError, read_json, resolve, seal, unseal, verify, write_json_atomic
from . import fetch
from .checksums import ChecksumError, file_hash
from .titles import normalize_title
from .types import Catalogue, RecDataset, Split

DATASETS = ("movielens", "steam")
NOUNS = {"movielens": ("movie", "movies"), "steam": ("game", "games")}
CACHE_VERSION = 5  # 2: Steam titles HTML-unescaped; 3: file hashes, nouns, datasets of your own; 4: SHA256SUMS;
#                   5: duplicate titles counted in notes and stats
CACHE_FILES = ("splits.safetensors", "catalogue.json", "meta.json")
CONFIG_FILE = "dataset.json"
# Options a dataset.json may set; trust (hashes, trust_unverified) must come from the user, never the folder.
FOLDER_OPTIONS = {"noun", "nouns", "min_rating", "max_len", "val_users", "test_users", "seed", "columns", "sep",
                  "genre_sep"}
__all__ = ["load_dataset", "build_dataset", "dataset_sources", "DATASETS", "RecDataset", "Split", "Catalogue",
           "normalize_title", "ChecksumError", "dataset_stats", "load_stats", "CacheError"]


class CacheError(RuntimeError):
    """The processed cache cannot be used (damaged, or its source is gone)."""


# -- which dataset a name or path means ----------------------------------------------------
def _llara_root(llara_dir) -> Path | None:
    d = llara_dir or os.environ.get("RECINTERP_LLARA_DIR")
    return Path(d).expanduser() if d else None


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.startswith((".", "~"))


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def locate(spec: str | os.PathLike, llara_dir=None) -> tuple[str, Path | None]:
    """(dataset name, its folder) for a built-in name (folder None), a path, or a LLaRA subfolder."""
    spec = os.fspath(spec)
    if spec in DATASETS:
        return spec, None
    folder = Path(spec).expanduser()
    if not _looks_like_path(spec):
        root = _llara_root(llara_dir)
        if root is not None and (root / spec).is_dir():
            folder = root / spec
        elif not folder.is_dir():
            return _safe_name(spec), None  # maybe cached earlier from a path: see load_dataset
    if not folder.is_dir():
        raise FileNotFoundError(f"no such dataset folder: {folder}")
    return _safe_name(folder.resolve().name), folder.resolve()


def dataset_sources(spec: str | list[str], default: list[str] | None = None) -> dict[str, str]:
    """The notebooks' ``datasets`` parameter -> {dataset name: what to pass to load_dataset}.

    ``"movielens,/data/lastfm"`` -> ``{"movielens": "movielens", "lastfm": "/data/lastfm"}``;
    empty -> ``default`` (the preset's list).  Names key checkpoints and metrics.
    """
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    items = items or list(default or [])
    out: dict[str, str] = {}
    for s in items:
        name = _safe_name(Path(s).expanduser().name) if _looks_like_path(s) else s
        if name in out and out[name] != s:
            raise ValueError(f"two datasets named {name!r}: {out[name]!r} and {s!r}; rename one folder")
        out[name] = s
    return out


def _folder_options(folder: Path, options: dict) -> dict:
    """``dataset.json`` in the folder, overridden by the caller's options."""
    cfg = {}
    if (folder / CONFIG_FILE).exists():
        cfg = read_json(folder / CONFIG_FILE, f'write one JSON object of options there, e.g. {{"noun": "track"}}')
        if not isinstance(cfg, dict):
            raise ValueError(f"{folder / CONFIG_FILE} must hold one JSON object of options, e.g. "
                             f'{{"noun": "track", "min_rating": 4}}; it holds a {type(cfg).__name__}')
        unknown = set(cfg) - FOLDER_OPTIONS
        if unknown:
            raise ValueError(f"{folder / CONFIG_FILE}: unknown or not allowed key(s) {sorted(unknown)}; allowed: "
                             f"{sorted(FOLDER_OPTIONS)} (hashes and trust_unverified are yours to pass, not the folder's)")
        _check_option_types(cfg, f"{folder / CONFIG_FILE}: key")
    given = {k: v for k, v in options.items() if v is not None}
    _check_option_types(given, "option")
    return {**cfg, **given}


# Option -> (the types it takes, how to say it): a wrong type is named before any file is read.
_NUMBER = (int, float)
OPTION_TYPES = {"noun": (str, "a word"), "nouns": (str, "a word"), "sep": (str, 'a separator such as "\\t"'),
                "genre_sep": (str, 'a separator such as "|"'), "min_rating": (_NUMBER, "a number (or null)"),
                "max_len": (int, "a whole number >= 1"), "seed": (int, "a whole number"),
                "val_users": (_NUMBER, "a share between 0 and 1"), "test_users": (_NUMBER, "a share between 0 and 1"),
                "columns": (dict, 'an object {"user": "<your column>", ...}')}


def _check_option_types(options: dict, where: str) -> None:
    for k, v in options.items():
        if k not in OPTION_TYPES or v is None:
            continue
        types, how = OPTION_TYPES[k]
        ok = isinstance(v, types) and not isinstance(v, bool)
        if ok and k == "columns":
            ok = all(isinstance(c, str) for c in v.values())
        if not ok:
            raise ValueError(f"{where} {k!r} must be {how}, got {v!r} ({type(v).__name__})")


def _source_record(folder: Path, options: dict) -> dict:
    """What a build of your own data depended on: the folder, each file's SHA-256, the options."""
    files = {p.name: file_hash(p) for p in sorted(folder.iterdir()) if p.is_file()}
    opts = {k: v for k, v in options.items() if k not in ("hashes", "trust_unverified")}
    return {"folder": str(folder), "files": files, "options": opts}


def _build_own(name: str, folder: Path, options: dict) -> tuple[RecDataset, dict]:
    from . import custom, log

    opts = dict(options)
    noun = opts.pop("noun", None) or "item"
    nouns = opts.pop("nouns", None) or noun + "s"
    files = log.find_log_files(folder)
    if files is not None:
        unknown = set(opts) - {"min_rating", "max_len", "val_users", "test_users", "seed", "columns", "sep", "genre_sep"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} for an interaction log ({folder})")
        parts = log.build(*files, **opts)
    elif custom.is_llara_folder(folder) or any(p.name.endswith(".df") or p.name.startswith("train_data.df")
                                               for p in folder.iterdir()):
        unknown = set(opts) - {"hashes", "trust_unverified"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} for a LLaRA-format folder ({folder})")
        parts = custom.build(folder, **opts)
    else:
        raise FileNotFoundError(f"{folder} holds neither a LLaRA-format dataset (Train_data.df / train_data.df*, "
                                f"Val_data.df, Test_data.df, id2name.txt or u.item) nor an interaction log "
                                f"(interactions.csv|tsv|parquet + items.csv|tsv|parquet); it holds "
                                f"{sorted(p.name for p in folder.iterdir())[:12]}")
    stats = parts.pop("stats")
    ds = RecDataset(name=name, noun=noun, nouns=nouns, **parts)
    stats.update(dataset_stats(ds))
    return ds, stats


# -- building and loading -------------------------------------------------------------------
def build_dataset(name: str, data_dir: str | os.PathLike = "data", llara_dir: str | os.PathLike | None = None,
                  steam_meta: str | os.PathLike | None = None, **options) -> tuple[RecDataset, dict]:
    """Build from source files (no cache): the dataset and its statistics."""
    from .llara import read_pickle_rows

    key, folder = locate(name, llara_dir)
    if folder is not None:
        opts = _folder_options(folder, options)
        return _build_own(key, folder, opts)
    _check_builtin(key, llara_dir)
    data_dir = resolve(data_dir)
    raw_llara = data_dir / "raw" / "llara"

    def official(fname, required=True):
        return fetch.llara_file(name, fname, llara_dir, raw_llara, required=required)

    def official_rows(fname, required=True):
        path = official(fname, required)
        return read_pickle_rows(path) if path else None

    val, test = official_rows("Val_data.df"), official_rows("Test_data.df")
    if name == "movielens":
        from . import movielens

        raw, source = fetch.fetch_ml100k(data_dir / "raw")
        parts = movielens.build(raw, val, test, official("u.item", required=False),
                                official_rows("train_data.df100", required=False), source)
    else:
        from . import steam

        meta = fetch.steam_meta_file(data_dir / "raw" / "steam_meta", steam_meta)
        parts = steam.build(val, test, official_rows("train_data.df1000", required=False), official("id2name.txt"), meta)
    stats = parts.pop("stats")
    noun, nouns = NOUNS[name]
    ds = RecDataset(name=name, noun=noun, nouns=nouns, **parts)
    stats.update(dataset_stats(ds))
    return ds, stats


def _check_builtin(name: str, llara_dir=None) -> None:
    if name not in DATASETS:
        root = _llara_root(llara_dir)
        subs = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in DATASETS) \
            if root is not None and root.is_dir() else []
        raise ValueError(f"unknown dataset {name!r}: choose one of {list(DATASETS)}"
                         + (f", a subfolder of {root} ({subs})" if root is not None else "")
                         + ", or give the path of a folder of your own (LLaRA format or an interaction log)")


def load_dataset(name: str | os.PathLike, data_dir: str | os.PathLike = "data", llara_dir: str | os.PathLike | None = None,
                 steam_meta: str | os.PathLike | None = None, refresh: bool = False, **options) -> RecDataset:
    """The dataset, from the verified cache under ``data_dir/processed`` or built (and cached).

    ``name``: "movielens", "steam", a folder path, or a subfolder name of the LLaRA folder.
    ``options`` (your own data): ``noun``/``nouns`` (default "item"/"items"); LLaRA format:
    ``hashes`` ({file: sha256} or a SHA256SUMS path), ``trust_unverified``; a log:
    ``min_rating``, ``max_len``, ``val_users``, ``test_users``, ``seed``, ``columns``, ``sep``.
    """
    key, folder = locate(name, llara_dir)
    cache = resolve(data_dir) / "processed" / key
    if folder is None and key not in DATASETS:
        # A name only: a dataset built earlier from a path (the folder recorded in its cache).
        meta = _read_meta(cache)
        src = (meta or {}).get("source")
        if not src:
            _check_builtin(key, llara_dir)
        if Path(src["folder"]).is_dir():  # with the options it was built with, unless given anew
            return load_dataset(src["folder"], data_dir, llara_dir, steam_meta, refresh,
                                **{**src.get("options", {}), **options})
        ds = None if refresh else _read_cache(cache, meta)
        if ds is None:
            raise CacheError(f"the cache of {key!r} ({cache}) cannot be used and its source folder {src['folder']} "
                             f"is gone: give the dataset's folder path to rebuild it")
        return ds
    source = None
    if folder is not None:
        opts = _folder_options(folder, options)
        if key in DATASETS:
            raise ValueError(f"{folder}: a dataset of your own cannot be named {key!r} (a built-in dataset): "
                             f"rename the folder (its name names the dataset)")
        source = _source_record(folder, opts)
    elif options:
        raise ValueError(f"options {sorted(options)} apply to datasets of your own, not to {key!r}")
    if not refresh:
        meta = _read_meta(cache)
        if meta is not None and meta.get("version") == CACHE_VERSION:
            if source is not None and meta.get("source") != source:
                print(f"[data] {key}: the source folder, its files or the options changed since the cache was "
                      f"built: rebuilding {cache}")
            else:
                ds = _read_cache(cache, meta)
                if ds is not None:
                    return ds
    if folder is not None:
        ds, stats = _build_own(key, folder, opts)
    else:
        ds, stats = build_dataset(key, data_dir, llara_dir, steam_meta)
    _note_duplicates(ds, stats)
    _write_cache(cache, ds, stats, source)
    return ds


def _note_duplicates(ds: RecDataset, stats: dict) -> None:
    """Count the titles several items share, in the notes and the stats (a lookup by one is an error)."""
    dup = ds.catalogue.duplicates()
    stats["duplicate_titles"] = len(dup)
    if dup:
        eg = "; ".join(f"{t!r}: ids {ids}" for t, ids in list(dup.items())[:3])
        ds.notes.append(f"Duplicate titles: {len(dup)} titles are shared by {sum(map(len, dup.values()))} items "
                        f"(e.g. {eg}); a lookup by such a title is an error listing its ids: use the id.")


def load_stats(name: str, data_dir: str | os.PathLike = "data") -> dict:
    """Statistics written beside the cache by the last build."""
    key, _ = locate(name)
    meta = _read_meta(resolve(data_dir) / "processed" / key)
    if meta is None:
        raise FileNotFoundError(f"no processed cache for {key!r} under {resolve(data_dir) / 'processed'}: "
                                f"run load_dataset({name!r}) first")
    return meta["stats"]


def dataset_stats(ds: RecDataset) -> dict:
    splits = {"train": ds.train, "val": ds.val, "test": ds.test, **ds.extra}
    return {
        "n_items": ds.n_items,
        "rows": {k: len(s) for k, s in splits.items()},
        "mean_len": {k: float(s.lens.float().mean()) if len(s) else 0.0 for k, s in splits.items()},
        "items_with_genres": sum(bool(g) for g in ds.catalogue.genres),
    }


# -- the processed cache --------------------------------------------------------------------
def _splits(ds: RecDataset) -> dict[str, Split]:
    return {"train": ds.train, "val": ds.val, "test": ds.test, **{f"extra.{k}": v for k, v in ds.extra.items()}}


def _write_cache(cache: Path, ds: RecDataset, stats: dict, source: dict | None = None) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    unseal(cache)  # the old cache is invalid from here on
    (cache / "meta.json").unlink(missing_ok=True)
    tensors = {f"{k}.{f}": getattr(s, f).clone().contiguous() for k, s in _splits(ds).items() for f in ("seqs", "lens", "next")}
    tmp = cache / f"splits.safetensors.{os.getpid()}.tmp"  # two processes building one cache never share it
    save_file(tensors, str(tmp))
    os.replace(tmp, cache / "splits.safetensors")
    c = ds.catalogue
    write_json_atomic(cache / "catalogue.json", {"titles": c.titles, "norm_titles": c.norm_titles,
                                                  "genres": c.genres, "tags": c.tags})
    write_json_atomic(cache / "meta.json", {"version": CACHE_VERSION, "name": ds.name, "n_items": ds.n_items,
                                            "max_len": ds.max_len, "notes": ds.notes, "noun": ds.noun,
                                            "nouns": ds.nouns, "stats": stats, "source": source})
    seal(cache, CACHE_FILES)  # last: its presence marks a complete cache


def _read_meta(cache: Path) -> dict | None:
    """meta.json, or None when absent; a damaged one is reported and treated as absent."""
    path = cache / "meta.json"
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        return meta
    except (ValueError, UnicodeDecodeError) as e:
        warnings.warn(f"{path} is damaged ({e}): rebuilding the cache")
        return None


def _check_payload(meta: dict, splits: dict[str, Split], c: dict) -> None:
    """The metadata against the arrays and titles it describes (``IntegrityError`` if they disagree):
    one title per item, windows ``max_len`` wide, right-padded with ``n_items``, ids in range."""
    n, L = meta["n_items"], meta["max_len"]
    sizes = {k: len(c[k]) for k in ("titles", "norm_titles")}
    if any(v != n for v in sizes.values()):
        raise IntegrityError(f"meta.json says n_items={n} but catalogue.json has {sizes}")
    for k, s in splits.items():
        if s.seqs.dim() != 2 or s.seqs.shape[1] != L or not (len(s.lens) == len(s.next) == len(s.seqs)):
            raise IntegrityError(f"split {k!r} has windows {tuple(s.seqs.shape)}, {len(s.lens)} lengths and "
                                 f"{len(s.next)} next items; meta.json says max_len={L}")
        if len(s) == 0:
            continue
        if int(s.seqs.min()) < 0 or int(s.seqs.max()) > n or int(s.next.min()) < 0 or int(s.next.max()) >= n:
            raise IntegrityError(f"split {k!r} has item ids outside 0..{n - 1} (padding id {n}, n_items in meta.json)")
        if int(s.lens.min()) < 1 or int(s.lens.max()) > L:
            raise IntegrityError(f"split {k!r} has history lengths outside 1..{L}")
        pos = torch.arange(L)[None, :]
        if bool(((s.seqs == n) != (pos >= s.lens[:, None])).any()):
            raise IntegrityError(f"split {k!r}: the padding id {n} (n_items in meta.json) is not exactly the "
                                 f"positions past each history's length")


def _read_cache(cache: Path, meta: dict | None) -> RecDataset | None:
    """The cached dataset, or None (with a warning naming the file) when a file is missing, its
    SHA-256 is not the one recorded in SHA256SUMS, or the metadata disagrees with the arrays: the
    caller rebuilds."""
    if meta is None:
        return None
    fix = f"load_dataset(..., refresh=True), or delete {cache}"
    try:
        verify(cache, CACHE_FILES, fix)
    except IntegrityError as e:
        warnings.warn(f"{e} (by hand). The processed cache is not used: rebuilding it now.")
        return None
    try:
        t = load_file(str(cache / "splits.safetensors"))
        c = json.loads((cache / "catalogue.json").read_text())
        names = sorted({k.rsplit(".", 1)[0] for k in t})
        splits = {k: Split(t[f"{k}.seqs"], t[f"{k}.lens"], t[f"{k}.next"]) for k in names}
        _check_payload(meta, splits, c)
        return RecDataset(name=meta["name"], n_items=meta["n_items"], train=splits["train"], val=splits["val"],
                          test=splits["test"], catalogue=Catalogue(c["titles"], c["norm_titles"], c["genres"], c["tags"]),
                          max_len=meta["max_len"], notes=meta["notes"], noun=meta.get("noun", "item"),
                          nouns=meta.get("nouns", "items"),
                          extra={k.split(".", 1)[1]: v for k, v in splits.items() if k.startswith("extra.")})
    except Exception as e:  # noqa: BLE001 - hashes matched, yet unreadable (written by another version?)
        warnings.warn(f"processed cache {cache} cannot be read ({type(e).__name__}: {e}): rebuilding it")
        return None
