"""The one way a component creates a storage account."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import storage

from components.shared.interface import ComponentArgs


def secure_storage_account(
    name: str,
    account_name: pulumi.Input[str],
    args: ComponentArgs,
    redundancy: str,
    parent: pulumi.Resource,
    private: bool = False,
) -> storage.StorageAccount:
    """A StorageV2 account with shared keys off, HTTPS only, TLS 1.2 and no public containers;
    `private` closes its public endpoints (it is then reached through private endpoints only)."""
    return storage.StorageAccount(
        name,
        account_name=account_name,
        resource_group_name=args.resource_group_name,
        location=args.location,
        tags=dict(args.tags),
        kind=storage.Kind.STORAGE_V2,
        sku=storage.SkuArgs(name=f"Standard_{redundancy}"),
        access_tier=storage.AccessTier.HOT,
        enable_https_traffic_only=True,
        minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        public_network_access=storage.PublicNetworkAccess.DISABLED if private else None,
        network_rule_set=(
            storage.NetworkRuleSetArgs(default_action=storage.DefaultAction.DENY, bypass=storage.Bypass.NONE)
            if private
            else None
        ),
        opts=pulumi.ResourceOptions(parent=parent, protect=args.lock),
    )
