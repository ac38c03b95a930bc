"""The interface every component shares: naming, common args, identity and role assignments.

In the manner of Azure Verified Modules' shared interfaces, each component takes the same
`resource_group_name`, `location`, `tags`, `naming` and `role_assignments`, and exposes the same
`name` and `resource_id` outputs beside its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import pulumi
from pulumi_azure_native import authorization

# uuid5 namespace for role assignment names: stable across runs, unique per scope/principal/role.
_ROLE_ASSIGNMENT_NAMESPACE = uuid.UUID("0f6c3d8e-5a43-4a51-9a7f-3c5d2b7e9a10")


class Role(StrEnum):
    """Built-in Azure role definition ids (the same GUID in every subscription)."""

    STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
    STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
    # App Server alone cannot serve negotiation in Serverless mode; Owner covers it and the REST API.
    SIGNALR_SERVICE_OWNER = "7e4f1700-ea5a-4f59-8f37-079cfe29dce3"
    MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"


@dataclass(frozen=True, kw_only=True)
class Naming:
    """Azure resource names from the Cloud Adoption Framework abbreviations.

    Names are `<abbreviation>-<workload>-<environment>-<suffix>`; the suffix (random per stack)
    keeps globally unique names (storage, SignalR, SQL server, Functions app) from colliding.
    """

    workload: str
    environment: str
    suffix: pulumi.Input[str]

    def name(self, abbreviation: str) -> pulumi.Output[str]:
        """A hyphenated name, e.g. `sigr-bcast-dev-x7k2q9`."""
        return pulumi.Output.from_input(self.suffix).apply(
            lambda suffix: f"{abbreviation}-{self.workload}-{self.environment}-{suffix}"
        )

    def compact_name(self, abbreviation: str) -> pulumi.Output[str]:
        """A storage account name: 3-24 lowercase letters and digits, e.g. `stbcastdevx7k2q9`."""

        def build(suffix: str) -> str:
            name = f"{abbreviation}{self.workload}{self.environment}{suffix}".lower()
            if not (3 <= len(name) <= 24 and name.isalnum()):
                raise ValueError(f"storage account name {name!r} must be 3-24 lowercase letters and digits")
            return name

        return pulumi.Output.from_input(self.suffix).apply(build)


@dataclass(frozen=True, kw_only=True)
class RoleAssignment:
    """A role granted to a principal on a component's main resource."""

    principal_id: pulumi.Input[str]
    role: Role
    principal_type: str = "ServicePrincipal"
    """`ServicePrincipal` for managed identities (skips Entra replication delays), `User` or `Group`.
    Always set: azure-native sends `User` when it is left out."""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class UserAssignedIdentity:
    """A user-assigned managed identity as the components consume it."""

    resource_id: pulumi.Input[str]
    client_id: pulumi.Input[str]
    principal_id: pulumi.Input[str]
    name: pulumi.Input[str]


@dataclass(kw_only=True)
class ComponentArgs:
    """Arguments every component takes."""

    resource_group_name: pulumi.Input[str]
    """Required. The resource group that holds the component's resources."""
    location: pulumi.Input[str]
    """Required. Azure region, e.g. `westeurope`."""
    naming: Naming
    """Required. How the component names its Azure resources."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Optional. Tags for every taggable resource. Default: none."""
    role_assignments: Sequence[RoleAssignment] = ()
    """Optional. Roles to grant on the component's main resource. Default: none."""


def role_assignment_name(scope: str, principal_id: str, role: Role) -> str:
    """A deterministic role assignment name, so re-runs never create duplicates."""
    return str(uuid.uuid5(_ROLE_ASSIGNMENT_NAMESPACE, f"{scope}|{principal_id}|{role.value}"))


def role_definition_id(scope: str, role: Role) -> str:
    """The subscription-scoped role definition id, derived from the scope's subscription."""
    parts = scope.split("/")
    if len(parts) < 3 or parts[1].lower() != "subscriptions":
        raise ValueError(f"role assignment scope {scope!r} is not a resource id under a subscription")
    return f"/subscriptions/{parts[2]}/providers/Microsoft.Authorization/roleDefinitions/{role.value}"


def assign_role(
    name: str,
    scope: pulumi.Input[str],
    assignment: RoleAssignment,
    parent: pulumi.Resource,
) -> authorization.RoleAssignment:
    """Grant `assignment.role` on `scope` with a deterministic assignment name."""
    scope_output = pulumi.Output.from_input(scope)
    return authorization.RoleAssignment(
        name,
        scope=scope_output,
        principal_id=assignment.principal_id,
        principal_type=assignment.principal_type,
        role_definition_id=scope_output.apply(lambda s: role_definition_id(s, assignment.role)),
        role_assignment_name=pulumi.Output.all(scope_output, assignment.principal_id).apply(
            lambda args: role_assignment_name(args[0], args[1], assignment.role)
        ),
        description=assignment.description or None,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def assign_roles(
    name: str,
    scope: pulumi.Input[str],
    assignments: Sequence[RoleAssignment],
    parent: pulumi.Resource,
) -> list[authorization.RoleAssignment]:
    """Apply a component's `role_assignments` to its main resource."""
    return [
        assign_role(f"{name}-role-{index}", scope, assignment, parent)
        for index, assignment in enumerate(assignments)
    ]
