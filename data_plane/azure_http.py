"""The HTTP calls the dynamic providers make to Azure, with the deploying identity's Entra token.

Pulumi pickles each dynamic provider into the stack's state and runs it in its own process, started
in the project's directory, which imports this module from there. Azure SDK imports happen inside
the functions, so only a provider that runs pays for them.
"""

from __future__ import annotations

from collections.abc import Callable

ARM = "https://management.azure.com"
ARM_SCOPE = f"{ARM}/.default"
SQL_SCOPE = "https://database.windows.net/.default"

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


def entra_token(scope: str = ARM_SCOPE) -> str:
    """A token for `scope` from the identity running `pulumi up` (CLI login, OIDC, managed identity)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token(scope).token
