"""Storage accounts: HTTPS, TLS 1.2, nothing public, identities instead of keys; a complete site."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy

from ._support import STATIC_WEBSITE, STORAGE_ACCOUNT, Report


def _https_only(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == STORAGE_ACCOUNT and args.props.get("enableHttpsTrafficOnly") is not True:
        report("Storage account accepts plain HTTP. Set enable_https_traffic_only=True.")


def _minimum_tls(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == STORAGE_ACCOUNT and args.props.get("minimumTlsVersion") not in (
        "TLS1_2",
        "TLS1_3",
    ):
        report(
            f"Storage account minimum TLS is {args.props.get('minimumTlsVersion')!r}. "
            "Set minimum_tls_version=storage.MinimumTlsVersion.TLS1_2."
        )


def _no_public_blob_access(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == STORAGE_ACCOUNT and args.props.get("allowBlobPublicAccess") is not False:
        report(
            "Storage account allows public blob containers. Set allow_blob_public_access=False "
            "(the static website endpoint serves $web without it)."
        )


DEPLOYMENT_SCRIPT_PURPOSE = "deployment-script"
"""The `purpose` tag of a deployment script's storage: Azure's deployment script service mounts the
script's file share with the account key (MicrosoftDocs/azure-docs#120857), so keys stay on there,
provided the account refuses public network access (reached through a private endpoint only)."""


def _no_shared_key(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != STORAGE_ACCOUNT or args.props.get("allowSharedKeyAccess") is False:
        return
    if (args.props.get("tags") or {}).get("purpose") == DEPLOYMENT_SCRIPT_PURPOSE:
        if args.props.get("publicNetworkAccess") != "Disabled":
            report(
                "A deployment script's storage keeps account keys (the script service mounts its share "
                "with one), so it must refuse public network access: set public_network_access="
                "storage.PublicNetworkAccess.DISABLED and reach it through a private endpoint."
            )
        return
    report(
        "Storage account accepts account keys. Set allow_shared_key_access=False and grant "
        "Storage Blob Data roles to identities instead."
    )


def _static_website_documents(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != STATIC_WEBSITE:
        return
    for key, example in (("indexDocument", "index.html"), ("error404Document", "404.html")):
        if not args.props.get(key):
            report(
                f"Static website has no {key}. Set it (e.g. {example!r}) so the site root and "
                "unknown paths answer with a page."
            )


POLICIES = [
    ResourceValidationPolicy(
        name="storage-https-only",
        description="Storage accounts accept HTTPS only.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_https_only,
    ),
    ResourceValidationPolicy(
        name="storage-minimum-tls",
        description="Storage accounts require TLS 1.2 or newer.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_minimum_tls,
    ),
    ResourceValidationPolicy(
        name="storage-no-public-blob-access",
        description="No blob container can be made public.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_no_public_blob_access,
    ),
    ResourceValidationPolicy(
        name="storage-no-shared-key",
        description="Storage is reached with Entra identities, not account keys.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_no_shared_key,
    ),
    ResourceValidationPolicy(
        name="static-website-documents",
        description="The static website has an index and a 404 document.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_static_website_documents,
    ),
]
