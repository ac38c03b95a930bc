"""Private endpoints, one shared shape (AVM's `privateEndpoints`): an endpoint per sub-resource of a
service, in the endpoint subnet, registered in that sub-resource's private DNS zone."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import network

from components.shared.interface import ComponentArgs, PrivateAccess


def private_endpoint(
    name: str,
    target_id: pulumi.Input[str],
    group_id: str,
    args: ComponentArgs,
    access: PrivateAccess,
    parent: pulumi.Resource,
) -> network.PrivateEndpoint:
    """A private endpoint to `group_id` of `target_id`, with its A record in the group's zone."""
    return resolvable_private_endpoint(name, target_id, group_id, args, access, parent)[0]


def resolvable_private_endpoint(
    name: str,
    target_id: pulumi.Input[str],
    group_id: str,
    args: ComponentArgs,
    access: PrivateAccess,
    parent: pulumi.Resource,
) -> tuple[network.PrivateEndpoint, network.PrivateDnsZoneGroup]:
    """The endpoint and its DNS zone group: whatever connects through the endpoint by name during the
    same `pulumi up` waits for both (before the A record exists, the name resolves to the public
    address, which a server without public access refuses)."""
    endpoint = network.PrivateEndpoint(
        name,
        private_endpoint_name=args.naming.name(f"pep-{group_id.lower()}"),
        resource_group_name=args.resource_group_name,
        location=args.location,
        tags=dict(args.tags),
        subnet=network.SubnetArgs(id=access.endpoint_subnet_id),
        private_link_service_connections=[
            network.PrivateLinkServiceConnectionArgs(
                name=group_id, private_link_service_id=target_id, group_ids=[group_id]
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    dns = network.PrivateDnsZoneGroup(
        f"{name}-dns",
        private_dns_zone_group_name="default",
        private_endpoint_name=endpoint.name,
        resource_group_name=args.resource_group_name,
        private_dns_zone_configs=[
            network.PrivateDnsZoneConfigArgs(name=group_id, private_dns_zone_id=access.dns_zone_ids[group_id])
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return endpoint, dns
