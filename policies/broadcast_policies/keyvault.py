"""Key Vault: access through Entra roles only, and production secrets that cannot be purged."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy

from ._support import KEY_VAULT, Report, environment_of


def _rbac(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != KEY_VAULT:
        return
    properties = args.props.get("properties") or {}
    if properties.get("enableRbacAuthorization") is not True:
        report(
            "Key Vault uses access policies. Set properties.enable_rbac_authorization=True and grant "
            "Key Vault Secrets User on the secret to the identity that reads it."
        )


def _production_purge_protection(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != KEY_VAULT or environment_of(args.props) != "prod":
        return
    properties = args.props.get("properties") or {}
    if properties.get("enablePurgeProtection") is not True:
        report(
            "Production Key Vault can be purged. Set properties.enable_purge_protection=True "
            "(protectData, on by default in prod)."
        )


POLICIES = [
    ResourceValidationPolicy(
        name="keyvault-rbac",
        description="Key Vaults authorize data access with Entra roles, not access policies.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_rbac,
    ),
    ResourceValidationPolicy(
        name="keyvault-production-purge-protection",
        description="Production Key Vaults have purge protection.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_production_purge_protection,
    ),
]
