"""Azure's public-cloud region names, so a typo in `azure-native:location` is a settings error with a
"did you mean" (issue 32: `moon` passed the settings, then the policy pack printed 17 identical lines
and `cost` priced it silently).

A snapshot (December 2026) of the programmatic names, from `AzureLocation.cs` in Azure/azure-sdk-for-net
(Azure.Core's public-cloud locations) and from Microsoft Learn's "Azure regions list" (the
"Programmatic name" column), with the newer regions that list adds; sources and what is inference in
docs/sources/regions.md. Sovereign clouds (China, US Government) are not in it: the program deploys
to the public cloud. A region newer than this snapshot is refused until it is added here, and the
error says so.
"""

from __future__ import annotations

import difflib

SNAPSHOT_DATE = "2026-12"
REGIONS = frozenset(
    {
        "australiacentral",
        "australiacentral2",
        "australiaeast",
        "australiasoutheast",
        "austriaeast",
        "belgiumcentral",
        "brazilsouth",
        "brazilsoutheast",
        "canadacentral",
        "canadaeast",
        "centralindia",
        "centralus",
        "chilecentral",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "francesouth",
        "germanynorth",
        "germanywestcentral",
        "indonesiacentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "japanwest",
        "jioindiacentral",
        "jioindiawest",
        "koreacentral",
        "koreasouth",
        "malaysiawest",
        "mexicocentral",
        "newzealandnorth",
        "northcentralus",
        "northeurope",
        "norwayeast",
        "norwaywest",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southafricawest",
        "southcentralus",
        "southeastasia",
        "southindia",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "switzerlandwest",
        "uaecentral",
        "uaenorth",
        "uksouth",
        "ukwest",
        "westcentralus",
        "westeurope",
        "westindia",
        "westus",
        "westus2",
        "westus3",
    }
)


def region_problem(location: str) -> str | None:
    """None for a known region; otherwise one line: what was given, the region meant when it is a
    near miss or a display name (`West Europe`, `west-europe`), and what to do."""
    if location in REGIONS:
        return None
    folded = "".join(character for character in location.lower() if character.isalnum())
    meant = folded if folded in REGIONS else next(iter(difflib.get_close_matches(folded, REGIONS, 1)), None)
    hint = f"did you mean {meant}?" if meant else "e.g. westeurope, swedencentral, eastus2"
    return (
        f"azure-native:location = {location!r} is not an Azure region name ({hint}). A region newer "
        f"than this project's list ({SNAPSHOT_DATE}) goes into settings/regions.py"
    )


# Where the services this stack uses are offered, as a snapshot (sources and what is inference in
# docs/sources/regions.md). At deploy time the live check is the authority: `python -m preflight`
# asks ARM for the Flex Consumption regions (preflight/checks.py `flex_regions`).
FLEX_CONSUMPTION_REGIONS = frozenset(
    {
        "australiaeast",
        "australiasoutheast",
        "brazilsouth",
        "canadacentral",
        "centralindia",
        "centralus",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "japaneast",
        "koreacentral",
        "northcentralus",
        "northeurope",
        "norwayeast",
        "southafricanorth",
        "southcentralus",
        "southeastasia",
        "southindia",
        "spaincentral",
        "swedencentral",
        "uaenorth",
        "uksouth",
        "ukwest",
        "westcentralus",
        "westeurope",
        "westus",
        "westus2",
        "westus3",
    }
)
# No public-cloud region without SignalR or serverless SQL was found in a source: both admit every
# region above until a refresh narrows them (docs/sources/regions.md says what was and was not read).
SIGNALR_REGIONS = REGIONS
SQL_SERVERLESS_REGIONS = REGIONS

GEOGRAPHIES: dict[str, tuple[str, ...]] = {
    "Europe": (
        "westeurope",
        "northeurope",
        "swedencentral",
        "germanywestcentral",
        "francecentral",
        "uksouth",
        "ukwest",
        "italynorth",
        "spaincentral",
        "norwayeast",
        "polandcentral",
        "switzerlandnorth",
        "austriaeast",
        "belgiumcentral",
        "germanynorth",
        "francesouth",
        "norwaywest",
        "switzerlandwest",
    ),
    "Americas": (
        "eastus",
        "eastus2",
        "centralus",
        "westus2",
        "westus3",
        "southcentralus",
        "northcentralus",
        "westus",
        "westcentralus",
        "canadacentral",
        "canadaeast",
        "brazilsouth",
        "brazilsoutheast",
        "mexicocentral",
        "chilecentral",
    ),
    "Asia Pacific": (
        "southeastasia",
        "eastasia",
        "japaneast",
        "japanwest",
        "koreacentral",
        "koreasouth",
        "centralindia",
        "southindia",
        "westindia",
        "jioindiacentral",
        "jioindiawest",
        "australiaeast",
        "australiasoutheast",
        "australiacentral",
        "australiacentral2",
        "indonesiacentral",
        "malaysiawest",
        "newzealandnorth",
    ),
    "Middle East and Africa": (
        "uaenorth",
        "uaecentral",
        "qatarcentral",
        "israelcentral",
        "southafricanorth",
        "southafricawest",
    ),
}
"""Each region's geography, nearest first within it, so a refusal suggests regions close by."""


def nearest_offering(location: str, offered: frozenset[str], count: int = 3) -> list[str]:
    """Up to `count` regions that offer the service: the same geography first, in its listed order."""
    same = next((regions for regions in GEOGRAPHIES.values() if location in regions), ())
    # A region of the same country (japanwest -> japaneast) before the rest of its geography.
    same = tuple(sorted(same, key=lambda region: not region.startswith(location[:5])))
    others = [region for regions in GEOGRAPHIES.values() if regions is not same for region in regions]
    return [region for region in (*same, *others) if region in offered and region != location][:count]


LIVE_LISTS = {
    "Flex Consumption": "`az functionapp list-flexconsumption-locations`, which `python -m preflight` "
    "also asks ARM before a deploy",
    "Azure SignalR Service": "`az provider show -n Microsoft.SignalRService` (its SignalR locations)",
    "Azure SQL Database serverless": "`az sql db list-editions -l <region> --edition GeneralPurpose`",
}
"""Where the live answer is, per service: it is the authority; this snapshot only answers early."""


def service_region_problems(location: str, hosting_plan: str, sql_sku: str) -> list[str]:
    """One line per service this stack needs that the snapshot says `location` lacks: Flex Consumption
    (hostingPlan FlexConsumption), Azure SignalR Service, serverless SQL (a GP_S_* sqlSku)."""
    flex = "broadcast:hostingPlan"
    sql = "broadcast:sqlSku"
    needs = [("Azure SignalR Service", "", SIGNALR_REGIONS, "")]
    if hosting_plan == "FlexConsumption":
        needs.insert(0, ("Flex Consumption", flex, FLEX_CONSUMPTION_REGIONS, f", or `{flex} ElasticPremium`"))
    if sql_sku.startswith("GP_S_"):
        needs.append(
            ("Azure SQL Database serverless", sql, SQL_SERVERLESS_REGIONS, f", or a provisioned {sql}")
        )
    return [
        f"azure-native:location = {location!r}{f' with {key} = {value!r}' if key else ''}: {service} is not "
        f"offered there in this project's snapshot ({SNAPSHOT_DATE}); did you mean "
        f"{', '.join(nearest_offering(location, offered))}{hint}? The live list is the authority "
        f"({LIVE_LISTS[service]}): a region it lists goes into settings/regions.py"
        for service, key, offered, hint in needs
        if location not in offered
        for value in [hosting_plan if key == flex else sql_sku]
    ]
