"""Day two of issue 33: a deployed stack's state still holds the retired dynamic resources (the public
schema's `DatabaseSchema`, the private stack's `SubnetRelease`). The first `pulumi up` after the
upgrade deletes them with the provider pickled in that state, which dill loads by module reference,
so what runs is today's class of that name. The pickles here were taken from the providers as they
were before the retirement (`tests/fixtures/retired_providers.json`, serialised as Pulumi's dynamic
resource does: `dill.dumps(provider, protocol=pickle.DEFAULT_PROTOCOL, recurse=True)`)."""

from __future__ import annotations

import base64
import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import dill  # type: ignore[import-untyped]
import pytest

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "retired_providers.json").read_text())
SUBNET = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/snet-scripts"
)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection or HTTP request fails the test: the deletes must stay on this machine."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a retired provider's delete reached for the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def load(name: str) -> Any:
    return dill.loads(base64.b64decode(FIXTURES[name]))


def test_the_old_subnet_release_loads_and_its_delete_touches_nothing(no_network: None) -> None:
    provider = load("subnet_release")
    assert type(provider).__module__ == "data_plane.subnet_release"
    assert provider.delete(f"{SUBNET}/release", {"subnet_id": SUBNET}) is None


def test_the_old_public_schema_loads_and_its_delete_touches_nothing(no_network: None) -> None:
    provider = load("database_schema")
    assert type(provider).__module__ == "data_plane.database_schema"
    props = {"server": "sql-x.database.windows.net", "server_id": "/x", "database": "d", "migrations": []}
    assert provider.delete("sql-x.database.windows.net/d/schema", props) is None


def test_the_pickles_name_their_classes_by_module_path() -> None:
    """What makes the modules above load-bearing (pulumi/pulumi#5455): the pickle holds the module
    path and class name, not the code."""
    for name, module in (
        ("subnet_release", b"data_plane.subnet_release"),
        ("database_schema", b"data_plane.database_schema"),
    ):
        assert module in base64.b64decode(FIXTURES[name])
