"""Helpers for notebook 06: read every notebook's metrics.json, save figures with stable names.

A figure drawn from a smoke run is stamped as such, so it can never pass for a result.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

NOTEBOOK_DIRS = {
    "data": "01_data_prep",
    "recommenders": "02_recommenders",
    "recovery": "03_sequence_recovery",
    "residual": "04_sequence_residual",
    "instantiation": "05_ideal_item_instantiation",
}


def load_all_metrics(results_dir: str | os.PathLike) -> dict[str, dict]:
    """{"data": {...}, "recommenders": {...}, ...}: every metrics.json found (missing ones are left out)."""
    out = {}
    for key, folder in NOTEBOOK_DIRS.items():
        p = Path(results_dir) / folder / "metrics.json"
        if p.exists():
            out[key] = json.loads(p.read_text())
    return out


def stamp(fig, preset: str) -> None:
    """Mark figures that do not come from a real run."""
    if preset == "smoke":
        fig.text(0.5, 0.5, "SMOKE RUN — not a result", ha="center", va="center", fontsize=22, color="red",
                 alpha=0.25, rotation=20, transform=fig.transFigure)
    fig.text(0.99, 0.005, f"preset: {preset}", ha="right", va="bottom", fontsize=7, color="gray")


def save_figure(fig, name: str, figures_dir: str | os.PathLike, preset: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` (through temporary files) and return their paths."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    stamp(fig, preset)
    paths = []
    for ext in ("png", "pdf"):
        final = figures_dir / f"{name}.{ext}"
        tmp = figures_dir / f".{name}.tmp.{ext}"
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, final)
        paths.append(final)
    return paths


def ci_text(d: dict, digits: int = 3) -> str:
    """'0.123 [0.100, 0.150] (n=300)' from a {mean, lo, hi, n} summary."""
    return f"{d['mean']:.{digits}f} [{d['lo']:.{digits}f}, {d['hi']:.{digits}f}] (n={d['n']})"
