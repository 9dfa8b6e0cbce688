"""Set-up files agree with each other, and the notebooks follow the house rules."""
import json
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for reqs in py["optional-dependencies"].values() for r in reqs]  # test, book, ...
    wanted = {CONDA_NAMES.get(_name(r), _name(r)) for r in py["dependencies"] + extras}
    env = (REPO / "environment.yml").read_text()
    deps = env.split("dependencies:", 1)[1].split("  - pip:", 1)[0]
    listed = {_name(m) for m in re.findall(r"^  - (\S+)", deps, flags=re.M)} - {"python", "pip"}
    assert wanted == listed, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"


def test_notebooks_are_clean_and_parameterised():
    nbs = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert nbs, "no numbered notebooks"
    for p in nbs:
        nb = json.loads(p.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", p
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), f"{p} has outputs"
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{p}: exactly one parameters cell expected"
        for line in "".join(tagged[0]["source"]).splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                name, _, value = line.partition("=")
                assert name.strip().isidentifier(), f"{p}: {line!r}"
                compile(value.strip(), "<param>", "eval")
                assert re.fullmatch(r"""(".*"|'.*'|-?[0-9.e+-]+|True|False|None)(\s*#.*)?""", value.strip()), \
                    f"{p}: parameters must be plain literals, got {line!r}"
