"""The interface every component shares, and the resources every component creates the same way.

In the manner of Azure Verified Modules' shared interfaces, each component takes the same
`resource_group_name`, `location`, `tags`, `naming` and `role_assignments` (keyed by a stable name,
never by position), and exposes the same `name` and `resource_id` outputs beside its own. Role
assignments and storage accounts are built here once, so every component makes them alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import pulumi
from pulumi_azure_native import authorization, managedidentity, storage

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
    KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


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
    role_assignments: Mapping[str, RoleAssignment] = field(default_factory=dict)
    """Optional. Roles to grant on the component's main resource, by a key that names each one in its
    resource's logical name (`<component>-role-<key>`), so reordering never replaces one. Default: none."""


def create_identity(
    name: str,
    resource_name: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    location: pulumi.Input[str],
    tags: Mapping[str, str],
) -> UserAssignedIdentity:
    """A user-assigned managed identity, created before the services that grant it access (so their
    role assignments exist before anything runs as it)."""
    identity = managedidentity.UserAssignedIdentity(
        name,
        resource_name_=resource_name,
        resource_group_name=resource_group_name,
        location=location,
        tags=tags,
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


def secure_storage_account(
    name: str, account_name: pulumi.Input[str], args: ComponentArgs, redundancy: str, parent: pulumi.Resource
) -> storage.StorageAccount:
    """The one way a component creates a storage account: StorageV2 with shared keys off, HTTPS
    only, TLS 1.2 and no public containers."""
    return storage.StorageAccount(
        name,
        account_name=account_name,
        resource_group_name=args.resource_group_name,
        location=args.location,
        tags=dict(args.tags),
        kind=storage.Kind.STORAGE_V2,
        sku=storage.SkuArgs(name=f"Standard_{redundancy}"),
        access_tier=storage.AccessTier.HOT,
        enable_https_traffic_only=True,
        minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )
