"""Checkpoints: ``root/<dataset>/<name>/model.safetensors`` + ``config.json``.

Only tensors and JSON: no pickled modules, so a checkpoint loads with any code
version that has the same config fields.  The config holds the model's
dataclass config, the seed, the metrics measured at save time and the SHA-256 of
the weights file; both files are written through a temporary file + rename, then a
``SHA256SUMS`` of both (``recinterp.config.seal``), which is checked before either is read.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from recinterp.config import read_json, seal, sha256_file, unseal, verify, write_json_atomic

FORMAT = 1
FILES = ("model.safetensors", "config.json")


def checkpoint_dir(root, dataset: str, name: str) -> Path:
    return Path(root) / dataset / name


def save_checkpoint(model: torch.nn.Module, root, dataset: str, metrics: dict | None = None,
                    seed: int | None = None, extra: dict | None = None, name: str | None = None) -> Path:
    """Write the model's weights and config; returns the checkpoint folder.

    ``name`` defaults to ``model.name``; pass another to keep two variants of one model
    side by side (e.g. "dreamrec_learned").
    """
    kind = getattr(model, "name", None)
    if not kind or not hasattr(model, "config_dict"):
        raise ValueError(f"cannot checkpoint {type(model).__name__}: it needs .name and .config_dict()")
    name = name or kind
    out = checkpoint_dir(root, dataset, name)
    out.mkdir(parents=True, exist_ok=True)
    unseal(out)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = out / "model.safetensors"
    tmp = out / "model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={"name": name, "dataset": dataset})
    os.replace(tmp, weights)
    cfg = {"format": FORMAT, "name": name, "model": kind, "dataset": dataset, "config": model.config_dict(),
           "seed": seed, "metrics": metrics or {}, "extra": extra or {},
           "weights_sha256": sha256_file(weights), "torch_version": torch.__version__}
    write_json_atomic(out / "config.json", cfg)
    seal(out, FILES)
    return out


def read_checkpoint_config(root, dataset: str, name: str) -> dict:
    path = checkpoint_dir(root, dataset, name) / "config.json"
    if not path.exists():
        from . import ENCODERS

        folder = Path(root) / dataset
        saved = sorted(p.name for p in folder.iterdir() if (p / "config.json").exists()) if folder.is_dir() else []
        raise FileNotFoundError(f"no checkpoint for {name!r} on {dataset!r}: {path} is missing. Saved there: "
                                f"{saved or 'none'}; known models: {sorted(ENCODERS) + ['dreamrec', 'dreamrec_<variant>']} "
                                f"(run notebooks/02_recommenders.ipynb first)")
    fix = f"re-save the checkpoint (rerun notebooks/02_recommenders.ipynb), or delete {path.parent}"
    if (path.parent / FILES[0]).exists():
        verify(path.parent, FILES, fix, unsealed="warn")
    return read_json(path, fix)


def load_checkpoint(root, dataset: str, name: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model saved by ``save_checkpoint``, in eval mode, with ``.checkpoint_info`` (the config.json)."""
    from . import ENCODERS
    from .dreamrec import DreamRec, DreamRecConfig

    info = read_checkpoint_config(root, dataset, name)
    weights = checkpoint_dir(root, dataset, name) / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"checkpoint {weights} is missing")
    if info.get("weights_sha256") != sha256_file(weights):
        raise ValueError(f"{weights} does not match its config.json (sha256 differs): re-save the checkpoint")
    kind = info.get("model", info["name"])
    if kind in ENCODERS:
        cls, cfg_cls = ENCODERS[kind]
    elif kind == DreamRec.name:
        cls, cfg_cls = DreamRec, DreamRecConfig
    else:
        raise ValueError(f"unknown model {kind!r} in {weights.parent}")
    state = load_file(str(weights), device=str(device))
    cfg = cfg_cls(**info["config"])
    if cls is DreamRec and cfg.item_source in ("frozen", "pretrained"):  # the table is among the weights
        scale = cfg.item_scale
        model = cls(cfg, item_table=state["encoder.item_embeddings.weight"][: cfg.n_items].cpu() * scale)
        cfg.item_scale = scale  # keep the saved scale exactly (recomputing the std may round)
    else:
        model = cls(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"checkpoint {weights} does not fit {info['name']}: missing {missing}, unexpected {unexpected}")
    model.to(device).eval()
    model.checkpoint_info = info
    return model


@torch.no_grad()
def reloads_bitwise(model: torch.nn.Module, root, dataset: str, name: str, split, seed: int = 0,
                    n_rows: int = 256) -> bool:
    """Does the checkpoint saved for ``model`` load back bit for bit?  Every tensor of the state dict equal,
    and equal outputs on the first ``n_rows`` histories of ``split`` (a ``Split``): hidden states for an
    encoder, seeded samples of the ideal item for DreamRec."""
    dev = next(model.parameters()).device
    back = load_checkpoint(root, dataset, name, device=dev)
    a, b = model.state_dict(), back.state_dict()
    same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ids, lens = split.seqs[:n_rows].to(dev), split.lens[:n_rows].to(dev)
    model.eval()
    if hasattr(model, "sample_ideal"):
        out_a = model.sample_ideal(ids, lens, generator=torch.Generator().manual_seed(seed))
        out_b = back.sample_ideal(ids, lens, generator=torch.Generator().manual_seed(seed))
    else:
        out_a, out_b = model.hidden_states(ids, lens), back.hidden_states(ids, lens)
    return bool(same and torch.equal(out_a, out_b))
