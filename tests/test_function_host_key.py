"""The `signalr_extension` host key resource: the ARM calls it makes, retries and failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pulumi.dynamic.dynamic as pulumi_dynamic
import pytest

from data_plane.host_key import HostKeyProvider, host_key_url

APP_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/func-demo"


class FakeArm:
    """Answers each call with the next status from a script and records the requests."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[str, str, bytes | None, dict[str, str]]] = []

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        self.calls.append((method, url, body, headers))
        return self.statuses.pop(0), {}, b'{"error": {"message": "host is starting"}}'


def client(arm: FakeArm, timeout: float = 600) -> tuple[HostKeyProvider, list[float]]:
    sleeps: list[float] = []
    return HostKeyProvider(
        transport=arm, token=lambda: "tok", timeout_seconds=timeout, sleep=sleeps.append
    ), sleeps


def test_put_sends_the_key_to_the_host_secret_endpoint() -> None:
    arm = FakeArm(200)
    key_client, sleeps = client(arm)
    key_client.put_key(APP_ID, "signalr_extension", "s3cret")
    ((method, url, body, headers),) = arm.calls
    assert method == "PUT"
    assert url == (
        "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/"
        "sites/func-demo/host/default/systemKeys/signalr_extension?api-version=2024-04-01"
    )
    assert url == host_key_url(APP_ID, "signalr_extension")
    assert json.loads(body or b"") == {"properties": {"name": "signalr_extension", "value": "s3cret"}}
    assert headers["Authorization"] == "Bearer tok"
    assert sleeps == []


def test_put_waits_for_a_starting_host_with_backoff() -> None:
    arm = FakeArm(404, 503, 409, 201)
    key_client, sleeps = client(arm)
    key_client.put_key(APP_ID, "signalr_extension", "v")
    assert len(arm.calls) == 4
    assert sleeps == [2.0, 4.0, 8.0]


def test_put_gives_up_at_the_deadline_with_the_hosts_message() -> None:
    arm = FakeArm(*([503] * 50))
    key_client, _ = client(arm, timeout=10)
    with pytest.raises(
        RuntimeError, match=r"PUT .*/systemKeys/signalr_extension failed with HTTP 503: .*host is starting"
    ):
        key_client.put_key(APP_ID, "signalr_extension", "v")
    assert len(arm.calls) < 10


def test_put_fails_at_once_when_not_authorized() -> None:
    arm = FakeArm(403)
    key_client, sleeps = client(arm)
    with pytest.raises(RuntimeError, match="HTTP 403"):
        key_client.put_key(APP_ID, "signalr_extension", "v")
    assert sleeps == []


@pytest.mark.parametrize("status", [200, 204, 404])
def test_delete_accepts_gone(status: int) -> None:
    arm = FakeArm(status)
    client(arm)[0].delete_key(APP_ID, "signalr_extension")
    assert arm.calls[0][0] == "DELETE"


def test_delete_reports_other_failures_at_once() -> None:
    arm = FakeArm(403)
    with pytest.raises(RuntimeError, match="HTTP 403"):
        client(arm)[0].delete_key(APP_ID, "signalr_extension")
    assert len(arm.calls) == 1


def test_diff_replaces_on_a_new_app_and_updates_on_a_new_value() -> None:
    provider = HostKeyProvider()
    old = {"app_id": APP_ID, "key_name": "signalr_extension", "value": "a"}
    assert provider.diff("id", old, dict(old)).changes is False
    changed = provider.diff("id", old, {**old, "value": "b"})
    assert changed.changes is True and changed.replaces == []
    moved = provider.diff("id", old, {**old, "app_id": APP_ID + "2"})
    assert moved.replaces == ["app_id"]


def test_provider_unpickles_in_a_fresh_process_started_like_pulumis_dynamic_plugin() -> None:
    """Pulumi runs dynamic providers in another process (`python -m pulumi.dynamic`) whose working
    directory is the program's (pulumi/pulumi#5455), so `components` imports from there."""
    serialized = pulumi_dynamic.serialize_provider(HostKeyProvider())
    script = (
        "import base64, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.stdin.read()))\n"
        "old = {'app_id': 'a', 'key_name': 'k', 'value': 'v'}\n"
        "print(type(provider).__name__, provider.diff('id', old, {**old, 'app_id': 'b'}).replaces)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=serialized,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HostKeyProvider ['app_id']"


def host_runtime_error(status: str = "InternalServerError") -> bytes:
    """ARM's relay of a host error: "Encountered an error (<Status>) from host runtime."."""
    return (
        b'{"error": {"code": "BadRequest", '
        b'"message": "Encountered an error (' + status.encode() + b') from host runtime."}}'
    )


class StartingHostArm(FakeArm):
    """ARM while a new Flex app's host starts and creates its keys: it relays the host's errors as
    `400 BadRequest` "Encountered an error (<Status>) from host runtime.", mostly with
    InternalServerError (Azure/bicep-types-az#1356, Azure/azure-cli#20892; ServiceUnavailable in
    Azure/azure-functions-host#11379), then accepts the call."""

    def __init__(self, starting_answers: int, body: bytes | None = None) -> None:
        super().__init__(*([400] * starting_answers), 200)
        self.body = host_runtime_error() if body is None else body

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        status, _, _ = super().__call__(method, url, body, headers)
        return status, {}, (self.body if status == 400 else b"{}")


@pytest.mark.parametrize("host_status", ["InternalServerError", "ServiceUnavailable", "BadGateway"])
def test_put_waits_while_arm_relays_any_host_runtime_error_as_400(host_status: str) -> None:
    arm = StartingHostArm(3, host_runtime_error(host_status))
    key_client, sleeps = client(arm)
    key_client.put_key(APP_ID, "signalr_extension", "v")
    assert [call[0] for call in arm.calls] == ["PUT"] * 4
    assert sleeps == [2.0, 4.0, 8.0]


def test_any_other_400_fails_at_once_with_its_message() -> None:
    arm = StartingHostArm(1, b'{"error": {"code": "BadRequest", "message": "Invalid key name."}}')
    key_client, sleeps = client(arm)
    with pytest.raises(RuntimeError, match=r"HTTP 400: .*Invalid key name"):
        key_client.put_key(APP_ID, "signalr_extension", "v")
    assert sleeps == [] and len(arm.calls) == 1


def test_delete_waits_while_arm_relays_a_host_runtime_error() -> None:
    """A failed delete fails `pulumi destroy`: the delete retries the host's relayed errors too."""
    arm = StartingHostArm(2)
    key_client, sleeps = client(arm)
    key_client.delete_key(APP_ID, "signalr_extension")
    assert [call[0] for call in arm.calls] == ["DELETE"] * 3 and sleeps == [2.0, 4.0]


def test_delete_gives_up_at_the_deadline_with_the_hosts_message() -> None:
    arm = StartingHostArm(50)
    key_client, sleeps = client(arm, timeout=10)
    with pytest.raises(RuntimeError, match=r"DELETE .* HTTP 400: .*InternalServerError"):
        key_client.delete_key(APP_ID, "signalr_extension")
    assert len(arm.calls) < 10 and sleeps
