"""The project's version: `version` in `pyproject.toml`, the one place it is written. `python -m
deploy` prints it and the program tags the resource group with it (CHANGELOG.md says what each
version changed)."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
VERSION_TAG = "version"
"""The resource group's tag that holds the version (only the resource group carries it: a new
version is then one in-place tag update, not an update of every resource)."""


def project_version(pyproject: Path = PYPROJECT) -> str:
    """`[project] version` of pyproject.toml; ValueError naming the file when it has none."""
    with pyproject.open("rb") as file:
        document = tomllib.load(file)
    version = document.get("project", {}).get("version")
    if not isinstance(version, str) or not version:
        raise ValueError(f"{pyproject}: [project] has no version")
    return version
