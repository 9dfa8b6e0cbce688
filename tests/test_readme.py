"""The README a newcomer reads: short, the two commands first, every docs/ link leading somewhere, and its
snippet asking the model something runs as written. The measurement log (docs/measurements.md): each table
says where it was measured, and its prose names no commit."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MEASUREMENTS = REPO / "docs" / "measurements.md"
MAX_LINES = 200


def _readme() -> str:
    return README.read_text()


def test_readme_is_short():
    n = len(_readme().splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines (at most {MAX_LINES}): move detail to docs/guide.md or docs/measurements.md"


def test_readme_opens_with_the_two_commands():
    lines = _readme().splitlines()
    first_block = next(i for i, line in enumerate(lines) if line.startswith("```"))
    assert first_block <= 5 and lines[first_block] == "```bash", "the first thing after the title is the bash block"
    block = lines[first_block + 1: lines.index("```", first_block + 1)]
    assert [line.split()[:2] for line in block] == [["make", "reproduce"], ["make", "test"]], block
    # what they produce, with times, right under them
    table = "\n".join(lines[first_block: first_block + 15])
    assert re.search(r"\| `make reproduce` \|.*\| \*\*[\d.]+ min\*\*", table) and re.search(r"\| `make test` \|.*\| \*\*[\d.]+ min\*\*", table)


def test_every_docs_link_exists_and_every_docs_page_is_listed():
    text = _readme()
    links = set(re.findall(r"\]\((docs/[^)#\s]+)", text))
    assert links, "the README links its docs/ pages"
    missing = sorted(link for link in links if not (REPO / link).is_file())
    assert not missing, f"README.md links to {missing}, which do not exist"
    section = text.split("\n## Documentation\n", 1)
    assert len(section) == 2, "README.md needs a '## Documentation' section"
    listed = set(re.findall(r"^- \[docs/([^\]]+\.md)\]", section[1].split("\n## ")[0], re.M))
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    assert pages <= listed, f"docs pages not listed under '## Documentation' (one line each): {sorted(pages - listed)}"


def test_docs_pages_link_only_to_what_exists():
    for page in (REPO / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([^)#\s:]+)\)", page.read_text()):
            assert (page.parent / link).exists(), f"{page.name} links to {link}, which does not exist"


def _tables(text: str) -> list[tuple[int, int]]:
    """(first line, last line) of every Markdown table."""
    out, start, lines = [], None, text.splitlines()
    for i, line in enumerate(lines + [""]):
        if line.startswith("|") and start is None:
            start = i
        elif not line.startswith("|") and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def test_every_measurement_table_says_where_it_was_measured():
    lines = MEASUREMENTS.read_text().splitlines()
    tables = _tables(MEASUREMENTS.read_text())
    assert len(tables) >= 10
    sections = [i for i, line in enumerate(lines) if line.startswith("#")] + [len(lines)]
    for first, last in tables:
        top = max(s for s in sections if s <= first)
        end = min(s for s in sections if s > first)
        measured = [line for line in lines[top:end] if line.startswith("*Measured on:*")]
        assert measured, f"the table at docs/measurements.md:{first + 1} has no '*Measured on:*' line in its section"
    assert sum(line.startswith("*Measured on:*") for line in lines) >= len(tables) - 1  # the headline's block is generated


def test_measurement_prose_names_no_commit_and_no_issue():
    for n, line in enumerate(MEASUREMENTS.read_text().splitlines(), 1):
        if line.startswith("*Measured on:*"):
            continue  # the "at" of a measurement is its commit
        assert not re.search(r"`[0-9a-f]{7,40}`|\bissue \d+", line), f"docs/measurements.md:{n}: {line}"
    assert not re.search(r"`[0-9a-f]{7,40}`|\bissue \d+", _readme())


def _ask_snippet() -> str:
    m = re.search(r"<!-- ask:begin -->\n```python\n(.*?)```", _readme(), re.S)
    assert m, "README.md needs its ask:begin / ask:end snippet"
    return m.group(1)


def test_readme_snippet_asks_a_tiny_model(capsys):
    """The snippet as written, on the random test LLM (seconds): it builds, splices and generates both answers."""
    code = _ask_snippet()
    assert "load_llm()" in code
    env: dict = {}
    exec(compile(code.replace("load_llm()", 'load_llm("tiny")'), "README.md", "exec"), env)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and all(p.startswith("[") for p in printed)
    assert env["states"].shape == (1, len(env["ids"]), env["llm"].hidden_size)


@pytest.mark.notebook
def test_readme_snippet_asks_smollm2_and_it_names_the_title(capsys):
    """On the real embedded SmolLM2: the answer read from the soft tokens names Toy Story, the zeroed control does not."""
    env: dict = {}
    exec(compile(_ask_snippet(), "README.md", "exec"), env)
    read, zeroed = capsys.readouterr().out.splitlines()
    assert "toy story" in read.lower() and "toy story" not in zeroed.lower(), (read, zeroed)
