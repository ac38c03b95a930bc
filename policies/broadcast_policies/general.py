"""Rules for every resource: required tags, allowed locations, public network access."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._support import (
    DEFAULT_ALLOWED_LOCATIONS,
    DEFAULT_REQUIRED_TAGS,
    SIGNALR,
    SQL_SERVER,
    STORAGE_ACCOUNT,
    TAGGABLE,
    Report,
    config_value,
)


def _required_tags(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type not in TAGGABLE:
        return
    required = list(config_value(args.get_config(), "requiredTags", DEFAULT_REQUIRED_TAGS))
    tags = args.props.get("tags") or {}
    missing = [tag for tag in required if not tags.get(tag)]
    if missing:
        report(
            f"Missing tag(s) {', '.join(missing)}. "
            "Pass the stack's tags to the component (tags=settings.tags)."
        )


def _allowed_location(args: ResourceValidationArgs, report: Report) -> None:
    location = args.props.get("location")
    if location is None:
        return
    allowed = list(config_value(args.get_config(), "allowedLocations", DEFAULT_ALLOWED_LOCATIONS))
    normalized = str(location).replace(" ", "").lower()
    # Action groups, alert rules and private DNS zones are global resources, held in no region.
    if normalized != "global" and normalized not in allowed:
        report(
            f"Location {location!r} is not allowed. Use one of: {', '.join(allowed)} "
            "(pulumi config set azure-native:location ...)."
        )


_PUBLIC_ACCESS_PROPERTY = {
    STORAGE_ACCOUNT: "publicNetworkAccess",
    SIGNALR: "publicNetworkAccess",
    SQL_SERVER: "publicNetworkAccess",
}


def _public_network_access(args: ResourceValidationArgs, report: Report) -> None:
    key = _PUBLIC_ACCESS_PROPERTY.get(args.resource_type)
    if key is None or config_value(args.get_config(), "allowPublicNetworkAccess", True):
        return
    if args.props.get(key) != "Disabled":
        report(
            f"{args.resource_type.split(':')[-1]} is reachable from public networks, which this "
            f"organization does not allow. Set {key}='Disabled' and reach it through private endpoints."
        )


POLICIES = [
    ResourceValidationPolicy(
        name="required-tags",
        description="Taggable resources carry the required tags.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_required_tags,
        config_schema=PolicyConfigSchema(
            properties={
                "requiredTags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": DEFAULT_REQUIRED_TAGS,
                }
            }
        ),
    ),
    ResourceValidationPolicy(
        name="allowed-locations",
        description="Resources are created in allowed regions only.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_allowed_location,
        config_schema=PolicyConfigSchema(
            properties={
                "allowedLocations": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": DEFAULT_ALLOWED_LOCATIONS,
                }
            }
        ),
    ),
    ResourceValidationPolicy(
        name="public-network-access",
        description="Where public network access is not allowed, storage, SignalR and SQL disable it.",
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=_public_network_access,
        config_schema=PolicyConfigSchema(
            properties={"allowPublicNetworkAccess": {"type": "boolean", "default": True}}
        ),
    ),
]
