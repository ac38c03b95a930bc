"""The Entra credential of the deploy-time providers: in GitHub Actions a client assertion that asks
GitHub for a fresh OIDC token each time, so tokens asked for late in a long `pulumi up` (SQL,
Storage) do not fail with AADSTS700024 (Azure/login#372, Azure/azure-cli#28708)."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from data_plane import azure_http
from data_plane.azure_http import GITHUB_AUDIENCE, GitHubOidcAssertion, build_credential, github_oidc_settings

REQUEST_TOKEN = "runtime-request-token"


class FakeGitHubTokenService:
    """GitHub Actions' OIDC token endpoint as documented ("About security hardening with OpenID
    Connect": `curl -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN"
    "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange"`, answer `{"value": <jwt>}`).
    It refuses a missing or wrong bearer token (401) and issues a new token, valid for five minutes
    from now, on every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        serial = itertools.count(1)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                service.requests.append({"path": self.path, "query": query})
                authorization = self.headers.get("Authorization", "")
                scheme, _, token = authorization.partition(" ")
                if scheme.lower() != "bearer" or token != REQUEST_TOKEN:
                    self._answer(401, {"message": "Unauthorized"})
                    return
                now = int(time.time())
                claims = {
                    "aud": query.get("audience", ["https://github.com/owner"])[0],
                    "sub": "repo:owner/repo:environment:dev",
                    "iat": now,
                    "exp": now + 300,
                    "jti": str(next(serial)),
                }
                payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
                self._answer(200, {"value": f"eyJhbGciOiJSUzI1NiJ9.{payload}.signature"})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = (
            f"http://127.0.0.1:{self.server.server_address[1]}/_apis/distributedtask/hubs/Actions/plans/p/"
            "jobs/j/idtoken?api-version=2.0"
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github() -> Iterator[FakeGitHubTokenService]:
    service = FakeGitHubTokenService()
    yield service
    service.close()


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_each_assertion_is_a_fresh_token_for_entras_audience(github: FakeGitHubTokenService) -> None:
    assertion = GitHubOidcAssertion(github.url, REQUEST_TOKEN)
    first, second = assertion(), assertion()
    assert first != second and len(github.requests) == 2
    assert claims(first)["aud"] == claims(second)["aud"] == GITHUB_AUDIENCE
    # The request URL keeps its own query and gains the encoded audience.
    assert github.requests[0]["query"]["api-version"] == ["2.0"]
    assert "audience=api%3A%2F%2FAzureADTokenExchange" in github.requests[0]["path"]


def test_a_refused_request_names_the_missing_permission(github: FakeGitHubTokenService) -> None:
    with pytest.raises(RuntimeError, match=r"HTTP 401.*id-token: write"):
        GitHubOidcAssertion(github.url, "someone-elses-token")()


def environment(url: str) -> dict[str, str]:
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        "ARM_TENANT_ID": "tenant-id",
        "ARM_CLIENT_ID": "client-id",
    }


def test_in_github_actions_the_credential_exchanges_a_fresh_github_token(
    github: FakeGitHubTokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[str, str, Any]] = []

    class Recorder:
        def __init__(self, tenant_id: str, client_id: str, func: Any) -> None:
            built.append((tenant_id, client_id, func))

    import azure.identity

    monkeypatch.setattr(azure.identity, "ClientAssertionCredential", Recorder)
    assert isinstance(build_credential(environment(github.url)), Recorder)
    ((tenant_id, client_id, func),) = built
    assert (tenant_id, client_id) == ("tenant-id", "client-id")
    # azure-identity calls `func` whenever it needs a new Entra token: each call reaches GitHub.
    assert claims(func())["jti"] != claims(func())["jti"]


def test_outside_github_actions_the_default_chain_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.identity

    assert github_oidc_settings({"ARM_CLIENT_ID": "c", "ARM_TENANT_ID": "t"}) is None
    assert isinstance(build_credential({}), azure.identity.DefaultAzureCredential)
    # AZURE_* (azure-identity's names) win over ARM_* (Pulumi's) when both are set.
    both = {**environment("https://x/?a=1"), "AZURE_CLIENT_ID": "azure-client"}
    settings = github_oidc_settings(both)
    assert settings is not None and settings[1] == "azure-client"


def test_the_providers_share_one_credential() -> None:
    azure_http.credential.cache_clear()
    assert azure_http.credential() is azure_http.credential()
    azure_http.credential.cache_clear()
