"""The prerequisites of a deployment, checked with ARM reads, each failure naming the command that
fixes it.

- Resource providers must be registered in the subscription (a fresh one has few): GET
  /subscriptions/{id}/providers?api-version=2021-04-01, `registrationState` "Registered"; fix with
  `az provider register --namespace <ns>` (Azure resource providers and types).
- Flex Consumption is offered in a subset of regions: GET /subscriptions/{id}/providers/Microsoft.Web/
  geoRegions?sku=FlexConsumption, names like "West Europe" (what `az functionapp
  list-flexconsumption-locations` reads).
- The schema migrations connect with Microsoft's ODBC Driver 18 for SQL Server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

ARM = "https://management.azure.com"
PROVIDERS_API = "2021-04-01"
WEB_API = "2023-01-01"
ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
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
PRIVATE_NETWORK_PROVIDERS = ("Microsoft.Network", "Microsoft.App")
"""With private networking: the virtual network, and Flex Consumption's subnet delegation to
`Microsoft.App/environments`."""
ODBC_INSTALL = (
    "install it: Debian/Ubuntu: `curl -sSL https://packages.microsoft.com/config/$(. /etc/os-release; "
    'echo "$ID/$VERSION_ID")/packages-microsoft-prod.deb -o /tmp/ms.deb && sudo dpkg -i /tmp/ms.deb && '
    "sudo apt-get update && sudo ACCEPT_EULA=Y apt-get install -y msodbcsql18`; macOS: `brew tap "
    "microsoft/mssql-release https://github.com/Microsoft/homebrew-mssql-release && HOMEBREW_ACCEPT_EULA=Y "
    "brew install msodbcsql18`"
)

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
    schema_from_here: bool = True
    """The machine running `pulumi up` applies the schema (it needs the ODBC driver)."""

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


def check(arm_get: ArmGet, drivers: Iterable[str], needs: Needs) -> tuple[list[Problem], list[str]]:
    """Every problem, and the checks that could not run (say, no right to read providers)."""
    problems: list[Problem] = odbc_missing(drivers, needs)
    skipped: list[str] = []
    for rule in (unregistered, flex_unavailable):
        try:
            problems += rule(arm_get, needs)
        except (PermissionError, ValueError) as error:
            skipped.append(str(error))
    return problems, skipped


def report(problems: list[Problem]) -> str:
    """The message that stops a deployment."""
    return "the deployment's prerequisites are missing:\n  - " + "\n  - ".join(str(p) for p in problems)
