"""The prerequisites of a deployment, checked with ARM reads, each failure naming the command that
fixes it.

- Resource providers must be registered in the subscription (a fresh one has few): GET
  /subscriptions/{id}/providers?api-version=2021-04-01, `registrationState` "Registered"; fix with
  `az provider register --namespace <ns>` (Azure resource providers and types).
- Flex Consumption is offered in a subset of regions: GET /subscriptions/{id}/providers/Microsoft.Web/
  geoRegions?sku=FlexConsumption, names like "West Europe" (what `az functionapp
  list-flexconsumption-locations` reads).
- Private networking: the virtual network (Microsoft.Network), Flex Consumption's subnet delegation to
  `Microsoft.App/environments` (Microsoft.App), and the deployment script that runs the schema inside
  the network in an Azure Container Instance (Microsoft.ContainerInstance; "Access a private virtual
  network from a Bicep deployment script"). A subnet brought by the stack is read (Subnets - Get) and
  must carry its delegation.
- Whoever applies the schema must be able to sign in to SQL as its Entra admin: the deploying identity
  when the schema is applied from the deploying machine; the stack's schema identity when it runs in
  the network (the admin is then that identity, or a group it is added to).
- The schema migrations applied from the deploying machine connect with Microsoft's ODBC Driver 18 for
  SQL Server, but only when the schema changes (`data_plane.database_schema` checks it then): a
  routine `pulumi up` does not need it, and neither does a stack whose schema runs in the network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from data_plane.database_schema import ODBC_DRIVER, ODBC_INSTALL

ARM = "https://management.azure.com"
PROVIDERS_API = "2021-04-01"
WEB_API = "2023-01-01"
NETWORK_API = "2024-05-01"
BASE_PROVIDERS = (
    "Microsoft.Web",
    "Microsoft.Sql",
    "Microsoft.SignalRService",
    "Microsoft.Storage",
    "Microsoft.ManagedIdentity",
    "Microsoft.KeyVault",
    "Microsoft.OperationalInsights",
    "Microsoft.Insights",
)
"""Registered for every stack: the services, identities, secrets and monitoring."""
PRIVATE_NETWORK_PROVIDERS = ("Microsoft.Network", "Microsoft.App", "Microsoft.ContainerInstance")
"""With private networking: the virtual network, Flex Consumption's subnet delegation to
`Microsoft.App/environments`, and the container instance the in-network schema script runs in."""
FLEX_DELEGATION = "Microsoft.App/environments"
__all__ = ["ODBC_DRIVER", "ODBC_INSTALL"]

ArmGet = Callable[[str], tuple[int, bytes]]
"""GET an ARM URL with the deploying identity's token: (status, body)."""


@dataclass(frozen=True)
class Problem:
    """One missing prerequisite."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}; fix: {self.fix}"


@dataclass(frozen=True)
class Needs:
    """What a stack needs of its subscription and of the machine that deploys it."""

    subscription_id: str
    location: str
    flex_consumption: bool
    private_network: bool = False
    schema_from_here: bool = False
    """The machine running this check is about to apply a schema change (it needs the ODBC driver):
    `python -m preflight --schema-from-here`; `pulumi up` itself checks the driver only when the schema
    changes."""
    schema_in_network: bool = False
    """The schema runs inside the stack's network (a private stack that creates its network), as the
    stack's schema identity; otherwise the deploying identity applies it."""
    sql_admin: tuple[str, str] | None = None
    """The configured SQL admin as (principal type, sid); None: the default (the deploying identity,
    or the schema identity when the schema runs in the network)."""
    deployer: tuple[str, str] | None = None
    """The deploying identity as (object id, client id), when known."""
    app_subnet_id: str | None = None
    """A subnet the stack brings for the Functions app (it must be delegated to Microsoft.App)."""

    @property
    def providers(self) -> tuple[str, ...]:
        """The resource providers to register."""
        return BASE_PROVIDERS + (PRIVATE_NETWORK_PROVIDERS if self.private_network else ())


def _values(status: int, body: bytes, what: str) -> list[dict[str, Any]]:
    """The `value` list of an ARM list answer."""
    if status != 200:
        raise PermissionError(
            f"reading {what} answered HTTP {status}: {body.decode('utf-8', 'replace')[:200]}"
        )
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("value"), list):
        raise ValueError(f"reading {what} answered no `value` list")
    return [item for item in document["value"] if isinstance(item, dict)]


def unregistered(arm_get: ArmGet, needs: Needs) -> list[Problem]:
    """The providers this stack needs that the subscription has not registered."""
    url = f"{ARM}/subscriptions/{needs.subscription_id}/providers?api-version={PROVIDERS_API}"
    states = {
        str(item.get("namespace", "")).lower(): str(item.get("registrationState", ""))
        for item in _values(*arm_get(url), "the subscription's resource providers")
    }
    return [
        Problem(
            f"resource provider {namespace} is {states.get(namespace.lower()) or 'NotRegistered'} "
            f"in subscription {needs.subscription_id}",
            f"`az provider register --namespace {namespace} --subscription {needs.subscription_id} --wait`",
        )
        for namespace in needs.providers
        if states.get(namespace.lower()) != "Registered"
    ]


def flex_regions(arm_get: ArmGet, subscription_id: str) -> set[str]:
    """Regions that offer Flex Consumption, as ARM location names (`westeurope`)."""
    url = (
        f"{ARM}/subscriptions/{subscription_id}/providers/Microsoft.Web/geoRegions"
        f"?sku=FlexConsumption&api-version={WEB_API}"
    )
    return {
        str(item.get("name", "")).lower().replace(" ", "")
        for item in _values(*arm_get(url), "the Flex Consumption regions")
    }


def flex_unavailable(arm_get: ArmGet, needs: Needs) -> list[Problem]:
    """A problem when the stack's region does not offer Flex Consumption."""
    if not needs.flex_consumption:
        return []
    regions = flex_regions(arm_get, needs.subscription_id)
    if needs.location in regions:
        return []
    return [
        Problem(
            f"Flex Consumption is not offered in {needs.location}",
            "pick a region from `az functionapp list-flexconsumption-locations` "
            f"({', '.join(sorted(regions))}) and `pulumi config set azure-native:location <region>`, "
            "or set hostingPlan to ElasticPremium",
        )
    ]


def odbc_missing(drivers: Iterable[str], needs: Needs) -> list[Problem]:
    """A problem when the schema is applied from here and the SQL Server ODBC driver is missing."""
    if not needs.schema_from_here or ODBC_DRIVER in set(drivers):
        return []
    return [
        Problem(
            f"{ODBC_DRIVER} is not installed on this machine (the schema migrations use it)", ODBC_INSTALL
        )
    ]


def subnet_undelegated(arm_get: ArmGet, needs: Needs) -> list[Problem]:
    """A problem when a subnet the stack brings is missing or not delegated to Microsoft.App
    (Flex Consumption's virtual network integration refuses any other subnet)."""
    if not needs.app_subnet_id:
        return []
    status, body = arm_get(f"{ARM}{needs.app_subnet_id}?api-version={NETWORK_API}")
    if status == 404:
        return [
            Problem(
                f"subnet {needs.app_subnet_id} does not exist", "set networkAppSubnetId to an existing subnet"
            )
        ]
    if status != 200:
        raise PermissionError(f"reading subnet {needs.app_subnet_id} answered HTTP {status}")
    delegations = json.loads(body).get("properties", {}).get("delegations") or []
    services = {
        str(d.get("properties", {}).get("serviceName", "")) for d in delegations if isinstance(d, dict)
    }
    if FLEX_DELEGATION in services:
        return []
    return [
        Problem(
            f"subnet {needs.app_subnet_id} is delegated to {', '.join(sorted(services)) or 'nothing'}, "
            f"not {FLEX_DELEGATION}",
            f"`az network vnet subnet update --ids {needs.app_subnet_id} --delegations {FLEX_DELEGATION}`",
        )
    ]


def sql_admin_unusable(needs: Needs) -> tuple[list[Problem], list[str]]:
    """Whether whoever applies the schema can sign in as the SQL server's Entra admin: problems, and
    what cannot be known from here (a group's members)."""
    if needs.sql_admin is None:
        return [], []  # the default admin is whoever applies the schema
    kind, sid = needs.sql_admin
    if kind == "Group":
        who = (
            "the stack's schema identity (id-sql-<workload>-<env>-<suffix>)"
            if needs.schema_in_network
            else "you"
        )
        return [], [f"the SQL admin is group {sid}: {who} must be a member (group members are not read here)"]
    if needs.schema_in_network:
        return [], []  # the settings refuse a User or Application admin there (settings.loading)
    if needs.deployer is None:
        return [], []
    object_id, client_id = needs.deployer
    if sid.lower() in (object_id.lower(), client_id.lower()):
        return [], []
    return [
        Problem(
            f"the schema is applied by the deploying identity ({object_id}), which is not the SQL admin "
            f"{kind} {sid}",
            "deploy as the SQL admin, make the admin a Group the deploying identity is in, or unset the "
            "sqlAdmin* keys (the deploying identity becomes the admin)",
        )
    ], []


def check(arm_get: ArmGet, drivers: Iterable[str], needs: Needs) -> tuple[list[Problem], list[str]]:
    """Every problem, and the checks that could not run (say, no right to read providers)."""
    problems, skipped = sql_admin_unusable(needs)
    problems += odbc_missing(drivers, needs)
    for rule in (unregistered, flex_unavailable, subnet_undelegated):
        try:
            problems += rule(arm_get, needs)
        except (PermissionError, ValueError) as error:
            skipped.append(str(error))
    return problems, skipped


def report(problems: list[Problem]) -> str:
    """The message that stops a deployment."""
    return "the deployment's prerequisites are missing:\n  - " + "\n  - ".join(str(p) for p in problems)
