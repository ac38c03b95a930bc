"""Identities and their roles: user-assigned identities, the deploying identity, and role
assignments with deterministic names (uuid5 over scope, principal and role), keyed by a stable name."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import pulumi
from pulumi_azure_native import authorization, managedidentity

# uuid5 namespace for role assignment names: stable across runs, unique per scope/principal/role.
_ROLE_ASSIGNMENT_NAMESPACE = uuid.UUID("0f6c3d8e-5a43-4a51-9a7f-3c5d2b7e9a10")


class Role(StrEnum):
    """Built-in Azure role definition ids (the same GUID in every subscription)."""

    STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
    STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
    # A deployment script's identity mounts the script's file share with it (deployment scripts in a
    # private network).
    STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
    READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    # A public schema script opens and removes its own SQL firewall rule (`Microsoft.Sql/servers/*`;
    # built-in roles, Databases: its NotActions keep auditing and Entra-only authentication out).
    SQL_SERVER_CONTRIBUTOR = "6d8ee4ec-f05a-4a1d-8b00-a9b17e38b437"
    # App Server alone cannot serve negotiation in Serverless mode; Owner covers it and the REST API.
    SIGNALR_SERVICE_OWNER = "7e4f1700-ea5a-4f59-8f37-079cfe29dce3"
    MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
    KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
    # Microsoft.Web/sites/*: what the code deployment script needs to publish through Kudu.
    WEBSITE_CONTRIBUTOR = "de139f84-1756-47ae-9be6-808fbbe84772"
    # The Functions host lists, reads, writes and deletes its keys in its vault (Get/Set/List/Delete):
    # data actions Microsoft.KeyVault/vaults/secrets/* (Azure built-in roles, Security).
    KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"


@dataclass(frozen=True, kw_only=True)
class RoleAssignment:
    """A role granted to a principal on a component's main resource."""

    principal_id: pulumi.Input[str]
    role: Role
    principal_type: str = "ServicePrincipal"
    """`ServicePrincipal` for managed identities (skips Entra replication delays), `User` or `Group`.
    Always set: azure-native sends `User` when it is left out."""
    description: str = ""
    aliases: Sequence[str] = ()
    """Optional. Logical names this assignment had before (e.g. a positional `signalr-role-0`), so a
    rename keeps the resource instead of replacing it. Default: none."""


@dataclass(frozen=True, kw_only=True)
class UserAssignedIdentity:
    """A user-assigned managed identity as the components consume it."""

    resource_id: pulumi.Input[str]
    client_id: pulumi.Input[str]
    principal_id: pulumi.Input[str]
    name: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class Deployer:
    """The identity running `pulumi up`, for the data-plane work it does during the deployment."""

    principal_id: pulumi.Input[str]
    """Its Entra object id."""
    principal_type: str = "User"
    """`User` on a workstation, `ServicePrincipal` in CI: role assignments must say which."""

    def role(self, role: Role, description: str) -> RoleAssignment:
        """A role assignment of `role` to this identity."""
        return RoleAssignment(
            principal_id=self.principal_id,
            role=role,
            principal_type=self.principal_type,
            description=description,
        )


def create_identity(
    name: str,
    resource_name: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    location: pulumi.Input[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions | None = None,
) -> UserAssignedIdentity:
    """A user-assigned managed identity, created before the services that grant it access (so their
    role assignments exist before anything runs as it)."""
    identity = managedidentity.UserAssignedIdentity(
        name,
        resource_name_=resource_name,
        resource_group_name=resource_group_name,
        location=location,
        tags=tags,
        opts=opts,
    )
    return UserAssignedIdentity(
        resource_id=identity.id,
        client_id=identity.client_id,
        principal_id=identity.principal_id,
        name=identity.name,
    )


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
        opts=pulumi.ResourceOptions(
            parent=parent, aliases=[pulumi.Alias(name=alias) for alias in assignment.aliases]
        ),
    )


def assign_roles(
    name: str,
    scope: pulumi.Input[str],
    assignments: Mapping[str, RoleAssignment],
    parent: pulumi.Resource,
) -> list[authorization.RoleAssignment]:
    """Apply a component's `role_assignments` to its main resource, each named by its key."""
    for key in assignments:
        if not key or not all(c.isalnum() or c == "-" for c in key):
            raise ValueError(f"role assignment key {key!r}: use letters, digits and '-'")
    return [
        assign_role(f"{name}-role-{key}", scope, assignment, parent)
        for key, assignment in assignments.items()
    ]
