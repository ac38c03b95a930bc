"""Retired (issue 33): the site upload's former Python dynamic provider, kept importable so that stacks
deployed before can delete its resource.

The site is now written by a deployment script (`components.site_upload.SiteUpload`). A stack deployed
before holds a `SiteContent` resource whose provider Pulumi pickled into state by reference to this
module (`data_plane.site_upload.SiteUploadProvider`); on the first `up` after the upgrade the engine
unpickles it from here and calls `delete` once the new script has run (removed resources are deleted
last). The old `delete` removed every blob of the site, which would undo the new upload: it is now a
no-op, and the blobs stay with the account (the new script deletes those no longer shipped).
`tests/test_shipping.py` unpickles the old provider as state holds it and checks nothing is called.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import ResourceProvider


class SiteUploadProvider(ResourceProvider):
    """Retired: only `delete` (a no-op) is ever called, on stacks deployed before issue 33."""

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The blobs now belong to the site upload script: never delete them here."""
