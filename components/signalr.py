"""SignalR: Azure SignalR Service in Serverless mode, the fan-out to every browser.

Azure resources: `signalrservice.SignalR`, role assignments on it and its diagnostic setting.
Local (key) auth is disabled: the Functions app reaches it with its managed identity, and clients
with the short tokens that `negotiate` hands out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import signalrservice

from components.shared import ComponentArgs, UserAssignedIdentity, assign_roles, send_diagnostics

_SKU_TIERS = {"Free_F1": "Free", "Standard_S1": "Standard", "Premium_P1": "Premium"}


def service_uri(resource_name: str) -> str:
    """The endpoint Azure gives a SignalR resource: `https://<name>.service.signalr.net`."""
    return f"https://{resource_name}.service.signalr.net"


@dataclass(kw_only=True)
class SignalRArgs(ComponentArgs):
    """Arguments of `SignalR`."""

    resource_name: pulumi.Input[str]
    """Required. The globally unique SignalR name (it becomes `<name>.service.signalr.net`)."""
    allowed_origins: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Required. Browser origins allowed to connect; never `*`."""
    hub: str
    """Required. The hub whose connection events go upstream."""
    sku: str = "Free_F1"
    """Optional. Free_F1, Standard_S1 or Premium_P1. Default: Free_F1."""
    units: int = 1
    """Optional. Unit count (1,000 connections each). Default: 1."""
    upstream_url: pulumi.Input[str] | None = None
    """Optional. Where connection events (`connected`, `disconnected`) are sent: a URL template, whose
    key should be a Key Vault reference (`{@Microsoft.KeyVault(SecretUri=...)}`) that SignalR reads
    with `identity`. Default: none (no connection events)."""
    identity: UserAssignedIdentity | None = None
    """Optional. The service's managed identity (SignalR takes one): what it resolves Key Vault
    references in upstream URLs with. Default: none."""


class SignalR(pulumi.ComponentResource):
    """An Azure SignalR Service in Serverless mode with identity-only access."""

    name: pulumi.Output[str]
    """The SignalR resource name."""
    resource_id: pulumi.Output[str]
    """The SignalR resource id."""
    host_name: pulumi.Output[str]
    """The service host name, e.g. `sigr-bcast-dev-x7k2q9.service.signalr.net`."""
    service_uri: pulumi.Output[str]
    """`https://` + host name: the value of `AzureSignalRConnectionString__serviceUri`."""

    def __init__(self, name: str, args: SignalRArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("broadcast:signalr:SignalR", name, None, opts)
        if args.sku not in _SKU_TIERS:
            raise ValueError(f"unknown SignalR SKU {args.sku!r}; allowed: {', '.join(_SKU_TIERS)}")

        service = self._service(name, args)
        assign_roles(name, service.id, args.role_assignments, self)
        # SignalR has one resource-log category, AllLogs; which logs exist is the features in `_service`.
        send_diagnostics(f"{name}-diagnostics", service.id, args.diagnostics, self, logs=("AllLogs",))

        self.name = service.name
        self.resource_id = service.id
        self.host_name = service.host_name
        self.service_uri = service.host_name.apply(lambda host: f"https://{host}")
        self.register_outputs(
            {
                "name": self.name,
                "resource_id": self.resource_id,
                "host_name": self.host_name,
                "service_uri": self.service_uri,
            }
        )

    def _service(self, name: str, args: SignalRArgs) -> signalrservice.SignalR:
        """The service itself: Serverless mode (no hub server; the Functions app sends through the
        service), key auth off so only identities and `negotiate`'s tokens get in, and the features
        that decide which logs exist."""
        return signalrservice.SignalR(
            f"{name}-service",
            resource_name_=args.resource_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            kind=signalrservice.ServiceKind.SIGNAL_R,
            sku=signalrservice.ResourceSkuArgs(name=args.sku, tier=_SKU_TIERS[args.sku], capacity=args.units),
            features=[
                signalrservice.SignalRFeatureArgs(flag="ServiceMode", value="Serverless"),
                # Which logs the service writes (its "log source settings"): connections and messages.
                signalrservice.SignalRFeatureArgs(flag="EnableConnectivityLogs", value="True"),
                signalrservice.SignalRFeatureArgs(flag="EnableMessagingLogs", value="True"),
            ],
            cors=signalrservice.SignalRCorsSettingsArgs(allowed_origins=args.allowed_origins),
            disable_local_auth=True,
            disable_aad_auth=False,
            public_network_access="Enabled",
            tls=signalrservice.SignalRTlsSettingsArgs(client_cert_enabled=False),
            upstream=self._upstream(args),
            identity=self._identity(args),
            opts=pulumi.ResourceOptions(parent=self),
        )

    @staticmethod
    def _upstream(args: SignalRArgs) -> signalrservice.ServerlessUpstreamSettingsArgs | None:
        """Where the hub's connection events go, so presence hears of connects and disconnects; none
        without an upstream URL (Serverless mode then sends no events)."""
        if args.upstream_url is None:
            return None
        return signalrservice.ServerlessUpstreamSettingsArgs(
            templates=[
                signalrservice.UpstreamTemplateArgs(
                    url_template=args.upstream_url,
                    hub_pattern=args.hub,
                    category_pattern="connections",
                    event_pattern="connected,disconnected",
                )
            ]
        )

    @staticmethod
    def _identity(args: SignalRArgs) -> signalrservice.ManagedIdentityArgs | None:
        """The user-assigned identity SignalR resolves the upstream URL's Key Vault reference with."""
        if not args.identity:
            return None
        return signalrservice.ManagedIdentityArgs(
            type=signalrservice.ManagedIdentityType.USER_ASSIGNED,
            user_assigned_identities=[args.identity.resource_id],
        )
