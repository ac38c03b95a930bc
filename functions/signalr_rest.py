"""Asking Azure SignalR Service which connections still exist, as the app's managed identity.

The presence check needs what no binding offers: the SignalR data-plane REST API's connection
check (`HEAD /api/hubs/{hub}/connections/{connectionId}`, api-version 2022-06-01: 200 when the
connection exists, 404 when it does not). It authenticates the way the bindings' identity-based
connection does: an Entra token for `https://signalr.azure.com` from the platform's managed
identity endpoint, for the user-assigned identity named by `<connection>__clientId`. The app's
identity holds SignalR Service Owner, which includes the REST API. As the service's own SDK does
(Azure/azure-signalr `RestHubLifetimeManager.ConnectionExistsAsync`), a 404 means "no such
connection" only with `x-ms-error-code: Warning.Connection.NotExisted`: a bare 404 (a wrong path
or hub) is not taken for an answer.

Standard library only: it ships inside the function package.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

API_VERSION = "2022-06-01"
RESOURCE = "https://signalr.azure.com"
"""The Entra resource (audience) of the SignalR data-plane APIs (scope `https://signalr.azure.com/.default`)."""
APP_SERVICE_TOKEN_API = "2019-08-01"
"""The App Service / Functions managed identity endpoint's version (`IDENTITY_ENDPOINT`)."""
IMDS_ENDPOINT = "http://169.254.169.254/metadata/identity/oauth2/token"
IMDS_TOKEN_API = "2018-02-01"
TIMEOUT_SECONDS = 10.0
PARALLEL_CHECKS = 16
NOT_EXISTED = "Warning.Connection.NotExisted"
"""The `x-ms-error-code` of a 404 that says the connection does not exist."""

log = logging.getLogger("broadcast.presence")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers (names in lower case) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


Transport = Callable[[str, str, Mapping[str, str]], Answer]
"""(method, url, headers) -> the answer: one HTTP request."""


class PresenceCheckError(Exception):
    """The check cannot run at all (no endpoint, no identity, no token): nothing is changed."""


def http_request(method: str, url: str, headers: Mapping[str, str]) -> Answer:
    """One HTTP request with a timeout; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return Answer(
                response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


@dataclass(frozen=True)
class ManagedIdentity:
    """Tokens from the platform's managed identity endpoint for one user-assigned identity."""

    client_id: str | None
    endpoint: str | None
    """`IDENTITY_ENDPOINT` (App Service and Functions); None means the instance metadata service."""
    secret: str | None
    """`IDENTITY_HEADER`, sent back as `X-IDENTITY-HEADER`: it proves the caller runs in the app."""
    transport: Transport = http_request

    def token(self, resource: str) -> str:
        """An access token for `resource`, or PresenceCheckError saying why not."""
        query = {"resource": resource}
        if self.client_id:
            query["client_id"] = self.client_id
        if self.endpoint:
            if not self.secret:
                raise PresenceCheckError("IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not")
            query["api-version"] = APP_SERVICE_TOKEN_API
            url, headers = self.endpoint, {"X-IDENTITY-HEADER": self.secret}
        else:
            query["api-version"] = IMDS_TOKEN_API
            url, headers = IMDS_ENDPOINT, {"Metadata": "true"}
        separator = "&" if "?" in url else "?"
        try:
            answer = self.transport("GET", f"{url}{separator}{urllib.parse.urlencode(query)}", headers)
        except OSError as error:
            raise PresenceCheckError(f"the managed identity endpoint is unreachable: {error}") from None
        if answer.status != 200:
            raise PresenceCheckError(
                f"the managed identity endpoint answered {answer.status}: {answer.body[:300]!r}"
            )
        try:
            return str(json.loads(answer.body)["access_token"])
        except (ValueError, KeyError, TypeError):
            raise PresenceCheckError("the managed identity endpoint's answer has no access_token") from None


@dataclass(frozen=True)
class ConnectionCheck:
    """Which of a set of connections Azure SignalR Service still holds."""

    service_uri: str
    hub: str
    identity: ManagedIdentity
    transport: Transport = http_request

    @classmethod
    def from_settings(cls, settings: Mapping[str, str], connection: str, hub: str) -> ConnectionCheck:
        """From the app settings of an identity-based SignalR connection (`<connection>__serviceUri`,
        `<connection>__clientId`) and the platform's identity endpoint variables."""
        service_uri = settings.get(f"{connection}__serviceUri")
        if not service_uri:
            raise PresenceCheckError(f"the app setting {connection}__serviceUri is not set")
        identity = ManagedIdentity(
            client_id=settings.get(f"{connection}__clientId"),
            endpoint=settings.get("IDENTITY_ENDPOINT"),
            secret=settings.get("IDENTITY_HEADER"),
        )
        return cls(service_uri.rstrip("/"), hub, identity)

    def _url(self, connection_id: str) -> str:
        quoted = urllib.parse.quote(connection_id, safe="")
        return f"{self.service_uri}/api/hubs/{self.hub}/connections/{quoted}?api-version={API_VERSION}"

    def gone(self, connection_ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """(connections SignalR says do not exist, connections it could not say about).

        Only the service's "no such connection" counts as gone: a throttled, failed or unauthorized
        check, or a 404 without that error code, leaves the row alone.
        """
        ids = list(connection_ids)
        if not ids:
            return [], []
        headers = {"Authorization": f"Bearer {self.identity.token(RESOURCE)}"}

        def check(connection_id: str) -> str:
            try:
                answer = self.transport("HEAD", self._url(connection_id), headers)
            except OSError as error:
                return type(error).__name__
            if answer.status == 404 and answer.headers.get("x-ms-error-code") == NOT_EXISTED:
                return "gone"
            return "open" if answer.status == 200 else str(answer.status)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=min(PARALLEL_CHECKS, len(ids))) as pool:
            statuses = list(pool.map(check, ids))
        gone = [i for i, status in zip(ids, statuses, strict=True) if status == "gone"]
        unknown = [i for i, status in zip(ids, statuses, strict=True) if status not in ("open", "gone")]
        log.info(
            "checked %d connections in %.1f s: %d gone, %d unknown",
            len(ids),
            time.monotonic() - started,
            len(gone),
            len(unknown),
        )
        if unknown:
            seen = sorted({status for status in statuses if status not in ("open", "gone")})
            log.warning(
                "SignalR did not say whether %d connections exist (%s)", len(unknown), ", ".join(seen)
            )
        return gone, unknown
