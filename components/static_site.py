"""Static site storage: the web app's files, served by Blob Storage's static website.

Azure resources: `storage.StorageAccount` (StorageV2), `storage.StorageAccountStaticWebsite`, and
the site's files in `$web` (written by `components.site_upload.SiteUpload`, a deployment script with an
identity of its own). The `$web` container is served read-only by the web endpoint; no blob container
is public and shared-key access is off, so uploads need an Entra identity with a Storage Blob Data role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import storage

from artifacts.site_files import SiteFile
from components.shared import (
    ComponentArgs,
    Deployer,
    Role,
    assign_role,
    assign_roles,
    lock_against_deletion,
    secure_storage_account,
    send_storage_diagnostics,
)
from components.site_upload import SiteUpload, SiteUploadArgs

INDEX_DOCUMENT = "index.html"
ERROR_DOCUMENT = "404.html"


@dataclass(kw_only=True)
class StaticSiteArgs(ComponentArgs):
    """Arguments of `StaticSite`."""

    redundancy: str = "LRS"
    """Optional. Storage replication: LRS, ZRS, GRS or GZRS. Default: LRS."""
    deployer: Deployer | None = None
    """Optional. The identity running `pulumi up`: it enables the static website through the data plane
    (shared keys are off), with Storage Blob Data Contributor on the account. Default: none."""


class StaticSite(pulumi.ComponentResource):
    """A storage account whose static website serves the broadcast web app."""

    name: pulumi.Output[str]
    """The storage account name."""
    resource_id: pulumi.Output[str]
    """The storage account's resource id."""
    url: pulumi.Output[str]
    """The site's URL, e.g. `https://stbcastdevx7k2q9.z6.web.core.windows.net/`."""
    origin: pulumi.Output[str]
    """The site's origin (URL without the trailing slash), for CORS."""
    blob_endpoint: pulumi.Output[str]
    """The blob service endpoint, where the `$web` container lives."""

    def __init__(self, name: str, args: StaticSiteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("broadcast:static_site:StaticSite", name, None, opts)

        # The web endpoint serves $web anonymously by design; no container itself is public.
        account = secure_storage_account(
            f"{name}-storage", args.naming.compact_name("stweb"), args, args.redundancy, self
        )
        # Enabling the website is a data-plane call with the deployer's token: its role comes first,
        # so that `pulumi destroy` also removes the website while the role still exists.
        self._uploader = (
            assign_role(
                f"{name}-deployer-blob",
                account.id,
                args.deployer.role(Role.STORAGE_BLOB_DATA_CONTRIBUTOR, "uploads the site during pulumi up"),
                self,
            )
            if args.deployer
            else None
        )
        website = storage.StorageAccountStaticWebsite(
            f"{name}-website",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            index_document=INDEX_DOCUMENT,
            error404_document=ERROR_DOCUMENT,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._uploader] if self._uploader else []),
        )
        roles = assign_roles(name, account.id, args.role_assignments, self)
        diagnostics = send_storage_diagnostics(name, account.id, args.diagnostics, self)
        if args.lock:
            # A lock does not protect the blobs (Azure: "Lock your resources"); it keeps the account,
            # and with it the site's address, from being deleted by mistake.
            lock_against_deletion(f"{name}-lock", account.id, self, [self._uploader, *roles, *diagnostics])
        self._name = name
        self._args = args
        self._account = account
        self._website = website

        self.name = account.name
        self.resource_id = account.id
        self.url = account.primary_endpoints.web
        self.origin = self.url.apply(lambda url: url.rstrip("/"))
        self.blob_endpoint = account.primary_endpoints.blob
        self.register_outputs(
            {
                "name": self.name,
                "resource_id": self.resource_id,
                "url": self.url,
                "origin": self.origin,
                "blob_endpoint": self.blob_endpoint,
            }
        )

    def publish(self, files: Mapping[str, SiteFile], config: pulumi.Input[str]) -> SiteUpload:
        """Upload the site's files and its config.json (a deployment script as its own identity).

        A method rather than an argument: config.json names the API, which exists only after the
        Functions app, and the app's CORS needs this site's origin first.
        """
        args = self._args
        return SiteUpload(
            f"{self._name}-upload",
            SiteUploadArgs(
                **args.placement(),
                account_name=self._account.name,
                account_id=self._account.id,
                files=files,
                config=config,
                after=[self._website],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
