"""The arguments every component takes, in the manner of Azure Verified Modules' shared interfaces:
where the resources go (resource group, location, naming, tags), who may use them (role
assignments), where they report (diagnostic settings), whether they are protected (lock), and how
they are reached (private access)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.shared.identity import RoleAssignment
from components.shared.naming import Naming


@dataclass(frozen=True, kw_only=True)
class Diagnostics:
    """Where resources send their logs and metrics (AVM's `diagnosticSettings`, one destination)."""

    workspace_id: pulumi.Input[str]
    """The Log Analytics workspace's resource id."""


@dataclass(frozen=True, kw_only=True)
class PrivateAccess:
    """How the data services are reached from a virtual network: private endpoints in one subnet,
    registered in the private DNS zones of their sub-resources (AVM's `privateEndpoints`)."""

    endpoint_subnet_id: pulumi.Input[str]
    """The subnet the private endpoints get their addresses in."""
    dns_zone_ids: Mapping[str, pulumi.Input[str]]
    """The private DNS zone of each sub-resource (group id): `sqlServer`, `blob`, `queue`, `table`."""
    app_subnet_id: pulumi.Input[str] | None = None
    """The subnet delegated to `Microsoft.App/environments` that the Functions app sends its outbound
    traffic through (Flex Consumption's virtual network integration)."""


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
    diagnostics: Diagnostics | None = None
    """Optional. Send every resource's logs and metrics (the categories Microsoft documents for its
    type) to a Log Analytics workspace. Default: none."""
    lock: bool = False
    """Optional. Guard the component's stateful resources: a `CanNotDelete` management lock and
    Pulumi's `protect`. Default: false."""
    private_access: PrivateAccess | None = None
    """Optional. Reach the component's data services through private endpoints only (public network
    access disabled). Default: none (public endpoints, behind Entra and firewalls)."""

    def placement(self) -> dict[str, Any]:
        """Where a child component goes, as its own args take it: the same resource group, region,
        naming and tags (what a deploy-time step inside this component shares with it)."""
        return {
            "resource_group_name": self.resource_group_name,
            "location": self.location,
            "naming": self.naming,
            "tags": self.tags,
        }
