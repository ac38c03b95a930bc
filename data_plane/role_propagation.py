"""Waiting until a new role assignment is in effect, before a service that reads with it starts.

SignalR Service resolves the Key Vault reference in its upstream URL with its own identity, reads it
when it is created (or its upstream or identity changes), and then only every 30 minutes (Azure
SignalR, "Upstream endpoints": Key Vault secret reference). A Key Vault role assignment takes up to
10 minutes to apply (Key Vault, "Azure RBAC": role assignment latency). So a SignalR created right
after its role can fail that first read and keep failing connection events for half an hour. This
resource holds SignalR back until the role assignment is `settle_seconds` old, measured from its
`createdOn` in ARM: on a first deployment the role is assigned early (with the vault), so the code
deployment in between usually covers most of the wait; on later runs nothing changes and nothing
waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from data_plane.provider_support import diff_on

SETTLE_SECONDS = 600
"""Key Vault: "it will take up to 10 minutes (600 seconds) after role assignments is changed for role
to be applied"."""


def remaining_seconds(assigned_at: str | None, settle_seconds: float, now: float) -> float:
    """How long until a role assigned at `assigned_at` (ARM's ISO-8601 `createdOn`) has settled; a
    missing or unreadable time counts as just assigned."""
    try:
        assigned = datetime.fromisoformat(str(assigned_at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        assigned = now
    return max(0.0, assigned + settle_seconds - now)


class RolePropagationProvider(ResourceProvider):
    """The dynamic provider behind `RolePropagation`; `clock` and `sleep` are replaceable for tests."""

    def __init__(
        self, clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None
    ) -> None:
        self._clock = clock
        self._sleep = sleep

    def _wait(self, props: dict[str, Any]) -> dict[str, Any]:
        now = (self._clock or time.time)()
        waited = remaining_seconds(props.get("assigned_at"), float(props["settle_seconds"]), now)
        if waited:
            (self._sleep or time.sleep)(waited)
        return {**props, "waited_seconds": round(waited)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['role_assignment_id']}/settled", outs=self._wait(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # A new assignment (the identity or the secret was recreated) is waited for again.
        return diff_on(
            olds, news, watched=("assigned_at", "settle_seconds"), replace_on=("role_assignment_id",)
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._wait(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing exists outside the state."""


class RolePropagation(pulumi.dynamic.Resource):
    """Exists once a role assignment is old enough to be in effect (`waited_seconds`: how long the
    deployment waited for it)."""

    waited_seconds: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        role_assignment_id: pulumi.Input[str],
        assigned_at: pulumi.Input[str],
        settle_seconds: int = SETTLE_SECONDS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            RolePropagationProvider(),
            name,
            {
                "role_assignment_id": role_assignment_id,
                "assigned_at": assigned_at,
                "settle_seconds": settle_seconds,
                "waited_seconds": None,
            },
            opts,
        )
