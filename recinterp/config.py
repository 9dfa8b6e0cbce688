"""Presets, paths, atomic writes, and the integrity rule of every file recinterp writes.

A preset is one JSON file (``recinterp/presets/<name>.json``) with a section per
notebook: ``data``, ``recommenders``, ``recovery``, ``residual``,
``instantiation``, ``figures``.  ``smoke`` runs every notebook in seconds to
minutes (tests), ``cpu`` is the default reproduction on 2 cores, ``gpu`` is the
paper scale.  A path to a JSON file of the same shape works as a preset too.

Integrity: every folder the package saves (adapters, training checkpoints, cached cases,
processed data) gets a ``SHA256SUMS`` beside its files, written last (``seal``; the format
``sha256sum -c SHA256SUMS`` reads).  ``verify`` checks it before anything is read: a trained
artefact that does not match is refused (``IntegrityError`` names the file and the fix), a
cache that can be rebuilt is rebuilt with a warning naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import fields
from pathlib import Path

PRESET_DIR = Path(__file__).parent / "presets"

# -- defaults typed once: every layer reads them from here (tests/test_defaults.py fails on a second copy) ----
STRUCTURED_TEMPERATURE = 0.05  # the structured adapter's readout softmax (small: ~ the readout's top item)
REPETITION_PENALTY = 1.2  # greedy decoding's repetition control in every evaluation and reading
MAX_NEW_TOKENS = 64  # a generation that no task sizes
TITLE_TOKENS = 24  # an answer that names one title (item alignment, the residual, task 3)
LIST_TOKENS = 96  # an answer that lists a window's titles (recovery)

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
    cfg = read_json(path, "fix or restore the preset file")
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
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: two writers never share a half file
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


# -- integrity of what recinterp writes ------------------------------------------------------
SUMS = "SHA256SUMS"


class IntegrityError(ValueError):
    """A file recinterp wrote does not match the SHA-256 recorded beside it (or cannot be parsed)."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_sha256(module) -> str:
    """SHA-256 of a module's weights: every tensor of its state_dict, by name, with its dtype and shape.
    Caches and adapters made from an encoder record it, so that a retrained encoder (same config, same
    name, other weights) is told apart from the one they were made from."""
    import torch

    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def read_json(path: str | os.PathLike, fix: str = "delete it to rebuild it, or re-save it"):
    """JSON from ``path``; a truncated or garbled file raises ``IntegrityError`` naming it and ``fix``."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise IntegrityError(f"{path} is not valid JSON (truncated or edited?): {e}. To fix: {fix}") from None


def rerun_fix(path: str | os.PathLike) -> str:
    """The fix for a damaged file a notebook wrote under ``<results>/<notebook>/``: rerun that notebook."""
    path = Path(path)
    nb = path.parent.name
    return (f"rerun {nb}, which writes it (python -m recinterp.reproduce --only {nb[:2]} --force "
            f"--results {path.parent.parent} with the preset that made it)")


def read_sums(folder: str | os.PathLike) -> dict[str, str] | None:
    """{file name: sha256} from ``folder/SHA256SUMS``; None when there is none."""
    path = Path(folder) / SUMS
    if not path.exists():
        return None
    out = {}
    for ln, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or any(c not in "0123456789abcdef" for c in digest):
            raise IntegrityError(f"{path} line {ln} is not '<sha256>  <file>' (damaged?): {line[:80]!r}")
        out[name] = digest
    return out


def seal(folder: str | os.PathLike, names) -> Path:
    """Record the SHA-256 of ``names`` (files in ``folder``) in ``folder/SHA256SUMS``, adding to the
    entries already there; written atomically, after the files it describes."""
    folder = Path(folder)
    try:
        sums = read_sums(folder) or {}
    except IntegrityError:
        sums = {}  # a damaged list is replaced: every file still named is hashed again below
    sums = {k: v for k, v in sums.items() if (folder / k).exists()}
    sums.update({n: sha256_file(folder / n) for n in names})
    write_text_atomic(folder / SUMS, "".join(f"{v}  {k}\n" for k, v in sorted(sums.items())))
    return folder / SUMS


def unseal(folder: str | os.PathLike) -> None:
    """Drop ``folder/SHA256SUMS`` before its files are rewritten: a save cut short is never sealed."""
    (Path(folder) / SUMS).unlink(missing_ok=True)


def verify(folder: str | os.PathLike, names, fix: str, unsealed: str = "error") -> None:
    """Check ``names`` in ``folder`` against ``folder/SHA256SUMS`` before they are read.

    A missing file, a file not listed, or a SHA-256 that differs raises ``IntegrityError`` naming the
    file and ``fix``.  A folder with no SHA256SUMS at all (written by a recinterp before the rule, or a
    save cut short): ``unsealed="error"`` raises too, ``"warn"`` warns and goes on unverified."""
    folder = Path(folder)
    sums = read_sums(folder)
    if sums is None:
        msg = (f"{folder} has no {SUMS} (saved by an older recinterp, or its save was cut short): its files "
               f"cannot be verified")
        if unsealed == "warn":
            warnings.warn(f"{msg}; reading them unverified (re-save it to record their SHA-256)", stacklevel=3)
            return
        raise IntegrityError(f"{msg}. To fix: {fix}")
    for n in names:
        path = folder / n
        if not path.exists():
            saved = f" ({folder / SUMS} lists it: it was saved, then removed)" if n in sums else ""
            raise IntegrityError(f"{path} is missing{saved}. To fix: {fix}")
        if n not in sums:
            raise IntegrityError(f"{path} is not listed in {folder / SUMS}: it was not written with the rest. "
                                 f"To fix: {fix}")
        if sha256_file(path) != sums[n]:
            raise IntegrityError(f"{path} does not match the SHA-256 recorded in {folder / SUMS} when it was saved "
                                 f"(damaged, truncated or edited since). To fix: {fix}")
