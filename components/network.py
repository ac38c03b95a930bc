"""Network: private access to the data services (off by default; `network: private`).

Azure resources: a `network.VirtualNetwork` with three subnets (one delegated to
`Microsoft.App/environments` for the Flex Consumption app's outbound traffic, one for private
endpoints, one delegated to `Microsoft.ContainerInstance/containerGroups` where the deployment script
that applies the database schema runs), and the `privatedns.PrivateZone`s of the endpoints'
sub-resources, linked to the network (with the network created here, also `privatelink.file`, for
the script's storage). Enterprises bring their own: given subnet ids, no network is created (and the
schema is applied from the deploying machine, as before); given zone ids, no zone is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network, privatedns

from components.shared import ComponentArgs, PrivateAccess

# Azure public cloud's zone per private endpoint sub-resource (Azure Private Endpoint DNS values).
PRIVATE_DNS_ZONES = {
    "sqlServer": "privatelink.database.windows.net",
    "blob": "privatelink.blob.core.windows.net",
    "queue": "privatelink.queue.core.windows.net",
    "table": "privatelink.table.core.windows.net",
}
# A deployment script's storage is reached through a `file` endpoint ("Run Bicep deployment script
# privately over a private endpoint"); only a network created here gets this zone: a hub that brings
# its own network keeps its zones, and two zones of one name cannot be linked to one network.
SCRIPT_DNS_ZONES = {"file": "privatelink.file.core.windows.net"}
# Flex Consumption delegates its integration subnet to Container Apps' environments, not server
# farms (Azure Functions networking options, Flex Consumption).
FLEX_DELEGATION = "Microsoft.App/environments"
# A deployment script's container runs in a subnet delegated to container groups ("Access a private
# virtual network from a Bicep deployment script").
SCRIPT_DELEGATION = "Microsoft.ContainerInstance/containerGroups"
APP_SUBNET, ENDPOINT_SUBNET, SCRIPT_SUBNET = "snet-app", "snet-endpoints", "snet-scripts"


def split_address_space(address_space: str) -> tuple[str, str, str]:
    """The app subnet (the first half: /27 or larger, as Flex recommends, from a /26), the endpoint
    subnet (the third quarter) and the script subnet (the last quarter) of an address space."""
    first, second = ipaddress.IPv4Network(address_space).subnets(prefixlen_diff=1)
    third, fourth = second.subnets(prefixlen_diff=1)
    return str(first), str(third), str(fourth)


@dataclass(kw_only=True)
class NetworkArgs(ComponentArgs):
    """Arguments of `Network`."""

    address_space: str = "10.20.0.0/24"
    """Optional. The virtual network's address space (a /26 or larger): its first half for the app
    subnet, its third and fourth quarters for the endpoint and script subnets. Default: 10.20.0.0/24."""
    app_subnet_id: str | None = None
    """Optional. An existing subnet delegated to Microsoft.App/environments: no network is created.
    With `endpoint_subnet_id`. Default: none."""
    endpoint_subnet_id: str | None = None
    """Optional. An existing subnet for private endpoints. With `app_subnet_id`. Default: none."""
    dns_zone_ids: Mapping[str, str] = field(default_factory=dict)
    """Optional. Existing private DNS zones by sub-resource (`sqlServer`, `blob`, `queue`, `table`),
    already linked to the networks that resolve them: no zone is created. Default: none."""


class Network(pulumi.ComponentResource):
    """The subnets and private DNS zones the data services' private endpoints use."""

    name: pulumi.Output[str]
    """The virtual network's name."""
    resource_id: pulumi.Output[str]
    """The virtual network's resource id."""
    private_access: PrivateAccess
    """What the components need to be reached privately (subnets and zones)."""
    script_subnet_id: pulumi.Output[str] | None
    """The subnet delegated to container groups where in-network deploy-time work runs (the schema);
    None when the network is brought (no subnet is created in someone else's network)."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("broadcast:network:Network", name, None, opts)
        self._logical = name
        if bool(args.app_subnet_id) != bool(args.endpoint_subnet_id):
            raise ValueError("NetworkArgs: give both app_subnet_id and endpoint_subnet_id, or neither")
        if args.app_subnet_id and args.endpoint_subnet_id:
            vnet_id = pulumi.Output.from_input(args.app_subnet_id.split("/subnets/")[0])
            vnet_name = vnet_id.apply(lambda resource_id: resource_id.rsplit("/", 1)[-1])
            app_subnet = pulumi.Output.from_input(args.app_subnet_id)
            endpoint_subnet = pulumi.Output.from_input(args.endpoint_subnet_id)
            self.script_subnet_id, script_zones = None, {}
        else:
            vnet = self._virtual_network(args)
            vnet_id, vnet_name = vnet.id, vnet.name
            app_subnet = vnet.id.apply(lambda resource_id: f"{resource_id}/subnets/{APP_SUBNET}")
            endpoint_subnet = vnet.id.apply(lambda resource_id: f"{resource_id}/subnets/{ENDPOINT_SUBNET}")
            self.script_subnet_id = vnet.id.apply(
                lambda resource_id: f"{resource_id}/subnets/{SCRIPT_SUBNET}"
            )
            script_zones = SCRIPT_DNS_ZONES
        zones = {
            group: pulumi.Output.from_input(args.dns_zone_ids[group])
            if group in args.dns_zone_ids
            else self._zone(args, group, zone, vnet_id)
            for group, zone in {**PRIVATE_DNS_ZONES, **script_zones}.items()
        }
        self.private_access = PrivateAccess(
            endpoint_subnet_id=endpoint_subnet, dns_zone_ids=zones, app_subnet_id=app_subnet
        )
        self.name = vnet_name
        self.resource_id = vnet_id
        self.register_outputs(
            {"name": self.name, "resource_id": self.resource_id, "script_subnet_id": self.script_subnet_id}
        )

    def _virtual_network(self, args: NetworkArgs) -> network.VirtualNetwork:
        # Subnets inline: a separate Subnet resource and its network would each claim the subnet list.
        app_prefix, endpoint_prefix, script_prefix = split_address_space(args.address_space)
        return network.VirtualNetwork(
            f"{self._logical}-vnet",
            virtual_network_name=args.naming.name("vnet"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            subnets=[
                network.SubnetArgs(
                    name=APP_SUBNET,
                    address_prefix=app_prefix,
                    delegations=[
                        network.DelegationArgs(name="flex-consumption", service_name=FLEX_DELEGATION)
                    ],
                ),
                network.SubnetArgs(
                    name=ENDPOINT_SUBNET,
                    address_prefix=endpoint_prefix,
                    private_endpoint_network_policies=network.VirtualNetworkPrivateEndpointNetworkPolicies.DISABLED,
                ),
                network.SubnetArgs(
                    name=SCRIPT_SUBNET,
                    address_prefix=script_prefix,
                    delegations=[
                        network.DelegationArgs(name="container-groups", service_name=SCRIPT_DELEGATION)
                    ],
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _zone(
        self, args: NetworkArgs, group: str, zone_name: str, vnet_id: pulumi.Input[str]
    ) -> pulumi.Output[str]:
        """A private DNS zone (global) linked to the network, without auto-registration."""
        zone = privatedns.PrivateZone(
            f"{self._logical}-zone-{group.lower()}",
            private_zone_name=zone_name,
            resource_group_name=args.resource_group_name,
            location="global",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        link = privatedns.VirtualNetworkLink(
            f"{self._logical}-zone-{group.lower()}-link",
            virtual_network_link_name=args.naming.name("vnetlink"),
            private_zone_name=zone.name,
            resource_group_name=args.resource_group_name,
            location="global",
            tags=dict(args.tags),
            virtual_network=privatedns.SubResourceArgs(id=vnet_id),
            registration_enabled=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The id reaches the zone's users only once the zone is linked, so whatever waits for an
        # endpoint's record also waits for the link that makes the record resolve in the network
        # (Microsoft's private deployment-script sample: dependsOn the zone's virtualNetworkLink).
        return pulumi.Output.all(zone.id, link.id).apply(lambda ids: str(ids[0]))
