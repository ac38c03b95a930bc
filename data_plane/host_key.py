"""A Functions host system key whose value the program chooses.

SignalR Service calls the Functions app's `/runtime/webhooks/signalr` endpoint for connection
events, and the Functions host authorizes that call only with its `signalr_extension` system key
(managed-identity upstream auth is not honoured there: Azure/Azure-Functions#2531). The host
creates that key itself once the code is running, which is too late for the SignalR upstream in
the same `pulumi up`. So the program generates the value (pulumi-random, secret) and sets it
through ARM's "Web Apps - Create Or Update Host Secret" operation with the deploying identity.

The same operation sets a host-level function key (`keyType` `functionKeys`; `az functionapp keys
set --key-type functionKeys|masterKey|systemKeys`), which every function with function-level auth
accepts: the stack's publish key.

azure-native has no resource for host keys, hence this small dynamic resource.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from data_plane.azure_http import ARM, Transport, entra_token, urllib_transport
from data_plane.provider_support import diff_on

API_VERSION = "2024-04-01"
# The host of a newly created app answers 404/409/5xx until it has started; keep asking.
RETRY_STATUSES = frozenset({404, 408, 409, 429, 500, 502, 503, 504})
# ...and ARM relays the host's own errors as a 400 "Encountered an error (<Status>) from host
# runtime": ServiceUnavailable while it starts, mostly InternalServerError while keys are being
# created (Azure/bicep-types-az#1356, Azure/azure-cli#20892, Azure/azure-functions-host#11379). Any
# status the host relays is retried within the deadline; any other 400 is a real refusal.
HOST_RUNTIME_400 = re.compile(rb"Encountered an error \(\w+\) from host runtime")


def _host_not_ready(status: int, text: bytes) -> bool:
    """Whether an answer means the host is not ready yet (worth asking again)."""
    return status in RETRY_STATUSES or (status == 400 and HOST_RUNTIME_400.search(text) is not None)


SYSTEM_KEYS = "systemKeys"
FUNCTION_KEYS = "functionKeys"


def host_key_url(app_id: str, key_name: str, key_type: str = SYSTEM_KEYS) -> str:
    """The ARM URL of a host key of the app `app_id`: `.../host/default/{keyType}/{keyName}`."""
    return f"{ARM}{app_id}/host/default/{key_type}/{key_name}?api-version={API_VERSION}"


class HostKeyProvider(ResourceProvider):
    """The dynamic provider behind `FunctionHostKey`: sets and deletes a system key through ARM.

    `transport`, `token` and `sleep` are replaceable for tests.
    """

    def __init__(
        self,
        transport: Transport | None = None,
        token: Callable[[], str] | None = None,
        timeout_seconds: float = 600,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._transport = transport
        self._token = token
        self._timeout = timeout_seconds
        self._sleep = sleep

    def _send(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        token = (self._token or entra_token)()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, _, text = (self._transport or urllib_transport)(method, url, body, headers)
        return status, text

    def _until_done(self, method: str, url: str, body: bytes | None, done: frozenset[int]) -> None:
        """Send until an answer in `done`, waiting (with back-off, within the deadline) while the host
        is not ready; any other answer fails at once with the host's message."""
        deadline = time.monotonic() + self._timeout
        delay = 2.0
        while True:
            status, text = self._send(method, url, body)
            if status in done:
                return
            if not _host_not_ready(status, text) or time.monotonic() + delay > deadline:
                detail = text.decode("utf-8", "replace")[:500]
                raise RuntimeError(f"{method} {url.split('?')[0]} failed with HTTP {status}: {detail}")
            (self._sleep or time.sleep)(delay)
            delay = min(delay * 2, 30.0)

    def put_key(self, app_id: str, key_name: str, value: str, key_type: str = SYSTEM_KEYS) -> None:
        """Create or replace the key, waiting while a new app's host starts or creates its keys."""
        url = host_key_url(app_id, key_name, key_type)
        body = json.dumps({"properties": {"name": key_name, "value": value}}).encode()
        self._until_done("PUT", url, body, frozenset({200, 201}))

    def delete_key(self, app_id: str, key_name: str, key_type: str = SYSTEM_KEYS) -> None:
        """Delete the key, retrying what the host relays while busy (a failed delete fails `pulumi
        destroy`); a key or app already gone is fine (404 here is final, not transient)."""
        url = host_key_url(app_id, key_name, key_type)
        self._until_done("DELETE", url, None, frozenset({200, 204, 404}))

    def create(self, props: dict[str, Any]) -> CreateResult:
        key_type = props.get("key_type", SYSTEM_KEYS)
        self.put_key(props["app_id"], props["key_name"], props["value"], key_type)
        return CreateResult(id_=f"{props['app_id']}/host/default/{key_type}/{props['key_name']}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_on(
            olds,
            news,
            watched=("value",),
            replace_on=("app_id", "key_name", "key_type"),
            delete_before_replace=True,
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.put_key(news["app_id"], news["key_name"], news["value"], news.get("key_type", SYSTEM_KEYS))
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self.delete_key(props["app_id"], props["key_name"], props.get("key_type", SYSTEM_KEYS))


class FunctionHostKey(pulumi.dynamic.Resource):
    """A host key of a Functions app (a system key unless `key_type` says `functionKeys`), set to a
    value the program controls."""

    value: pulumi.Output[str]
    """The key (secret)."""

    def __init__(
        self,
        name: str,
        app_id: pulumi.Input[str],
        key_name: str,
        value: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
        key_type: str = SYSTEM_KEYS,
    ) -> None:
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["value"])
        props: dict[str, Any] = {"app_id": app_id, "key_name": key_name, "value": pulumi.Output.secret(value)}
        if key_type != SYSTEM_KEYS:  # the signalr_extension key's inputs stay as deployed stacks hold them
            props["key_type"] = key_type
        super().__init__(
            HostKeyProvider(),
            name,
            props,
            pulumi.ResourceOptions.merge(opts, secret_opts),
        )
