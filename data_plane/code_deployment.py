"""Retired (issue 33): the code deployment's former Python dynamic providers, kept importable so that
stacks deployed before can delete their resources.

The package is now built and deployed by a deployment script (`components.code_deployment`). A stack
deployed before holds `OneDeploy` (Flex Consumption) or `PackageBlob` (Elastic Premium / Dedicated)
resources whose providers Pulumi pickled into state by reference to this module; on the first `up`
after the upgrade the engine unpickles them from here and calls `delete`. Both deletes always were
no-ops (the code goes with the app; an old package blob may still be read by the app until its
settings change), and stay so: nothing here can undo the new deployment.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import ResourceProvider


class OneDeployProvider(ResourceProvider):
    """Retired: only `delete` (a no-op) is ever called, on stacks deployed before issue 33."""

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The code goes with the app."""


class PackageBlobProvider(ResourceProvider):
    """Retired: only `delete` (a no-op) is ever called, on stacks deployed before issue 33."""

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Old packages stay until their container goes: the app may still be reading one."""
