"""Uploading the site to the static website's `$web` container, file by file, with Entra auth.

Pulumi's `storage.Blob` signs with the account key (this project turns shared keys off) and has no
Cache-Control input, so this small dynamic resource syncs the container with azure-storage-blob and
the deploying identity's token instead. Its inputs list every file with its hash, content type and
cache control (`artifacts.site_files.file_manifest`), so `pulumi preview` shows exactly which files
change; files gone from `site/` are deleted from `$web`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from artifacts.site_files import CONFIG_PATH, REVALIDATE
from data_plane.azure_http import credential
from data_plane.provider_support import diff_on, read_planned

CONTAINER = "$web"
# A role assignment made in the same `pulumi up` can take minutes to reach the data plane.
PERMISSION_WAIT_SECONDS = 600


# What Storage answers while the deployment settles: a new role not yet on the data plane (403
# AuthorizationPermissionMismatch / AuthorizationFailure), and `$web` not yet there right after the
# static website was enabled (404 ContainerNotFound).
_SETTLING_ERRORS = ("AuthorizationPermissionMismatch", "AuthorizationFailure", "ContainerNotFound")


def _settling(error: Exception) -> bool:
    """Whether a Storage error may pass by itself within minutes."""
    code = getattr(error, "error_code", None)
    return (
        code in _SETTLING_ERRORS
        or getattr(error, "status_code", None) == 403
        or (any(name in str(error) for name in _SETTLING_ERRORS))
    )


class SiteUploadProvider(ResourceProvider):
    """The dynamic provider behind `SiteContent`; the container client and sleep are replaceable for tests."""

    def __init__(
        self,
        container_factory: Callable[[str], Any] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._container_factory = container_factory
        self._sleep = sleep

    @staticmethod
    def _azure_container(account_url: str) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(account_url, credential=credential()).get_container_client(CONTAINER)

    def _container(self, props: dict[str, Any]) -> Any:
        return (self._container_factory or self._azure_container)(props["account_url"])

    def _with_permission_retry(self, action: Callable[[], None]) -> None:
        deadline = time.monotonic() + PERMISSION_WAIT_SECONDS
        while True:
            try:
                action()
                return
            except Exception as error:
                if not _settling(error) or time.monotonic() > deadline:
                    raise
                (self._sleep or time.sleep)(15)

    def _upload(self, container: Any, path: str, data: bytes, content_type: str, cache_control: str) -> None:
        from azure.storage.blob import ContentSettings

        settings = ContentSettings(content_type=content_type, cache_control=cache_control)
        self._with_permission_retry(
            lambda: container.upload_blob(path, data, overwrite=True, content_settings=settings)
        )

    def _sync(self, olds: dict[str, Any] | None, news: dict[str, Any]) -> dict[str, Any]:
        container = self._container(news)
        old_files: dict[str, Any] = dict((olds or {}).get("files") or {})
        for path, entry in sorted(news["files"].items()):
            if old_files.get(path) == entry and olds and olds.get("account_url") == news["account_url"]:
                continue
            data = read_planned(entry["source"], entry["sha256"])
            self._upload(container, path, data, entry["content_type"], entry["cache_control"])
        if not olds or olds.get("config") != news["config"] or olds.get("account_url") != news["account_url"]:
            self._upload(container, CONFIG_PATH, news["config"].encode(), "application/json", REVALIDATE)
        for path in sorted(set(old_files) - set(news["files"])):

            def delete(blob_path: str = path) -> None:
                container.delete_blob(blob_path)

            self._with_permission_retry(delete)
        return news

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['account_url']}{CONTAINER}", outs=self._sync(None, props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_on(olds, news, watched=("account_url", "files", "config"))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._sync(olds, news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        container = self._container(props)
        for path in [*sorted(props.get("files") or {}), CONFIG_PATH]:
            try:
                container.delete_blob(path)
            except Exception as error:
                if "BlobNotFound" not in str(error) and "404" not in str(error):
                    raise


class SiteContent(pulumi.dynamic.Resource):
    """Every file of the site (and the generated config.json) in the `$web` container."""

    def __init__(
        self,
        name: str,
        account_url: pulumi.Input[str],
        files: dict[str, dict[str, str]],
        config: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            SiteUploadProvider(), name, {"account_url": account_url, "files": files, "config": config}, opts
        )
