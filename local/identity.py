"""The local stand-in for the managed identity endpoint of App Service and Azure Functions.

On Azure the platform gives the app `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`; code asks
`GET $IDENTITY_ENDPOINT?resource=<audience>&api-version=2019-08-01[&client_id=<id>]` with the
header `X-IDENTITY-HEADER: $IDENTITY_HEADER` and gets `{access_token, expires_on, resource,
token_type, client_id}` (Microsoft Learn, "Managed identities for App Service and Azure
Functions", REST endpoint reference). Here the app has one user-assigned identity, the tokens are
for the local SignalR endpoint only, and what the platform refuses is refused: a missing or wrong
header, another api-version, no resource, a client id the app does not have, an audience this
local mode cannot issue for.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from local.hub import ENTRA_AUDIENCE, TOKEN_LIFETIME_SECONDS, Hub

API_VERSION = "2019-08-01"
PATH = "/msi/token"


@dataclass
class ManagedIdentity:
    """The app's user-assigned identity and the endpoint that issues its tokens."""

    hub: Hub
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    """`IDENTITY_HEADER`: known to the app's process only."""

    def routes(self) -> list[web.RouteDef]:
        """The token endpoint (outside /api/: it is the platform's, not the app's)."""
        return [web.get(PATH, self.token)]

    async def token(self, request: web.Request) -> web.Response:
        """One access token, or the platform's refusal."""
        given = request.headers.get("X-IDENTITY-HEADER", "").encode("utf-8", "surrogateescape")
        # Constant time: how long the check takes must not tell how much of the secret was right.
        if not hmac.compare_digest(given, self.secret.encode()):
            return web.json_response(
                {"error": "the X-IDENTITY-HEADER header is missing or wrong"}, status=401
            )
        query = request.query
        if query.get("api-version") != API_VERSION:
            return web.json_response({"error": f"api-version must be {API_VERSION}"}, status=400)
        resource = query.get("resource", "")
        if not resource:
            return web.json_response({"error": "resource is required"}, status=400)
        if query.get("client_id", self.client_id) != self.client_id:
            return web.json_response({"error": "the app has no identity with that client_id"}, status=400)
        if resource.rstrip("/") != ENTRA_AUDIENCE:
            return web.json_response(
                {"error": f"the local mode issues tokens for {ENTRA_AUDIENCE} only, not {resource}"},
                status=400,
            )
        return web.json_response(
            {
                "access_token": self.hub.issue_entra_token(self.client_id),
                "expires_on": str(int(time.time()) + TOKEN_LIFETIME_SECONDS),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": self.client_id,
            }
        )
