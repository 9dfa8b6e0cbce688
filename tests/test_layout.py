"""The package's import order (the README's Layout): no module imports one above it, not even lazily."""
import ast
from pathlib import Path

import recinterp

PKG = Path(recinterp.__file__).parent

# Top-level module or package -> its layer, lowest first (the README's Layout section, in this order).
LAYERS = [
    ("config", "labels", "metrics", "params", "llm_source"),
    ("data", "textmatch", "novelty"),
    ("models",),
    ("llm", "adapter", "prompts", "collator"),
    ("interpreter", "align", "memory"),
    ("cases",),
    ("controls",),
    ("train_adapter", "probes"),
    ("tasks",),
    ("plan", "instantiation", "comparison", "judges", "openai_judge", "trained", "must_light"),
    ("report", "grid", "figures", "reproduce", "book"),
    ("curve", "readouts", "seeds", "lesson", "dreamrec_grid", "evidence"),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def top(module: str) -> str:
    return module.split(".")[1] if module.startswith("recinterp.") else module


def imports(path: Path) -> set[str]:
    """Every recinterp module ``path`` imports, at the top or inside a function."""
    parts = ["recinterp", *path.relative_to(PKG).with_suffix("").parts]
    package = parts[:-1]  # the package a relative import starts from ("__init__" is the last part of a package)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("recinterp")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                out.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module and node.module.startswith("recinterp"):
                out.add(node.module)
    return out


def test_every_module_has_a_layer():
    names = {p.stem for p in PKG.glob("*.py")} | {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert names - {"__init__", "__main__"} <= set(RANK), sorted(names - set(RANK) - {"__init__"})


def test_no_import_runs_upward():
    upward = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        if rel == ("__init__.py",) or path.name == "__main__.py":  # entry points sit with the notebooks, on top
            continue
        me = rel[0].removesuffix(".py")
        for target in imports(path):
            t = top(target)
            if t in RANK and t != me and RANK[t] > RANK[me]:
                upward.append(f"{'/'.join(rel)} imports {target} (layer {RANK[t]} > {RANK[me]})")
    assert not upward, "\n".join(upward)
