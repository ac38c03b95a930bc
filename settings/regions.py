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
