"""SignalR Service: Serverless mode, identities only, tight CORS, a SKU fit for the environment."""

from __future__ import annotations

import re

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._support import DEFAULT_SIGNALR_SKUS, SIGNALR, Report, config_value, environment_of


def _serverless(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SIGNALR:
        return
    modes = [f.get("value") for f in args.props.get("features") or [] if f.get("flag") == "ServiceMode"]
    if modes != ["Serverless"]:
        report(
            f"SignalR ServiceMode is {modes or 'unset'}. Add the feature "
            "{flag: 'ServiceMode', value: 'Serverless'}: Functions, not hub servers, send the messages."
        )


def _local_auth_disabled(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == SIGNALR and args.props.get("disableLocalAuth") is not True:
        report(
            "SignalR accepts access keys. Set disable_local_auth=True; grant SignalR Service Owner to the "
            "Functions app's identity."
        )


def _cors(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SIGNALR:
        return
    origins = list((args.props.get("cors") or {}).get("allowedOrigins") or ["*"])
    if "*" in origins:
        report("SignalR CORS allows every origin ('*', also the default when unset). List the site's origin.")


_KEY_IN_QUERY = re.compile(r"[?&](code|key|sig|token)=(?!\{@Microsoft\.KeyVault\()", re.IGNORECASE)


def _upstream_without_keys(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SIGNALR:
        return
    templates = (args.props.get("upstream") or {}).get("templates") or []
    for template in templates:
        url = str(template.get("urlTemplate", ""))
        if _KEY_IN_QUERY.search(url):
            report(
                "A SignalR upstream URL carries a key in clear, and anyone with Reader on SignalR can read "
                "it. Put the key in Key Vault and write `code={@Microsoft.KeyVault(SecretUri=...)}`; give "
                "SignalR a managed identity with Key Vault Secrets User on the secret."
            )
        if "{@Microsoft.KeyVault(" in url and not (args.props.get("identity") or {}).get("type"):
            report(
                "A SignalR upstream URL references Key Vault, but SignalR has no managed identity to read it."
            )


def _sku_allowed(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SIGNALR:
        return
    allowed = dict(config_value(args.get_config(), "allowedSkus", DEFAULT_SIGNALR_SKUS))
    environment = environment_of(args.props)
    sku = (args.props.get("sku") or {}).get("name")
    if environment is None:
        report("SignalR has no 'environment' tag, so its SKU cannot be checked. Tag it.")
    elif environment in allowed and sku not in allowed[environment]:
        report(
            f"SignalR SKU {sku!r} is not allowed in {environment}. Use one of: "
            f"{', '.join(allowed[environment])}."
        )


POLICIES = [
    ResourceValidationPolicy(
        name="signalr-serverless",
        description="SignalR runs in Serverless mode.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_serverless,
    ),
    ResourceValidationPolicy(
        name="signalr-local-auth-disabled",
        description="SignalR access keys are off.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_local_auth_disabled,
    ),
    ResourceValidationPolicy(
        name="signalr-cors-no-wildcard",
        description="SignalR CORS never allows '*'.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_cors,
    ),
    ResourceValidationPolicy(
        name="signalr-upstream-no-keys",
        description="SignalR upstream URLs carry no key in clear (Key Vault references instead).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_upstream_without_keys,
    ),
    ResourceValidationPolicy(
        name="signalr-sku-allowed",
        description="The SignalR SKU is one allowed for the environment.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_sku_allowed,
        config_schema=PolicyConfigSchema(
            properties={
                "allowedSkus": {
                    "type": "object",
                    "default": DEFAULT_SIGNALR_SKUS,
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            }
        ),
    ),
]
