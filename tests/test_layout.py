"""The package's import order (the README's Layout): no module imports one above it, not even lazily."""
import ast
from pathlib import Path

import pytest

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
    """The top-level module or package of a dotted name inside the package ("recinterp.tasks.run" -> "tasks")."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else module


def imports(path: Path, pkg: Path = PKG) -> set[str]:
    """Every recinterp module ``path`` imports, at the top or inside a function, in every form:
    ``import recinterp.x [as y]``, ``from recinterp.x import f``, ``from recinterp import x``, and the
    relative ``from . import x``, ``from .x import f``, ``from .. import x``.  A name imported from a
    package counts as its submodule (``from recinterp import tasks`` -> ``recinterp.tasks``), an
    attribute of the package too (``from recinterp import load_interpreter``): the layer check ignores
    names that are no module."""
    parts = [pkg.name, *path.relative_to(pkg).with_suffix("").parts]
    package = parts[:-1]  # the package a relative import starts from ("__init__" is the last part of a package)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == pkg.name}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != pkg.name:
                continue
            out.add(module)
            out |= {f"{module}.{a.name}" for a in node.names if a.name != "*"}  # the names may be submodules
    return out


def upward_imports(pkg: Path = PKG, rank: dict[str, int] = RANK) -> list[str]:
    """Every import in ``pkg`` of a module on a higher layer than the importing one's."""
    upward = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).parts
        if rel == ("__init__.py",) or path.name == "__main__.py":  # entry points sit with the notebooks, on top
            continue
        me = rel[0].removesuffix(".py")
        seen = set()
        for target in sorted(imports(path, pkg), key=len):  # one line per module reached: its shortest name
            t = top(target)
            if t in rank and t != me and rank[t] > rank[me] and t not in seen:
                seen.add(t)
                upward.append(f"{'/'.join(rel)} imports {target} (layer {rank[t]} > {rank[me]})")
    return upward


def test_every_module_has_a_layer():
    names = {p.stem for p in PKG.glob("*.py")} | {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert names - {"__init__", "__main__"} <= set(RANK), sorted(names - set(RANK) - {"__init__"})


def test_no_import_runs_upward():
    upward = upward_imports()
    assert not upward, "\n".join(upward)


FORMS = {  # each form of an upward import, written in the low module "low/core.py" of a planted package
    "import": "import plant.high\n",
    "import as": "import plant.high.sub as h\n",
    "from module": "from plant.high import f\n",
    "from package": "from plant import high\n",
    "relative module": "from ..high import f\n",
    "relative package": "from .. import high\n",
    "relative sibling": "from . import other\n",  # low/other.py is fine; see below
    "in a function": "def g():\n    from plant import high\n    return high\n",
}


@pytest.mark.parametrize("form", FORMS)
def test_a_planted_upward_import_of_each_form_fails(tmp_path, form):
    pkg = tmp_path / "plant"
    (pkg / "low").mkdir(parents=True)
    (pkg / "high").mkdir()
    for f in ("__init__.py", "low/__init__.py", "low/other.py", "high/__init__.py", "high/sub.py"):
        (pkg / f).write_text("def f():\n    pass\n")
    rank = {"low": 0, "high": 1}
    assert upward_imports(pkg, rank) == []
    (pkg / "low" / "core.py").write_text(FORMS[form])
    found = upward_imports(pkg, rank)
    if form == "relative sibling":  # an import inside its own package is no upward import
        assert found == [] and imports(pkg / "low" / "core.py", pkg) == {"plant.low", "plant.low.other"}
    else:
        assert len(found) == 1 and found[0].startswith("low/core.py imports plant.high"), found
    (pkg / "high" / "core.py").write_text(FORMS[form].replace("high", "low"))  # the same import downward passes
    assert upward_imports(pkg, rank) == found
