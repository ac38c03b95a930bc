"""Shared fixtures: the Pulumi program run once per stack under mocks."""

from __future__ import annotations

import pytest

from preview.mocks import ProgramRun, run_stack


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
