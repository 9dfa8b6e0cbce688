"""Datasets: ``load_dataset("movielens" | "steam")`` -> :class:`RecDataset`.

The first call builds the dataset from the raw/official files (see ``fetch``) and
caches it under ``data/processed/<name>/`` as safetensors + JSON (no pickles); later
calls read the cache.  ``refresh=True`` rebuilds.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file, save_file

from ..config import resolve, write_json_atomic
from . import fetch
from .checksums import ChecksumError
from .titles import normalize_title
from .types import Catalogue, RecDataset, Split

DATASETS = ("movielens", "steam")
CACHE_VERSION = 2  # 2: Steam titles HTML-unescaped
__all__ = ["load_dataset", "build_dataset", "DATASETS", "RecDataset", "Split", "Catalogue", "normalize_title",
           "ChecksumError", "dataset_stats"]


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {list(DATASETS)}")
    return name


def build_dataset(name: str, data_dir: str | os.PathLike = "data", llara_dir: str | os.PathLike | None = None,
                  steam_meta: str | os.PathLike | None = None) -> tuple[RecDataset, dict]:
    """Build from source files (no cache): the dataset and its statistics."""
    from .llara import read_pickle_rows

    _check_name(name)
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
    ds = RecDataset(name=name, **parts)
    stats.update(dataset_stats(ds))
    return ds, stats


def load_dataset(name: str, data_dir: str | os.PathLike = "data", llara_dir: str | os.PathLike | None = None,
                 steam_meta: str | os.PathLike | None = None, refresh: bool = False) -> RecDataset:
    """The dataset, from the cache under ``data_dir/processed`` or built (and cached) from source."""
    _check_name(name)
    cache = resolve(data_dir) / "processed" / name
    if not refresh and (cache / "meta.json").exists():
        meta = json.loads((cache / "meta.json").read_text())
        if meta.get("version") == CACHE_VERSION:
            return _read_cache(cache, meta)
    ds, stats = build_dataset(name, data_dir, llara_dir, steam_meta)
    _write_cache(cache, ds, stats)
    return ds


def load_stats(name: str, data_dir: str | os.PathLike = "data") -> dict:
    """Statistics written beside the cache by the last build."""
    return json.loads((resolve(data_dir) / "processed" / _check_name(name) / "meta.json").read_text())["stats"]


def dataset_stats(ds: RecDataset) -> dict:
    splits = {"train": ds.train, "val": ds.val, "test": ds.test, **ds.extra}
    return {
        "n_items": ds.n_items,
        "rows": {k: len(s) for k, s in splits.items()},
        "mean_len": {k: float(s.lens.float().mean()) for k, s in splits.items()},
        "items_with_genres": sum(bool(g) for g in ds.catalogue.genres),
    }


def _splits(ds: RecDataset) -> dict[str, Split]:
    return {"train": ds.train, "val": ds.val, "test": ds.test, **{f"extra.{k}": v for k, v in ds.extra.items()}}


def _write_cache(cache: Path, ds: RecDataset, stats: dict) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    tensors = {f"{k}.{f}": getattr(s, f).clone().contiguous() for k, s in _splits(ds).items() for f in ("seqs", "lens", "next")}
    tmp = cache / "splits.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, cache / "splits.safetensors")
    c = ds.catalogue
    write_json_atomic(cache / "catalogue.json", {"titles": c.titles, "norm_titles": c.norm_titles,
                                                  "genres": c.genres, "tags": c.tags})
    # meta.json last: its presence marks a complete cache.
    write_json_atomic(cache / "meta.json", {"version": CACHE_VERSION, "name": ds.name, "n_items": ds.n_items,
                                            "max_len": ds.max_len, "notes": ds.notes, "stats": stats})


def _read_cache(cache: Path, meta: dict) -> RecDataset:
    t = load_file(str(cache / "splits.safetensors"))
    names = sorted({k.rsplit(".", 1)[0] for k in t})
    splits = {k: Split(t[f"{k}.seqs"], t[f"{k}.lens"], t[f"{k}.next"]) for k in names}
    c = json.loads((cache / "catalogue.json").read_text())
    return RecDataset(name=meta["name"], n_items=meta["n_items"], train=splits["train"], val=splits["val"],
                      test=splits["test"], catalogue=Catalogue(c["titles"], c["norm_titles"], c["genres"], c["tags"]),
                      max_len=meta["max_len"], notes=meta["notes"],
                      extra={k.split(".", 1)[1]: v for k, v in splits.items() if k.startswith("extra.")})
