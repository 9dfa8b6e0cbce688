"""ID-based sequential recommenders (one file each) and DreamRec.

    enc = build_encoder("sasrec", n_items=1682, d=64, max_len=10)
    h_all = enc.hidden_states(ids, lens)     # (B, 10, 64), what the adapter reads

See ``base.SeqEncoder`` for the shared interface, ``train`` for fitting and
evaluation, ``checkpoint`` for save/load by (dataset, name).
"""
from __future__ import annotations

from dataclasses import fields

from recinterp.labels import ENCODER_LABELS, encoder_label

from .base import EncoderConfig, SeqEncoder
from .caser import Caser, CaserConfig
from .dreamrec import DreamRec, DreamRecConfig, apply_bridge, bridge_r2, fit_embedding_bridge
from .gru4rec import GRU4Rec, GRU4RecConfig
from .sasrec import SASRec, SASRecConfig

# name -> (model class, its config dataclass)
ENCODERS: dict[str, tuple[type[SeqEncoder], type[EncoderConfig]]] = {
    "sasrec": (SASRec, SASRecConfig),
    "gru4rec": (GRU4Rec, GRU4RecConfig),
    "caser": (Caser, CaserConfig),
}


def register_encoder(name: str, cls: type[SeqEncoder], cfg_cls: type[EncoderConfig]) -> None:
    """Make a new encoder known by ``name`` (a ``SeqEncoder`` subclass and its config dataclass): then
    ``build_encoder``, checkpoints and every task, route and table take it like the built-in ones."""
    if not (isinstance(cls, type) and issubclass(cls, SeqEncoder)) or not issubclass(cfg_cls, EncoderConfig):
        raise ValueError(f"register_encoder({name!r}) needs a SeqEncoder subclass and an EncoderConfig subclass, "
                         f"got {cls!r}, {cfg_cls!r}")
    ENCODERS[name] = (cls, cfg_cls)
    if cls.label:  # prose (and the report, which imports no torch) names it by its label
        ENCODER_LABELS[name] = cls.label
    else:
        ENCODER_LABELS.pop(name, None)


def build_encoder(name: str, n_items: int, **cfg) -> SeqEncoder:
    """An untrained encoder by name; ``cfg`` overrides fields of its config dataclass."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}: choose one of {sorted(ENCODERS)}")
    cls, cfg_cls = ENCODERS[name]
    known = {f.name for f in fields(cfg_cls)} - {"n_items"}
    unknown = set(cfg) - known
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for {name}; it takes {sorted(known)}")
    return cls(cfg_cls(n_items=n_items, **cfg))


from .checkpoint import load_checkpoint, reloads_bitwise, save_checkpoint  # noqa: E402  (needs ENCODERS)

__all__ = [
    "ENCODERS", "register_encoder", "build_encoder", "encoder_label", "SeqEncoder", "EncoderConfig",
    "SASRec", "SASRecConfig", "GRU4Rec", "GRU4RecConfig", "Caser", "CaserConfig",
    "DreamRec", "DreamRecConfig", "fit_embedding_bridge", "apply_bridge", "bridge_r2",
    "save_checkpoint", "load_checkpoint", "reloads_bitwise",
]
