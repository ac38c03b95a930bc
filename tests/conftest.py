"""Shared fixtures: the Pulumi program run once per stack under mocks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mocks import ProgramRun, run_stack

# Tests that build the function package install its dependencies from the wheelhouse that
# `make setup` downloads, so they need no network.
WHEELHOUSE = Path(__file__).resolve().parent.parent / "build" / "wheels"
os.environ.setdefault("BROADCAST_WHEELHOUSE", str(WHEELHOUSE))


@pytest.fixture(scope="session")
def dev() -> ProgramRun:
    """The dev stack as `Pulumi.dev.yaml` configures it."""
    return run_stack("dev")


@pytest.fixture(scope="session")
def prod() -> ProgramRun:
    """The prod stack as `Pulumi.prod.yaml` configures it."""
    return run_stack("prod")


@pytest.fixture(scope="session", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest, dev: ProgramRun, prod: ProgramRun) -> ProgramRun:
    """Each stack in turn."""
    return {"dev": dev, "prod": prod}[request.param]


@pytest.fixture(scope="session")
def private() -> ProgramRun:
    """The test stack as `Pulumi.test.yaml` configures it: `network: private`."""
    return run_stack("test")
