"""The stack's publish key: a host-level function key set through ARM's "Web Apps - Create Or
Update Host Secret" (`PUT .../sites/{name}/host/default/{keyType}/{keyName}`, keyType `functionKeys`;
the Azure CLI's `az functionapp keys set --key-type functionKeys|masterKey|systemKeys`)."""

from __future__ import annotations

import json

from data_plane.host_key import HostKeyProvider

APP_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/func-demo"
KEY_URL = f"https://management.azure.com{APP_ID}/host/default/functionKeys/publisher?api-version=2024-04-01"


class Arm:
    """ARM's host secret endpoint: 200 (or 201) on PUT with `{"properties": {"name", "value"}}`,
    200 on DELETE; records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes | None]] = []

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        assert headers["Authorization"] == "Bearer tok"
        self.calls.append((method, url, body))
        return 200, {}, b"{}"


PROPS = {"app_id": APP_ID, "key_name": "publisher", "value": "v" * 48, "key_type": "functionKeys"}


def test_the_publish_key_is_put_and_deleted_as_a_host_function_key() -> None:
    arm = Arm()
    provider = HostKeyProvider(transport=arm, token=lambda: "tok")
    created = provider.create(dict(PROPS))
    assert created.id == f"{APP_ID}/host/default/functionKeys/publisher"
    provider.delete(created.id or "", dict(PROPS))
    (put, delete) = arm.calls
    assert put[:2] == ("PUT", KEY_URL) and json.loads(put[2] or b"") == {
        "properties": {"name": "publisher", "value": "v" * 48}
    }
    assert delete == ("DELETE", KEY_URL, None)


def test_a_key_moved_between_key_types_is_replaced_not_updated() -> None:
    provider = HostKeyProvider()
    system = {**PROPS, "key_type": "systemKeys"}
    assert provider.diff("id", system, PROPS).replaces == ["key_type"]
    without_type = {k: v for k, v in PROPS.items() if k != "key_type"}
    assert provider.diff("id", without_type, {**without_type, "value": "w"}).replaces == []
