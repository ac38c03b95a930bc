"""The presence check: asking SignalR which connections still exist, as the app's identity.

The two services it talks to are doubles on loopback that keep the documented rules, refusals
included:
- the App Service / Functions managed identity endpoint (Microsoft Learn, "Managed identities for
  App Service and Azure Functions", REST endpoint reference): `GET $IDENTITY_ENDPOINT` with
  `api-version=2019-08-01` and `resource` required, `client_id` for a user-assigned identity, and
  the `X-IDENTITY-HEADER` header carrying `$IDENTITY_HEADER` (an SSRF guard: without it, no
  token); the answer is JSON with `access_token`, `expires_on`, `resource`, `token_type`;
- the SignalR data-plane REST API 2022-06-01 (Microsoft Learn, "Azure SignalR service data plane
  REST API reference - v20220601"): `HEAD /api/hubs/{hub}/connections/{connectionId}` answers 200
  when the connection exists and 404 when it does not; an Entra token must have the audience
  `https://signalr.azure.com` (Azure/azure-signalr `AzureActiveDirectoryOptions.DefaultScopes`)
  and its caller a data-plane role, else 401/403.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import azure.functions as func
import pytest
import signalr_rest
import wiring
from azure.functions.timer import TimerRequest
from function_support import FUNCTIONS

CLIENT_ID = "6a1f0c2e-2b7d-4f4e-9a51-3c1d2e4f5a6b"
IDENTITY_SECRET = "d6b0c3d1-7a0e-4a55-9a4c-5b6f1f0e9c11"


@dataclass
class Azure:
    """State behind the two doubles: the identity's roles and the connections SignalR holds."""

    live: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=lambda: {"SignalR Service Owner"})
    token_requests: list[dict[str, str]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    """Connections whose check answers 503 (throttled or failing), neither yes nor no."""


def _handler(azure: Azure) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any] | None = None, error_code: str = "") -> None:
            data = json.dumps(body).encode() if body is not None and self.command != "HEAD" else b""
            self.send_response(status)
            if error_code:
                self.send_header("x-ms-error-code", error_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path != "/msi/token":
                return self._answer(404, {"error": "not found"})
            if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_SECRET:
                return self._answer(401, {"error": "missing or wrong X-IDENTITY-HEADER"})
            if query.get("api-version") != signalr_rest.APP_SERVICE_TOKEN_API or "resource" not in query:
                return self._answer(400, {"error": "api-version 2019-08-01 and resource are required"})
            if query.get("client_id") not in (None, CLIENT_ID):
                return self._answer(400, {"error": "no user-assigned identity with that client_id"})
            azure.token_requests.append(query)
            token = f"aud={query['resource']};sub={query.get('client_id', 'system')}"
            self._answer(
                200,
                {
                    "access_token": token,
                    "expires_on": "1893456000",
                    "resource": query["resource"],
                    "token_type": "Bearer",
                    "client_id": query.get("client_id", ""),
                },
            )

        def do_HEAD(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            prefix = f"/api/hubs/{wiring.HUB_NAME}/connections/"
            if not url.path.startswith(prefix):
                return self._answer(404)
            if query.get("api-version") != signalr_rest.API_VERSION:
                return self._answer(400)
            if self.headers.get("Authorization") != f"Bearer aud={signalr_rest.RESOURCE};sub={CLIENT_ID}":
                return self._answer(401)
            if not azure.roles & {"SignalR Service Owner", "SignalR REST API Owner"}:
                return self._answer(403)
            connection_id = urllib.parse.unquote(url.path[len(prefix) :])
            azure.checks.append(connection_id)
            if connection_id in azure.failing:
                return self._answer(503)
            if connection_id in azure.live:
                return self._answer(200)
            self._answer(404, error_code="Warning.Connection.NotExisted")

    return Handler


@pytest.fixture
def azure() -> Iterator[tuple[Azure, str]]:
    state = Azure()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def app_settings(base: str, **overrides: str) -> dict[str, str]:
    """What the app sees: the component's SignalR settings and the platform's identity variables."""
    settings = {
        f"{wiring.SIGNALR_CONNECTION_SETTING}__serviceUri": base,
        f"{wiring.SIGNALR_CONNECTION_SETTING}__credential": "managedidentity",
        f"{wiring.SIGNALR_CONNECTION_SETTING}__clientId": CLIENT_ID,
        "IDENTITY_ENDPOINT": f"{base}/msi/token",
        "IDENTITY_HEADER": IDENTITY_SECRET,
    }
    settings.update(overrides)
    return {name: value for name, value in settings.items() if value}


def check(settings: dict[str, str]) -> signalr_rest.ConnectionCheck:
    return signalr_rest.ConnectionCheck.from_settings(
        settings, wiring.SIGNALR_CONNECTION_SETTING, wiring.HUB_NAME
    )


def test_gone_connections_are_the_ones_signalr_answers_404_for(azure: tuple[Azure, str]) -> None:
    state, base = azure
    state.live = {"alive-1", "alive-2"}
    gone, unknown = check(app_settings(base)).gone(["alive-1", "dead-1", "alive-2", "dead/2"])
    assert gone == ["dead-1", "dead/2"] and unknown == []
    # Every id was asked about, a reserved character escaped into one path segment.
    assert sorted(state.checks) == ["alive-1", "alive-2", "dead-1", "dead/2"]
    # One token per run, for SignalR's audience, as the app's user-assigned identity.
    assert state.token_requests == [
        {"resource": signalr_rest.RESOURCE, "client_id": CLIENT_ID, "api-version": "2019-08-01"}
    ]


def test_a_check_signalr_does_not_answer_leaves_the_row_alone(azure: tuple[Azure, str]) -> None:
    state, base = azure
    state.failing = {"maybe"}
    gone, unknown = check(app_settings(base)).gone(["maybe", "dead"])
    assert gone == ["dead"] and unknown == ["maybe"]


def test_a_404_without_the_services_error_code_is_not_an_answer(azure: tuple[Azure, str]) -> None:
    """A serviceUri with a wrong path gets the server's plain 404 for everything: no row may be
    closed on that (the service's SDK needs `x-ms-error-code: Warning.Connection.NotExisted`)."""
    state, base = azure
    settings = app_settings(base, **{f"{wiring.SIGNALR_CONNECTION_SETTING}__serviceUri": base + "/wrong"})
    settings["IDENTITY_ENDPOINT"] = f"{base}/msi/token"
    gone, unknown = check(settings).gone(["a", "b"])
    assert gone == [] and unknown == ["a", "b"]
    assert state.checks == []  # the service itself never answered


def test_without_a_data_plane_role_nothing_counts_as_gone(azure: tuple[Azure, str]) -> None:
    """403 (the role assignment not yet effective) is not 404: no open row is closed."""
    state, base = azure
    state.roles = {"Reader"}
    gone, unknown = check(app_settings(base)).gone(["a", "b"])
    assert gone == [] and unknown == ["a", "b"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"IDENTITY_HEADER": "forged"}, "answered 401"),
        ({"IDENTITY_HEADER": ""}, "IDENTITY_HEADER is not"),
        ({f"{wiring.SIGNALR_CONNECTION_SETTING}__clientId": "00000000-0000-0000-0000-000000000000"}, "400"),
        ({f"{wiring.SIGNALR_CONNECTION_SETTING}__serviceUri": ""}, "__serviceUri is not set"),
    ],
)
def test_no_token_means_no_check(azure: tuple[Azure, str], overrides: dict[str, str], message: str) -> None:
    state, base = azure
    with pytest.raises(signalr_rest.PresenceCheckError, match=message):
        check(app_settings(base, **overrides)).gone(["a"])
    assert state.checks == []


def test_an_unreachable_identity_endpoint_is_a_clear_error() -> None:
    settings = app_settings("http://127.0.0.1:9", IDENTITY_ENDPOINT="http://127.0.0.1:9/msi/token")
    with pytest.raises(signalr_rest.PresenceCheckError, match="unreachable"):
        check(settings).gone(["a"])


class Out:
    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value


def run_check_presence(open_ids: list[str]) -> Out:
    closed = Out()
    function = FUNCTIONS["check_presence"]
    rows = func.SqlRowList([func.SqlRow({"connectionId": i}) for i in open_ids])
    timer = TimerRequest(past_due=False)
    function.get_user_function()(timer, rows, closed)
    return closed


@pytest.fixture
def deployed(azure: tuple[Azure, str], monkeypatch: pytest.MonkeyPatch) -> Azure:
    """The doubles, and the app's environment pointing at them (app settings are environment
    variables for the Python worker)."""
    state, base = azure
    for name, value in app_settings(base).items():
        monkeypatch.setenv(name, value)
    return state


def test_the_function_closes_exactly_the_gone_rows(deployed: Azure) -> None:
    state = deployed
    state.live = {"alive"}
    closed = run_check_presence(["alive", "dead-1", "dead-2"])
    rows = [dict(row) for row in closed.value]
    assert [row["connectionId"] for row in rows] == ["dead-1", "dead-2"]
    assert all(set(row) == {"connectionId", "disconnectedAt"} for row in rows)
    assert all(row["disconnectedAt"].endswith("Z") for row in rows)


def test_the_function_writes_nothing_when_all_are_alive_or_none_is_open(deployed: Azure) -> None:
    state = deployed
    state.live = {"a"}
    assert run_check_presence(["a"]).value is None
    assert run_check_presence([]).value is None
    assert state.token_requests == [state.token_requests[0]]  # no open rows, no token asked for


def test_the_timers_schedules() -> None:
    """Every minute for presence (the healing bound), hourly for housekeeping; both NCRONTAB with
    seconds, which Flex Consumption requires (TimeSpan schedules are App Service plan only)."""
    documents = {name: json.loads(f.get_function_json()) for name, f in FUNCTIONS.items()}
    timers = {
        name: binding
        for name, document in documents.items()
        for binding in document["bindings"]
        if binding["type"] == "timerTrigger"
    }
    assert {name: binding["schedule"] for name, binding in timers.items()} == {
        "check_presence": "0 * * * * *",
        "purge_expired": "0 17 * * * *",
    }
    assert not any(binding.get("runOnStartup") for binding in timers.values())
