"""Notebook parameters given on the command line, checked against what the notebooks declare.

``python -m recinterp.reproduce --param devcie=cuda`` must not run with the defaults: a
name that no selected notebook declares is refused (listing the declared ones), and a
value is converted to the type of the notebook's default (``seed=abc`` is refused).
"""
from __future__ import annotations

import ast
from pathlib import Path


def declared_defaults(nb_path: Path) -> dict:
    """{name: default value} of the notebook's cell tagged ``parameters`` (plain literals)."""
    from recinterp.config import read_json
    nb = read_json(nb_path, f"restore it from git (git checkout -- {nb_path})")
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            out = {}
            for node in ast.parse("".join(cell["source"])).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        out[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[node.targets[0].id] = None  # not a literal: any value goes
            return out
    raise ValueError(f"{nb_path} has no cell tagged 'parameters'")


def convert(name: str, value: str, default):
    """``value`` (command-line text) as the type of ``default``; a ValueError says what was expected."""
    if isinstance(default, bool):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"parameter {name} is a bool (true/false), got {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"parameter {name} is an int, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"parameter {name} is a float, got {value!r}") from None
    if isinstance(default, str):
        return value
    try:  # None or a container default: a Python literal, else the text itself
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def check_params(pairs: list[str], nbs: list[Path]) -> dict:
    """["seed=1", "llm=x"] -> {"seed": 1, "llm": "x"}, each name declared by a selected notebook and each
    value of its declared type; anything else is a ValueError naming the problem."""
    declared: dict[str, object] = {}
    for nb in nbs:
        for k, v in declared_defaults(nb).items():
            declared.setdefault(k, v)  # the notebooks agree on a shared parameter's type
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValueError(f"--param expects NAME=VALUE, got {pair!r}")
        if name not in declared:
            raise ValueError(f"unknown parameter {name!r}: no selected notebook declares it. Declared: "
                             f"{', '.join(sorted(declared))}")
        out[name] = convert(name, value, declared[name])
    return out
