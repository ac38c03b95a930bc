"""The program is a pure Pulumi program: evaluating `__main__.py` makes no network call and runs no
subprocess, so a unit test written the way Pulumi's testing guide shows
(https://www.pulumi.com/docs/iac/guides/testing/unit/: a `pulumi.runtime.Mocks` subclass,
`pulumi.runtime.set_mocks(mocks, preview=False)`, then the program, then `@pulumi.runtime.test`)
passes on a machine with no network at all. The mocks are `mocks.azure.AzureMocks`, which answer
with ARM-shaped ids (the program checks them) and refuse any invoke but `getClientConfig`."""

from __future__ import annotations

import runpy
import socket
import subprocess
from typing import Any

import pulumi
import pytest

from mocks import ROOT, AzureMocks
from settings.loading import stack_file


class NetworkCallError(AssertionError):
    """What every attempt to reach the network or start a process raises here."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Name resolution, connections and subprocesses (pip) all refused, and recorded."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[:2]!r}")
            raise NetworkCallError(f"{what} called while evaluating the program: {args[:2]!r}")

        return refused

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(subprocess, "Popen", refuse("subprocess"))
    monkeypatch.setattr(subprocess, "run", refuse("subprocess"))
    return attempts


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_evaluates_with_the_network_switched_off(
    stack: str, no_network: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pulumi.runtime.set_mocks(AzureMocks(), preview=False, project="broadcast", stack=stack)
    pulumi.runtime.set_all_config(stack_file(stack, ROOT), [])
    declared: list[str] = []
    original = pulumi.CustomResource.__init__

    def record(self: Any, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        declared.append(t)
        original(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.CustomResource, "__init__", record)

    @pulumi.runtime.test
    def evaluate() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    evaluate()
    assert no_network == []
    assert "azure-native:web:WebApp" in declared and "azure-native:sql:Server" in declared
