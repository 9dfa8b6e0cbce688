"""No default typed twice: the settings whose home is ``recinterp.config`` (the structured adapter's temperature,
the repetition penalty, the answer lengths) appear nowhere else in the package as a literal."""
import ast
from pathlib import Path

import pytest

import recinterp
from recinterp import config

PKG = Path(recinterp.__file__).parent
HOME = PKG / "config.py"
WATCHED = {  # a name a setting is passed by -> the values whose home is config
    "temperature": {config.STRUCTURED_TEMPERATURE},
    "repetition_penalty": {config.REPETITION_PENALTY},
    "max_new_tokens": {config.MAX_NEW_TOKENS, config.TITLE_TOKENS, config.LIST_TOKENS},
}


def _number(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


def literal_settings(source: str) -> list[tuple[int, str, float]]:
    """(line, name, value) of every number given to a watched name in ``source``, as a keyword argument, a
    parameter default, a dataclass field or assignment, a dict entry, or the default of ``.get(name, value)``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        pairs = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs += list(zip([x.arg for x in pos[len(pos) - len(a.defaults):]], a.defaults))
            pairs += [(x.arg, d) for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
        elif isinstance(node, ast.Call):
            pairs += [(k.arg, k.value) for k in node.keywords if k.arg]
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ("get", "setdefault", "pop") and len(node.args) == 2 \
                    and isinstance(node.args[0], ast.Constant):
                pairs.append((node.args[0].value, node.args[1]))
        elif isinstance(node, ast.Dict):
            pairs += [(k.value, v) for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            pairs.append((node.target.id, node.value))
        elif isinstance(node, ast.Assign):
            pairs += [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
        out += [(v.lineno, n, v.value) for n, v in pairs if n in WATCHED and _number(v)]
    return out


def test_each_default_has_one_home():
    again = [f"{p.relative_to(PKG)}:{line}: {name}={value} (use recinterp.config's constant)"
             for p in sorted(PKG.rglob("*.py")) if p != HOME
             for line, name, value in literal_settings(p.read_text()) if value in WATCHED[name]]
    assert not again, "\n".join(again)


@pytest.mark.parametrize("source", [
    f"def f(x, temperature={config.STRUCTURED_TEMPERATURE}):\n    pass\n",
    f"def f(*, repetition_penalty={config.REPETITION_PENALTY}):\n    pass\n",
    f"g(max_new_tokens={config.TITLE_TOKENS})\n",
    f"EVAL = {{'max_new_tokens': {config.LIST_TOKENS}}}\n",
    f"t = cfg.get('temperature', {config.STRUCTURED_TEMPERATURE})\n",
    f"class C:\n    max_new_tokens: int = {config.MAX_NEW_TOKENS}\n",
    f"def f():\n    repetition_penalty = {config.REPETITION_PENALTY}\n",
])
def test_a_second_copy_of_a_default_is_found(source):
    (line, name, value), = literal_settings(source)
    assert value in WATCHED[name]
    named = source.replace(repr(value), "config.X")  # read from its home: nothing to find
    assert literal_settings(named) == []
