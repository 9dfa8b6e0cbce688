"""Presets and paths.

A preset is one JSON file (``recinterp/presets/<name>.json``) with a section per
notebook: ``data``, ``recommenders``, ``recovery``, ``residual``,
``instantiation``, ``figures``.  ``smoke`` runs every notebook in seconds to
minutes (tests), ``cpu`` is the default reproduction on 2 cores, ``gpu`` is the
paper scale.  A path to a JSON file of the same shape works as a preset too.
"""
from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

PRESET_DIR = Path(__file__).parent / "presets"

# Preset section -> the notebook that reads it (and writes <results>/<notebook>/metrics.json).
NOTEBOOKS = {"data": "01_data_prep", "recommenders": "02_recommenders", "recovery": "03_sequence_recovery",
             "residual": "04_sequence_residual", "instantiation": "05_ideal_item_instantiation", "figures": "06_figures"}


def section_of(notebook: str) -> str | None:
    """The preset section a notebook reads, from its number ("03_..." -> "recovery"); None if unknown."""
    return next((s for s, nb in NOTEBOOKS.items() if nb[:2] == Path(notebook).name[:2]), None)


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str, section: str | None = None) -> dict:
    """The preset ``name`` (or a path to a JSON file), whole or one section of it."""
    path = Path(name)
    if not (path.suffix == ".json" and path.exists()):
        path = PRESET_DIR / f"{name}.json"
    if not path.exists():
        raise ValueError(f"unknown preset {name!r}: choose one of {available_presets()} or give a path to a .json file")
    cfg = json.loads(path.read_text())
    if section is None:
        return cfg
    if section not in cfg:
        raise KeyError(f"preset {name!r} has no section {section!r} (it has {sorted(cfg)})")
    return cfg[section]


def from_options(cls, options: dict, what: str):
    """A config dataclass from a dict of options; an unknown name raises, naming ``what`` and the known ones."""
    names = {f.name for f in fields(cls)}
    unknown = set(options) - names
    if unknown:
        raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; known: {sorted(names)}")
    return cls(**options)


def repo_root() -> Path:
    """The checkout's root: the first folder upwards from the cwd (or this package) with a pyproject.toml."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for p in (start, *start.parents):
            if (p / "pyproject.toml").exists() and (p / "recinterp").is_dir():
                return p
    return Path.cwd()


def resolve(path: str | os.PathLike) -> Path:
    """Relative paths are taken from the repository root, so notebooks run the same from
    ``notebooks/`` (Jupyter) and from the root (papermill, the Makefile)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else repo_root() / p


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write text through a temporary file + rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write JSON through a temporary file + rename, so a crash never leaves half a file."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable))


def _jsonable(o):
    try:
        import numpy as np
        import torch
        if isinstance(o, torch.Tensor):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
