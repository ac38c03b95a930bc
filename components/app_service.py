"""App Service: the plan that hosts the Functions app.

Azure resources: `web.AppServicePlan` (Linux). Flex Consumption (`FC1`) is Microsoft's
recommended serverless plan; Elastic Premium and Dedicated are there for stacks that need
them (VNet features before Flex had them, reserved capacity).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import web

from components.shared import ComponentArgs

FLEX_CONSUMPTION = "FlexConsumption"
ELASTIC_PREMIUM = "ElasticPremium"
DEDICATED = "Dedicated"

_KIND = {FLEX_CONSUMPTION: "functionapp", ELASTIC_PREMIUM: "elastic", DEDICATED: "linux"}


def sku_tier(plan: str, sku: str) -> str:
    """The App Service SKU tier ARM expects for a plan kind and SKU name."""
    if plan == FLEX_CONSUMPTION:
        return "FlexConsumption"
    if plan == ELASTIC_PREMIUM:
        return "ElasticPremium"
    if sku.endswith("v3"):
        return "PremiumV3"
    return {"B": "Basic", "S": "Standard"}[sku[0]]


@dataclass(kw_only=True)
class HostingPlanArgs(ComponentArgs):
    """Arguments of `HostingPlan`."""

    plan: str = FLEX_CONSUMPTION
    """Optional. FlexConsumption, ElasticPremium or Dedicated. Default: FlexConsumption."""
    sku: str = "FC1"
    """Optional. SKU name matching the plan (FC1, EP1-EP3, B1-P3v3). Default: FC1."""
    maximum_elastic_worker_count: int = 20
    """Optional. Elastic Premium burst limit. Default: 20."""


class HostingPlan(pulumi.ComponentResource):
    """The Linux App Service plan the Functions app runs on."""

    name: pulumi.Output[str]
    """The plan's name."""
    resource_id: pulumi.Output[str]
    """The plan's resource id."""
    plan: str
    """The plan kind this stack uses (known at preview: it decides the app's shape)."""

    def __init__(self, name: str, args: HostingPlanArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("broadcast:app_service:HostingPlan", name, None, opts)
        if args.plan not in _KIND:
            raise ValueError(f"unknown hosting plan {args.plan!r}; allowed: {', '.join(_KIND)}")

        server_farm = web.AppServicePlan(
            f"{name}-plan",
            name=args.naming.name("asp"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            kind=_KIND[args.plan],
            reserved=True,  # Linux
            sku=web.SkuDescriptionArgs(name=args.sku, tier=sku_tier(args.plan, args.sku)),
            maximum_elastic_worker_count=(
                args.maximum_elastic_worker_count if args.plan == ELASTIC_PREMIUM else None
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.plan = args.plan
        self.name = server_farm.name
        self.resource_id = server_farm.id
        self.register_outputs({"name": self.name, "resource_id": self.resource_id})
