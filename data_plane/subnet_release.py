"""Releasing the subnet a deployment script's container used, so `pulumi destroy` can delete the network.

Azure Container Instances puts a service association link on a subnet delegated to
`Microsoft.ContainerInstance/containerGroups` when a container group joins it, and the link can
outlive the container group: the subnet's (or the network's) delete then fails with "Subnet ...
requires any of the following delegations [Microsoft.ContainerInstance/containerGroups] to reference
service association link .../serviceAssociationLinks/acisal" (Microsoft's support article "Failed to
delete a virtual network or subnet used by Azure Container Instances"; Azure/azure-cli#21637,
Azure/azure-quickstart-templates#5450). Microsoft's workaround is to delete the link through the
Container Instance resource provider ("Subnet Service Association Link - Delete", API 2023-05-01).

This resource does nothing on create. It depends on the network (it names the subnet) and the
deployment script depends on it, so destroy deletes the script first, then this resource, then the
network. Its delete asks ACI to delete the link and waits, within a bound, until the subnet lists
no service association link; past the bound it fails with the commands to run by hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

from data_plane.azure_http import ARM, Transport, entra_token, urllib_transport
from data_plane.provider_support import diff_on

ACI_API_VERSION = "2023-05-01"
"""Container Instance REST API version with "Subnet Service Association Link - Delete"."""
NETWORK_API_VERSION = "2024-05-01"
"""Network REST API version of "Subnets - Get" (its `serviceAssociationLinks`)."""
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
TIMEOUT_SECONDS = 900.0
"""How long destroy waits for ACI to release the subnet (our bound; Microsoft documents none)."""


def link_url(subnet_id: str) -> str:
    """The ACI service association link of a subnet (its only one, named `default`)."""
    return (
        f"{ARM}{subnet_id}/providers/Microsoft.ContainerInstance/serviceAssociationLinks/default"
        f"?api-version={ACI_API_VERSION}"
    )


def by_hand(subnet_id: str) -> str:
    """What to run when the wait runs out (Microsoft's support article, workaround for cause 1)."""
    return (
        f"az resource delete --ids {subnet_id}/providers/Microsoft.ContainerInstance/"
        f"serviceAssociationLinks/default --api-version {ACI_API_VERSION}; then "
        f"`az network vnet subnet show --ids {subnet_id} --query serviceAssociationLinks` until it is "
        "empty, and run `pulumi destroy` again"
    )


class SubnetReleaseProvider(ResourceProvider):
    """The dynamic provider behind `SubnetRelease`; `transport`, `token`, `sleep` and `clock` are
    replaceable for tests."""

    def __init__(
        self,
        transport: Transport | None = None,
        token: Callable[[], str] | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._transport = transport
        self._token = token
        self._timeout = timeout_seconds
        self._sleep = sleep
        self._clock = clock

    def _send(self, method: str, url: str) -> tuple[int, bytes]:
        token = (self._token or entra_token)()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, _, text = (self._transport or urllib_transport)(method, url, None, headers)
        return status, text

    def _linked(self, subnet_id: str) -> bool:
        """Whether the subnet still lists a service association link (a subnet gone lists none)."""
        status, text = self._send("GET", f"{ARM}{subnet_id}?api-version={NETWORK_API_VERSION}")
        if status == 404:
            return False
        if status != 200:
            return True  # not known yet: ask again
        properties = json.loads(text or b"{}").get("properties", {})
        return bool(properties.get("serviceAssociationLinks"))

    def release(self, subnet_id: str) -> None:
        """Delete the subnet's ACI link and wait until the subnet lists none, within the bound."""
        clock, sleep = self._clock or time.monotonic, self._sleep or time.sleep
        deadline = clock() + self._timeout
        delay = 5.0
        deleted = False
        while True:
            if not deleted:
                status, text = self._send("DELETE", link_url(subnet_id))
                if status not in (200, 202, 204, 404) and status not in RETRY_STATUSES:
                    detail = text.decode("utf-8", "replace")[:300]
                    raise RuntimeError(
                        f"deleting the ACI link of {subnet_id} failed with HTTP {status}: {detail}. "
                        f"By hand: {by_hand(subnet_id)}"
                    )
                deleted = status in (200, 202, 204, 404)
            if deleted and not self._linked(subnet_id):
                return
            if clock() + delay > deadline:
                raise RuntimeError(
                    f"ACI still holds {subnet_id} after {self._timeout:.0f} s. By hand: {by_hand(subnet_id)}"
                )
            sleep(delay)
            delay = min(delay * 2, 60.0)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['subnet_id']}/release", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_on(olds, news, watched=(), replace_on=("subnet_id",))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self.release(props["subnet_id"])


class SubnetRelease(pulumi.dynamic.Resource):
    """Releases a delegated subnet from Azure Container Instances when it is deleted (see module)."""

    def __init__(
        self, name: str, subnet_id: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(SubnetReleaseProvider(), name, {"subnet_id": subnet_id}, opts)
