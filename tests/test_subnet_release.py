"""The subnet release on destroy: ACI's service association link is deleted and waited for, within a
bound, before the network's delete (Microsoft's support article "Failed to delete a virtual network or
subnet used by Azure Container Instances"; Azure/azure-cli#21637)."""

from __future__ import annotations

import json

import pytest

from data_plane.subnet_release import SubnetReleaseProvider, link_url

SUBNET = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/snet-scripts"
)
SAL = {"id": f"{SUBNET}/serviceAssociationLinks/acisal", "name": "acisal"}


class SubnetArm:
    """ARM for one subnet: the link lingers for `lingering` reads after its delete is accepted; the
    link delete answers `delete_statuses` in turn (then 200)."""

    def __init__(self, lingering: int, *delete_statuses: int) -> None:
        self.lingering = lingering
        self.delete_statuses = list(delete_statuses)
        self.calls: list[tuple[str, str]] = []

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        self.calls.append((method, url))
        if method == "DELETE":
            return (self.delete_statuses.pop(0) if self.delete_statuses else 202), {}, b""
        links = [SAL] if self.lingering > 0 else []
        self.lingering -= 1
        return 200, {}, json.dumps({"properties": {"serviceAssociationLinks": links}}).encode()


def provider(arm: SubnetArm, timeout: float = 900) -> tuple[SubnetReleaseProvider, list[float]]:
    sleeps: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    return SubnetReleaseProvider(arm, lambda: "tok", timeout, sleep, lambda: now[0]), sleeps


def test_destroy_deletes_the_link_and_waits_until_the_subnet_lists_none() -> None:
    arm = SubnetArm(2)
    release, sleeps = provider(arm)
    release.delete("id", {"subnet_id": SUBNET})
    assert arm.calls[0] == ("DELETE", link_url(SUBNET))
    assert (
        "/providers/Microsoft.ContainerInstance/serviceAssociationLinks/default?api-version=2023-05-01"
        in (arm.calls[0][1])
    )
    assert [method for method, _ in arm.calls] == ["DELETE", "GET", "GET", "GET"]
    assert sleeps == [5.0, 10.0]


def test_a_busy_link_delete_is_retried() -> None:
    arm = SubnetArm(0, 409, 429)
    release, sleeps = provider(arm)
    release.release(SUBNET)
    assert [method for method, _ in arm.calls] == ["DELETE", "DELETE", "DELETE", "GET"]
    assert sleeps == [5.0, 10.0]


def test_past_the_bound_destroy_fails_with_what_to_run() -> None:
    arm = SubnetArm(1000)
    release, sleeps = provider(arm, timeout=120)
    with pytest.raises(
        RuntimeError, match=r"ACI still holds .* after 120 s\. By hand: az resource delete --ids "
    ):
        release.release(SUBNET)
    assert sum(sleeps) <= 120


def test_a_refused_link_delete_fails_at_once_with_what_to_run() -> None:
    arm = SubnetArm(0, 403)
    release, sleeps = provider(arm)
    with pytest.raises(RuntimeError, match=r"HTTP 403.*By hand: az resource delete"):
        release.release(SUBNET)
    assert sleeps == []


def test_create_touches_nothing_and_a_new_subnet_replaces() -> None:
    arm = SubnetArm(0)
    release, _ = provider(arm)
    assert release.create({"subnet_id": SUBNET}).id == f"{SUBNET}/release" and arm.calls == []
    assert release.diff("id", {"subnet_id": SUBNET}, {"subnet_id": SUBNET + "2"}).replaces == ["subnet_id"]
