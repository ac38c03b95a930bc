"""Functions apps: HTTPS, TLS 1.2, no FTP, a managed identity, no secret in settings, tight CORS,
a supported Python runtime."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._support import SUPPORTED_PYTHON, WEB_APP, Report, config_value

# Values that can only be credentials: connection strings with keys, SAS tokens, passwords.
_SECRET_VALUE = re.compile(
    r"(AccountKey=|SharedAccessSignature=|SharedAccessKey=|AccessKey=|Password=|[?&]sig=)", re.IGNORECASE
)
_SECRET_NAME = re.compile(r"(KEY|PASSWORD|SECRET|TOKEN)$", re.IGNORECASE)
_KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(", re.IGNORECASE)


def _site_config(args: ResourceValidationArgs) -> dict[str, Any]:
    return dict(args.props.get("siteConfig") or {})


def _https_only(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == WEB_APP and args.props.get("httpsOnly") is not True:
        report("App accepts plain HTTP. Set https_only=True.")


def _tls(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != WEB_APP:
        return
    config = _site_config(args)
    for key in ("minTlsVersion", "scmMinTlsVersion"):
        if config.get(key) not in ("1.2", "1.3"):
            report(
                f"siteConfig.{key} is {config.get(key)!r}. "
                "Set it to '1.2' (SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2) or newer."
            )


def _flex(args: ResourceValidationArgs) -> bool:
    """Flex Consumption apps carry functionAppConfig; FTP does not exist there."""
    return bool(args.props.get("functionAppConfig"))


def _ftps_disabled(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != WEB_APP or _flex(args):
        return
    if _site_config(args).get("ftpsState") != "Disabled":
        report("FTP(S) deployment is enabled. Set site_config.ftps_state=FtpsState.DISABLED.")


# ARM error 51021 on Flex Consumption (microsoft/azure-pipelines-tasks#21032,
# Azure/terraform-azurerm-avm-res-web-site#283, Azure/azure-functions-host#10643).
FLEX_REJECTED_SITE_CONFIG = (
    "netFrameworkVersion",
    "ftpsState",
    "use32BitWorkerProcess",
    "linuxFxVersion",
    "preWarmedInstanceCount",
    "functionAppScaleLimit",
    "functionsRuntimeScaleMonitoringEnabled",
)


def _flex_site_config(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != WEB_APP or not _flex(args):
        return
    rejected = [key for key in FLEX_REJECTED_SITE_CONFIG if key in _site_config(args)]
    if rejected:
        report(
            f"Flex Consumption refuses siteConfig.{', siteConfig.'.join(rejected)} (ARM error 51021). "
            "Send a plain dict with app settings, CORS and TLS only: SiteConfigArgs fills in "
            "netFrameworkVersion."
        )


def _managed_identity(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != WEB_APP:
        return
    identity = args.props.get("identity") or {}
    if identity.get("type") in (None, "None"):
        report("App has no managed identity. Assign a user- or system-assigned identity and connect with it.")


def _no_secrets_in_settings(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != WEB_APP:
        return
    for setting in _site_config(args).get("appSettings") or []:
        name, value = str(setting.get("name", "")), str(setting.get("value", ""))
        if _KEY_VAULT_REFERENCE.match(value):
            continue
        if _SECRET_VALUE.search(value) or (_SECRET_NAME.search(name) and value):
            report(
                f"App setting {name} carries a credential. Use an identity-based connection "
                f"({name.split('__')[0]}__credential=managedidentity) or a Key Vault reference."
            )


def _cors(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != WEB_APP:
        return
    origins = list((_site_config(args).get("cors") or {}).get("allowedOrigins") or [])
    if "*" in origins:
        report("CORS allows every origin ('*'). List the site's origin instead.")
    for origin in origins:
        if origin != "*" and not str(origin).startswith("https://"):
            report(f"CORS allows {origin!r}, which is not an https:// origin.")


def _runtime(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != WEB_APP or "functionapp" not in str(args.props.get("kind", "")):
        return
    supported = list(config_value(args.get_config(), "supportedPythonVersions", SUPPORTED_PYTHON))
    runtime = (args.props.get("functionAppConfig") or {}).get("runtime") or {}
    linux_fx = str(_site_config(args).get("linuxFxVersion") or "")
    if runtime:
        name, version = str(runtime.get("name", "")).lower(), str(runtime.get("version", ""))
    elif "|" in linux_fx:
        name, version = (part.strip() for part in linux_fx.lower().split("|", 1))
    else:
        report(
            "Functions app declares no runtime. Set functionAppConfig.runtime (Flex Consumption) or "
            "siteConfig.linuxFxVersion ('Python|3.11')."
        )
        return
    if name != "python" or version not in supported:
        report(f"Runtime {name} {version} is not supported here. Use python {', '.join(supported)}.")


POLICIES = [
    ResourceValidationPolicy(
        name="app-https-only",
        description="Apps accept HTTPS only.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_https_only,
    ),
    ResourceValidationPolicy(
        name="app-minimum-tls",
        description="Apps (and their SCM site) require TLS 1.2+.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_tls,
    ),
    ResourceValidationPolicy(
        name="app-ftps-disabled",
        description="FTP and FTPS deployment are off (Flex Consumption has no FTP).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_ftps_disabled,
    ),
    ResourceValidationPolicy(
        name="app-flex-site-config",
        description="Flex Consumption apps send no site configuration that Flex refuses.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_flex_site_config,
    ),
    ResourceValidationPolicy(
        name="app-managed-identity",
        description="Apps have a managed identity.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_managed_identity,
    ),
    ResourceValidationPolicy(
        name="app-settings-no-secrets",
        description="No account key, access key, SAS or password inside an app setting.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_no_secrets_in_settings,
    ),
    ResourceValidationPolicy(
        name="app-cors-no-wildcard",
        description="CORS names https origins, never '*'.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_cors,
    ),
    ResourceValidationPolicy(
        name="app-supported-runtime",
        description="Functions apps run a supported Python version.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_runtime,
        config_schema=PolicyConfigSchema(
            properties={
                "supportedPythonVersions": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": SUPPORTED_PYTHON,
                },
            }
        ),
    ),
]
