"""The README and the docs pages say what is there: every path they (and the stack files) name
exists, the README stays a page a newcomer reads top to bottom and links each reference page once,
and the one cost figure it quotes is what `python -m cost dev` prints today (issue 32)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from mocks import ROOT

README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
STACK_FILES = sorted(ROOT.glob("Pulumi*.yaml"))
README_MAX_LINES = 250
# Paths the documents name that a command creates, with the command (they are not in a clone).
CREATED_BY_COMMANDS = {
    "policies/venv": "make deploy (the policy pack's virtualenv)",
    "policies/venv/bin/pip": "make deploy",
    "site/node_modules": "make setup",
    "site/vendor/signalr.min.js": "artifacts/site_files.py, from site/node_modules",
    "vendor/signalr.min.js": "artifacts/site_files.py, from site/node_modules",
    "build/packages": "the function package build",
    "build/wheels": "make setup",
    "config.json": "the site upload and the local mode generate it (artifacts/site_files.py)",
    "Pulumi.alice.yaml": "python -m deploy alice --from dev (the README's example)",
}
# Words that look like file names and are not: a runtime, a Python module.
NOT_FILES = {"Node.js", "components.sql"}
# Top-level names that are not the repository's (installs, caches, outputs).
NOT_TRACKED = {".git", ".venv", "build", "test-artifacts", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def top_level_names() -> set[str]:
    """What a clone holds at its root."""
    return {path.name for path in ROOT.iterdir()} - NOT_TRACKED


def named_paths(text: str) -> set[str]:
    """The repository paths a document names: in backticks, or in the text, when their first part is
    one of the repository's top-level files or folders (a URL path such as `/api/messages`, an Azure
    resource type or a GitHub action's name is none of those)."""
    roots = top_level_names()
    found = set()
    for token in re.findall(r"`([^`\s]+)`", text) + re.findall(
        r"(?<![\w/.:-])([\w.-]+/[^\s`()\[\],;'\"|]*)", text
    ):
        path = token.split("#")[0].rstrip(".,:;)")
        if any(mark in path for mark in "<>*{}$=?:") or path.startswith(("/", "-", "~")):
            continue
        first = path.split("/", 1)[0]
        if first in roots and ("/" in path or (ROOT / first).is_file()):
            found.add(path.rstrip("/"))
    return found


def file_names() -> set[str]:
    """The name of every file in the repository, wherever it is."""
    skip = NOT_TRACKED | {"node_modules", "venv", "__pycache__"}
    names = set()
    for path in ROOT.rglob("*"):
        if not skip.intersection(path.relative_to(ROOT).parts) and path.is_file():
            names.add(path.name)
    return names


def named_files(text: str) -> set[str]:
    """File names a document gives without their folder (`settings.py`, `host.json`)."""
    pattern = (
        r"(?<![\w/.<>-])([\w-]+(?:\.[\w-]+)*\.(?:py|md|ya?ml|json|sh|sql|js|html|css|toml|txt))(?![\w/-])"
    )
    return set(re.findall(pattern, text))


def linked_paths(document: Path) -> set[Path]:
    """The files a Markdown document links to (relative links; web addresses are not checked here)."""
    links = re.findall(r"\]\(([^)\s]+)\)", document.read_text())
    return {
        (document.parent / link.split("#")[0]).resolve()
        for link in links
        if not link.startswith(("http://", "https://", "#", "mailto:"))
    }


@pytest.mark.parametrize(
    "document", [README, *DOC_PAGES, *STACK_FILES], ids=lambda path: str(path.relative_to(ROOT))
)
def test_every_path_a_document_names_exists(document: Path) -> None:
    missing = sorted(
        path
        for path in named_paths(document.read_text())
        if not (ROOT / path).exists() and path not in CREATED_BY_COMMANDS
    )
    assert missing == [], f"{document.relative_to(ROOT)} names paths that do not exist: {missing}"
    unknown = sorted(named_files(document.read_text()) - file_names() - set(CREATED_BY_COMMANDS) - NOT_FILES)
    assert unknown == [], f"{document.relative_to(ROOT)} names files that no folder holds: {unknown}"
    broken = sorted(str(path) for path in linked_paths(document) if not path.exists())
    assert broken == [], f"{document.relative_to(ROOT)} links to files that do not exist: {broken}"


def test_the_path_check_sees_a_stale_path() -> None:
    """The check above catches what issue 32 found: a stack file naming `settings.py`."""
    comment = "# Every key not set here takes the dev default from settings.py (see the README)."
    assert named_files(comment) == {"settings.py"}
    assert "settings.py" not in file_names()
    assert named_paths("from `benchmarks/nope.py` and docs/nowhere.md") == {
        "benchmarks/nope.py",
        "docs/nowhere.md",
    }


def test_the_readme_is_short_and_links_each_reference_page_once() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    counts = {
        page.name: len(re.findall(rf"\]\(docs/{re.escape(page.name)}(?:#[^)]*)?\)", text))
        for page in DOC_PAGES
    }
    assert {name: count for name, count in counts.items() if count != 1} == {}, "README links each page once"


def test_the_layout_lists_every_benchmark() -> None:
    layout = (ROOT / "docs" / "layout.md").read_text()
    row = next(line for line in layout.splitlines() if line.startswith("| `benchmarks/`"))
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        if script.name != "__init__.py":
            assert f"`{script.name}`" in row, script.name


def test_the_readme_quotes_the_dev_stack_s_cost_from_the_estimate() -> None:
    """The one place the README states a price: it must be today's `python -m cost dev`."""
    from cost.__main__ import main

    out = io.StringIO()
    assert main(["dev", "--json"], out=out) == 0
    monthly = json.loads(out.getvalue())["monthly"]
    figure = " + ".join(
        f"{monthly[currency]:.2f} {currency}" for currency in ("USD", "EUR") if currency in monthly
    )
    sentence = f"**A dev stack costs about {figure} a month**"
    assert sentence in README.read_text(), (
        f"README's quick start should say {sentence!r}: update that one line"
    )
