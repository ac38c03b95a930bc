"""Retired (issue 33): the dynamic resource that released a deployment script's subnet from ACI on
destroy. `components.schema_runner` does that now with `pulumi-command`'s `local.Command` (a real
provider any Pulumi language runs), whose delete runs the same two steps with `az`.

This module stays because Pulumi state still holds the old resource: the engine deletes it on the
first `pulumi up` after the upgrade with the provider pickled in that state, which dill loads by
module reference (`data_plane.subnet_release.SubnetReleaseProvider`), so this class must exist.
Its delete does nothing: the new command resource, created in the same update before the old one
is deleted, takes over the release at destroy time, and releasing the subnet while the stack lives
would gain nothing. Nothing here is registered any more.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider


class SubnetReleaseProvider(ResourceProvider):
    """The retired provider: every operation is local and touches no network."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['subnet_id']}/release", outs=props)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: the stack's `local.Command` releases the subnet when the network goes."""
