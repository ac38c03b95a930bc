"""Deletion locks on stateful resources (AVM's `lock`)."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
from pulumi_azure_native import authorization

LOCK_NAME = "do-not-delete"
LOCK_NOTES = (
    "Holds data. To delete it on purpose: pulumi config set protectData false, pulumi up, then destroy."
)


def lock_against_deletion(
    name: str,
    scope: pulumi.Input[str],
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource | None] = (),
) -> authorization.ManagementLockByScope:
    """A `CanNotDelete` lock on `scope`. It depends on the extension resources under that scope
    (diagnostic settings, role assignments, child resources), so Pulumi removes the lock before them:
    a lock is inherited by them and would refuse their deletion (ScopeLocked)."""
    return authorization.ManagementLockByScope(
        name,
        scope=scope,
        lock_name=LOCK_NAME,
        level=authorization.LockLevel.CAN_NOT_DELETE,
        notes=LOCK_NOTES,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[r for r in after if r is not None]),
    )
