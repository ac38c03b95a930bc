"""The Makefile gives the README's commands: `make help` lists each one the README names, the fast
layer has no browser and no local server, and CI runs the README's test command (issue 32)."""

from __future__ import annotations

import re
import subprocess

from mocks import ROOT

MAKEFILE = ROOT / "Makefile"
# What makes a test file slow: a browser, or the local mode's servers (imported, or started as a process).
SLOW = re.compile(
    r"^\s*(?:from|import)\s+(?:playwright|local_support|local|smoke|aiohttp)\b|\"-m\", \"local\"",
    re.MULTILINE,
)


def make(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`make` in the project, as a user runs it."""
    return subprocess.run(["make", "-s", *arguments], cwd=ROOT, capture_output=True, text=True, check=False)


def fast_tests() -> list[str]:
    """The files `make test-fast` runs (FAST_TESTS, with its line continuations)."""
    text = MAKEFILE.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("FAST_TESTS :="))
    return line.split(":=", 1)[1].split()


def test_make_help_lists_every_target_the_readme_names() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`make ([a-z-]+)", readme))
    result = make("help")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^  make ([a-z-]+) ", result.stdout, flags=re.MULTILINE))
    assert named - listed == set(), f"the README names targets `make help` does not list: {named - listed}"
    assert make().stdout == result.stdout, "`make` alone shows the help"


def test_the_fast_layer_has_no_browser_and_no_local_server() -> None:
    files = fast_tests()
    assert files and len(files) == len(set(files))
    for name in files:
        text = (ROOT / name).read_text()
        assert not SLOW.search(text), f"{name} starts a browser or a server"
    assert SLOW.search((ROOT / "tests" / "test_site_browser.py").read_text())
    assert SLOW.search((ROOT / "tests" / "test_commands.py").read_text())
    for layer in ("test_settings.py", "test_components.py", "test_policies.py", "test_functions.py"):
        assert f"tests/{layer}" in files, layer


def test_ci_runs_the_readme_s_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "| `make test` |" in readme and "CI runs exactly this" in readme
    run = (ROOT / ".ci" / "run").read_text().splitlines()
    assert [line for line in run if line.startswith("make ")] == ["make setup", "make test"]


def test_a_failing_command_s_code_is_named_by_make() -> None:
    """GNU make exits 2 on any failed recipe; its last line names the command's own code."""
    result = make("cost", "STACK=nope")
    assert result.returncode == 2
    assert "no Pulumi.nope.yaml" in result.stderr
    assert re.search(r"\[Makefile:\d+: cost\] Error 2$", result.stderr.strip())
