"""Where an LLM named by ``load_llm`` comes from, checked before transformers tries (and retries).

- An empty name is a ``ValueError`` listing what a name may be.
- A name that looks like a path (``/x``, ``./x``, ``~/x``, ``a/b/c``) and does not exist is a
  ``FileNotFoundError``, not a hub error about repo-id syntax; so is a folder with no model in
  it (no ``config.json``), instead of transformers' advice to install a tokenizer library.
- A hub id (``org/name``) that is not in the local Hugging Face cache needs the hub: with
  ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set, or when a 3-second connection probe to the
  hub (or the https proxy) fails, it is a :class:`ModelUnavailable` at once (instead of ~50 s
  of retries), saying to download the model first.  A cached id with no network loads with
  ``local_files_only=True``.
"""
from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path

PROBE_TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")


class ModelUnavailable(OSError):
    """The model is neither on disk nor reachable."""


def looks_local(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def in_local_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    for f in ("config.json", "tokenizer_config.json"):
        try:
            if isinstance(try_to_load_from_cache(repo_id, f), str):
                return True
        except Exception:  # noqa: BLE001 - an id the hub would reject: not cached
            return False
    return False


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(reachable?, what was probed): one TCP connection to the hub, or to the https proxy if set."""
    target = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") \
        or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    u = urllib.parse.urlparse(target if "://" in target else "http://" + target)
    host, port = u.hostname or "", u.port or (443 if u.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True, f"{host}:{port}"
    except OSError as e:
        return False, f"{host}:{port} ({type(e).__name__}: {e})"


KINDS = ("load_llm takes 'embedded' (the bundled SmolLM2), 'tiny' (a random test model), a local folder "
         "or .gguf file, or a Hugging Face hub id such as 'HuggingFaceTB/SmolLM2-135M-Instruct'")


WEIGHT_FILES = ("*.safetensors", "*.bin", "*.gguf", "*.pt", "*.pth", "*.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "tokenizer_config.json")


def check_model_folder(p: Path) -> None:
    """A folder with a config.json must also hold weights and a tokenizer: what is missing is named
    before transformers fails on it with an error about something else."""
    missing = []
    if not any(any(p.glob(g)) for g in WEIGHT_FILES):
        missing.append("the weights (model.safetensors or pytorch_model.bin)")
    if not any((p / f).is_file() for f in TOKENIZER_FILES):
        missing.append("the tokenizer files (tokenizer.json or tokenizer.model, with tokenizer_config.json)")
    if missing:
        held = sorted(q.name for q in p.iterdir())
        raise FileNotFoundError(f"{p} is not a whole model folder: it lacks {' and '.join(missing)} (it holds "
                                f"{held[:12]}). To fix: save the model and its tokenizer there (model.save_pretrained "
                                f"and tokenizer.save_pretrained), or `huggingface-cli download <id> --local-dir {p}`")


def check_model_source(name: str) -> dict:
    """Extra ``from_pretrained`` keyword arguments for ``name``, or a clear error right away."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"no model named (got {name!r}): {KINDS}")
    p = Path(name).expanduser()
    if p.is_dir() and not (p / "config.json").is_file():
        held = sorted(q.name for q in p.iterdir())
        raise FileNotFoundError(f"{p} holds no model: a model folder has a config.json, the weights and the tokenizer "
                                f"files, as save_pretrained / huggingface-cli download write them (it holds "
                                f"{held[:12] or 'nothing'}); {KINDS}")
    if p.is_dir():
        check_model_folder(p)
    if p.exists():
        return {}
    if looks_local(name):
        raise FileNotFoundError(f"no such model folder: {p} ({KINDS})")
    if in_local_cache(name):
        return {} if not offline() and hub_reachable()[0] else {"local_files_only": True}
    how = (f"download it first on a machine with network (`huggingface-cli download {name}`, or "
           f"`huggingface_hub.snapshot_download('{name}')`) into the Hugging Face cache (HF_HOME), or pass the "
           f"path of a folder holding it")
    if offline():
        raise ModelUnavailable(f"model {name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE / "
                               f"TRANSFORMERS_OFFLINE is set: {how}")
    ok, probed = hub_reachable()
    if not ok:
        raise ModelUnavailable(f"model {name!r} is not in the local Hugging Face cache and the hub cannot be "
                               f"reached (probed {probed}): {how}")
    return {}
