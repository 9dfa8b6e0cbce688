"""How prose names the registered encoders, in pure Python (no torch), so that the report reads
metrics.json without importing the models.

The built-in encoders' labels live here and their classes read them (``SASRec.label``);
``models.register_encoder`` records a new encoder's ``label`` here too.
"""
from __future__ import annotations

# encoder name -> how prose names it
ENCODER_LABELS: dict[str, str] = {"sasrec": "SASRec", "gru4rec": "GRU4Rec", "caser": "Caser"}


def encoder_label(name: str) -> str:
    """How prose names a registered encoder ("SASRec" for "sasrec"); the name itself when it has no label."""
    return ENCODER_LABELS.get(name) or name
