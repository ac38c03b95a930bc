"""Deploying the function package during `pulumi up`, the way each hosting plan documents it.

- Flex Consumption: OneDeploy, `POST https://<app>.scm.azurewebsites.net/api/publish?type=zip`, with
  the deploying identity's Entra token; the call is asynchronous, so the provider follows the
  deployment until it succeeds or fails, and fails `pulumi up` with the host's message.
- Elastic Premium / Dedicated: the zip is uploaded as a blob named by its hash into the app's private
  package container; `WEBSITE_RUN_FROM_PACKAGE` points at it and the app reads it with its identity.

Both key on the package's hash (of its inputs, known at plan time): a new hash redeploys, the same
hash does nothing. The zip is built here, at deploy time (`artifacts.function_package.package_bytes`),
so a preview or a program evaluated under mocks never runs pip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from artifacts.function_package import package_bytes
from data_plane.azure_http import Transport, credential, entra_token, urllib_transport
from data_plane.provider_support import diff_on

PackageLoader = Callable[[dict[str, Any]], bytes]
"""The zip of the package the resource's inputs plan (`package_path`, `package_sha256`, `python_version`)."""


def _planned_package(props: dict[str, Any]) -> bytes:
    return package_bytes(props["package_path"], props["package_sha256"], props["python_version"])


# Kudu's deployment states (OneDeploy's DeploymentStatus; the Azure CLI's Flex deployment check ends
# on -1, 3, 4, 5 and 6). Anything else is still running, unless the deployment says `complete`.
DEPLOY_SUCCESS = 4
DEPLOY_ENDINGS = {
    -1: "was cancelled",
    3: "failed",
    5: "was cancelled: another deployment is in progress",
    6: "was only partly successful",
}
# A new role assignment can take minutes to reach Kudu (the caller) or the deployment storage (the
# app's identity): such refusals are waited out, for a bounded time.
AUTHORIZATION_WAIT_SECONDS = 600
RETRY_SECONDS = 15
_STORAGE_REFUSAL = ("403", "Forbidden", "not authorized", "AuthorizationPermissionMismatch")


class AuthorizationPendingError(RuntimeError):
    """Refused for want of a permission that may still be propagating."""


class OneDeployProvider(ResourceProvider):
    """The dynamic provider behind `OneDeploy`; `transport`, `token`, `sleep` and `load` are
    replaceable for tests."""

    def __init__(
        self,
        transport: Transport | None = None,
        token: Callable[[], str] | None = None,
        sleep: Callable[[float], None] | None = None,
        timeout_seconds: float = 1200,
        authorization_wait_seconds: float = AUTHORIZATION_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        load: PackageLoader | None = None,
    ) -> None:
        self._load = load
        self._transport = transport
        self._token = token
        self._sleep = sleep
        self._timeout = timeout_seconds
        self._authorization_wait = authorization_wait_seconds
        self._clock = clock

    def _send(
        self, method: str, url: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Authorization": f"Bearer {(self._token or entra_token)()}",
            "Content-Type": content_type,
        }
        return (self._transport or urllib_transport)(method, url, body, headers)

    def _pause(self, seconds: float) -> None:
        (self._sleep or time.sleep)(seconds)

    def deploy(self, scm_host: str, data: bytes) -> str:
        """Publish the zip and wait for the deployment to end; returns its id. Refusals for want of
        a permission are retried until AUTHORIZATION_WAIT_SECONDS have passed."""
        deadline = self._clock() + self._authorization_wait
        while True:
            try:
                return self._follow(scm_host, self._publish(scm_host, data))
            except AuthorizationPendingError as refusal:
                if self._clock() + RETRY_SECONDS > deadline:
                    raise RuntimeError(
                        f"{refusal} (still refused after {self._authorization_wait:.0f} s: check the role "
                        "assignments of the deploying identity and of the app's identity)"
                    ) from None
                self._pause(RETRY_SECONDS)

    def _publish(self, scm_host: str, data: bytes) -> str:
        """POST the zip; returns the URL of the deployment's status."""
        status, headers, body = self._send(
            "POST", f"https://{scm_host}/api/publish?type=zip&RemoteBuild=false", data, "application/zip"
        )
        text = body.decode("utf-8", "replace")[:500]
        if status in (401, 403):
            raise AuthorizationPendingError(f"OneDeploy to {scm_host} was refused with HTTP {status}: {text}")
        if status == 409:
            raise AuthorizationPendingError(
                f"OneDeploy to {scm_host} met another deployment (HTTP 409): {text}"
            )
        if status not in (200, 202):
            raise RuntimeError(f"OneDeploy to {scm_host} was refused with HTTP {status}: {text}")
        # Flex answers 202 with the deployment id as a JSON string (azd reads it so); other hosts
        # give a Location header.
        try:
            deployment_id = json.loads(body) if body.strip() else None
        except ValueError:
            deployment_id = None
        if isinstance(deployment_id, str) and deployment_id:
            return f"https://{scm_host}/api/deployments/{deployment_id}"
        location = next((v for k, v in headers.items() if k.lower() == "location"), None)
        if location:
            return location if location.startswith("https://") else f"https://{scm_host}{location}"
        return f"https://{scm_host}/api/deployments/latest"

    def _follow(self, scm_host: str, status_url: str) -> str:
        """Poll the deployment until it ends; returns its id or raises with the host's message."""
        deadline = self._clock() + self._timeout
        while True:
            code, _, text = self._send("GET", status_url)
            if code == 200:
                deployment = json.loads(text or b"{}")
                state = deployment.get("status")
                if state == DEPLOY_SUCCESS:
                    return str(deployment.get("id", "latest"))
                if state in DEPLOY_ENDINGS or deployment.get("complete") is True:
                    self._raise_ending(scm_host, deployment)
            elif code not in (202, 404):  # 404: a new deployment is not visible yet
                raise RuntimeError(f"reading the deployment status at {status_url} failed with HTTP {code}")
            if self._clock() > deadline:
                raise RuntimeError(
                    f"the deployment to {scm_host} did not finish within {self._timeout:.0f} s"
                )
            self._pause(5)

    @staticmethod
    def _raise_ending(scm_host: str, deployment: dict[str, Any]) -> None:
        state = deployment.get("status")
        ending = (
            DEPLOY_ENDINGS.get(state, f"ended with status {state}")
            if isinstance(state, int)
            else (f"ended with status {state!r}")
        )
        message = (
            f"the deployment to {scm_host} {ending}: {deployment.get('status_text') or ''} "
            f"{deployment.get('log_url') or ''}".strip()
        )
        if state == 3 and any(word in str(deployment.get("status_text")) for word in _STORAGE_REFUSAL):
            # The app's identity could not yet write to its deployment storage: a fresh role.
            raise AuthorizationPendingError(message)
        raise RuntimeError(message)

    def create(self, props: dict[str, Any]) -> CreateResult:
        deployment = self.deploy(props["scm_host"], (self._load or _planned_package)(props))
        return CreateResult(id_=f"{props['app_id']}/deployments", outs={**props, "deployment_id": deployment})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_on(olds, news, watched=("app_id", "scm_host", "package_sha256"))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        deployment = self.deploy(news["scm_host"], (self._load or _planned_package)(news))
        return UpdateResult(outs={**news, "deployment_id": deployment})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The code goes with the app."""


class OneDeploy(pulumi.dynamic.Resource):
    """The function package deployed to a Flex Consumption app with OneDeploy."""

    deployment_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        app_id: pulumi.Input[str],
        scm_host: pulumi.Input[str],
        package_path: str,
        package_sha256: str,
        python_version: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            OneDeployProvider(),
            name,
            {
                "app_id": app_id,
                "scm_host": scm_host,
                "package_path": package_path,
                "package_sha256": package_sha256,
                "python_version": python_version,
                "deployment_id": None,
            },
            opts,
        )


class PackageBlobProvider(ResourceProvider):
    """Uploads the package zip as a private blob (Elastic Premium / Dedicated run-from-package)."""

    def __init__(
        self, blob_factory: Callable[[str, str, str], Any] | None = None, load: PackageLoader | None = None
    ) -> None:
        self._blob_factory = blob_factory
        self._load = load

    @staticmethod
    def _azure_blob(account_url: str, container: str, name: str) -> Any:
        from azure.storage.blob import BlobClient

        return BlobClient(account_url, container, name, credential=credential())

    def _upload(self, props: dict[str, Any]) -> dict[str, Any]:
        data = (self._load or _planned_package)(props)
        name = f"functions-{props['package_sha256']}.zip"
        blob = (self._blob_factory or self._azure_blob)(props["account_url"], props["container"], name)
        blob.upload_blob(data, overwrite=True)
        return {**props, "url": f"{props['account_url'].rstrip('/')}/{props['container']}/{name}"}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._upload(props)
        return CreateResult(id_=outs["url"], outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_on(olds, news, watched=("package_sha256",), replace_on=("account_url", "container"))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._upload(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Old packages stay until the container goes: an app may still be reading one."""


class PackageBlob(pulumi.dynamic.Resource):
    """The package as a blob named by its hash; `url` is what WEBSITE_RUN_FROM_PACKAGE points at."""

    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        account_url: pulumi.Input[str],
        container: pulumi.Input[str],
        package_path: str,
        package_sha256: str,
        python_version: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            PackageBlobProvider(),
            name,
            {
                "account_url": account_url,
                "container": container,
                "package_path": package_path,
                "package_sha256": package_sha256,
                "python_version": python_version,
                "url": None,
            },
            opts,
        )
