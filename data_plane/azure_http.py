"""The HTTP calls the dynamic providers make to Azure, and the Entra credential they make them with.

Pulumi pickles each dynamic provider into the stack's state and runs it in its own process, started
in the project's directory, which imports this module from there. Azure SDK imports happen inside
the functions, so only a provider that runs pays for them.

In GitHub Actions the credential is a client assertion whose callback asks GitHub for a fresh OIDC
token every time Entra needs one. The assertion `azure/login` hands the Azure CLI expires within
minutes, and the first token for SQL or Storage is asked for long after (once the server exists):
the CLI then fails with AADSTS700024 (Azure/login#372, Azure/azure-cli#28708). Elsewhere (a
workstation, a managed identity) it is DefaultAzureCredential.
"""

from __future__ import annotations

import functools
import json
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ARM = "https://management.azure.com"
ARM_SCOPE = f"{ARM}/.default"
SQL_SCOPE = "https://database.windows.net/.default"
GITHUB_AUDIENCE = "api://AzureADTokenExchange"
"""The audience Entra expects in a GitHub OIDC token used as a federated credential."""

Response = tuple[int, dict[str, str], bytes]
Transport = Callable[[str, str, bytes | None, dict[str, str]], Response]
"""(method, url, body, headers) -> (status, response headers, body)."""


def urllib_transport(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Response:
    """One HTTP request; an HTTP error status is returned, not raised."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@dataclass(frozen=True)
class GitHubOidcAssertion:
    """Fetches a fresh GitHub Actions OIDC token for Entra's token exchange, each time it is called.

    GitHub's rules (actions/toolkit `getIDToken`): GET `ACTIONS_ID_TOKEN_REQUEST_URL` (it already
    has a query) with `&audience=<url-encoded audience>` and `Authorization: bearer
    ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the answer is `{"value": "<jwt>"}`.
    """

    request_url: str
    request_token: str
    audience: str = GITHUB_AUDIENCE
    transport: Transport = urllib_transport

    def __call__(self) -> str:
        separator = "&" if urllib.parse.urlsplit(self.request_url).query else "?"
        url = f"{self.request_url}{separator}audience={urllib.parse.quote(self.audience, safe='')}"
        status, _, body = self.transport("GET", url, None, {"Authorization": f"bearer {self.request_token}"})
        if status != 200:
            raise RuntimeError(
                f"GitHub refused an OIDC token (HTTP {status}): {body.decode('utf-8', 'replace')[:300]}; "
                "the job needs `permissions: id-token: write`"
            )
        try:
            value = json.loads(body)["value"]
        except (ValueError, KeyError, TypeError):
            raise RuntimeError("GitHub's OIDC token answer has no `value`") from None
        if not isinstance(value, str) or not value:
            raise RuntimeError("GitHub's OIDC token answer has an empty `value`")
        return value


def _first(environment: Mapping[str, str], *names: str) -> str | None:
    return next((environment[name] for name in names if environment.get(name)), None)


def github_oidc_settings(environment: Mapping[str, str]) -> tuple[str, str, GitHubOidcAssertion] | None:
    """(tenant id, client id, assertion) when running in GitHub Actions with OIDC, else None.

    The ids come from the variables the workflows set for Pulumi (ARM_*) or azure-identity (AZURE_*)."""
    url = environment.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    token = environment.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    tenant = _first(environment, "AZURE_TENANT_ID", "ARM_TENANT_ID")
    client = _first(environment, "AZURE_CLIENT_ID", "ARM_CLIENT_ID")
    if not (url and token and tenant and client):
        return None
    return tenant, client, GitHubOidcAssertion(url, token)


def build_credential(environment: Mapping[str, str]) -> Any:
    """A client-assertion credential fed by GitHub in GitHub Actions, else DefaultAzureCredential."""
    from azure.identity import ClientAssertionCredential, DefaultAzureCredential

    oidc = github_oidc_settings(environment)
    if oidc is None:
        return DefaultAzureCredential()
    tenant_id, client_id, assertion = oidc
    return ClientAssertionCredential(tenant_id, client_id, assertion)


@functools.cache
def credential() -> Any:
    """The process's Entra credential: one, so its token cache serves every call."""
    return build_credential(os.environ)


def entra_token(scope: str = ARM_SCOPE) -> str:
    """A token for `scope` from the identity running `pulumi up` (CLI login, OIDC, managed identity)."""
    return str(credential().get_token(scope).token)
