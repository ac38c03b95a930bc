"""`python -m smoke` against the local mode: it passes on a working system, and each failure names the
step and what came back."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from local_support import PUBLISH_KEY, LocalServer

from smoke.__main__ import main as smoke_main


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    yield local
    local.stop()


def smoke(*argv: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = smoke_main(list(argv), out=out)
    return code, out.getvalue().splitlines()


def test_every_step_passes_against_the_local_mode(server: LocalServer) -> None:
    code, lines = smoke("--url", server.url, "--key", PUBLISH_KEY, "--wait", "15")
    assert code == 0, lines
    assert [line.split()[:2] for line in lines] == [
        ["ok", step] for step in ("site", "config", "cors", "negotiate", "signalr", "publish", "history")
    ]
    assert all(line.split()[3] == "ms" for line in lines)
    assert "CSP present" in lines[0] and f"API {server.url}/api" in lines[1]
    # What the signalr step waited for, and for how long (the first deployment's slow part).
    assert "1 online after" in lines[4] and "waited for a connection event to go round SignalR's" in lines[4]
    # The published message's lag, createdAt to this client, read back (the local mode polls as dev).
    lag = int(lines[5].split(" ms after its createdAt")[0].rsplit(" ", 1)[1])
    assert 0 <= lag < 15_000
    status, page = server.request("GET", "/api/messages?after=0&take=100")
    assert status == 200 and any(m["text"].startswith("smoke ") for m in page["messages"])


def test_without_a_key_nothing_is_published(server: LocalServer) -> None:
    code, lines = smoke("--url", server.url + "/", "--wait", "15")
    assert code == 0
    assert "skipped: no --key given" in lines[5] and "skipped: nothing was published" in lines[6]


def test_a_refused_key_fails_the_publish_step_with_the_answer(server: LocalServer) -> None:
    code, lines = smoke("--url", server.url, "--key", "not-the-key", "--wait", "15")
    assert code == 1
    assert lines[-1].startswith("FAIL publish") and "HTTP 401" in lines[-1]


class ElsewhereSite:
    """The site served from another origin than the one the API's CORS lists."""

    def __init__(self, api: Any) -> None:
        page = b'<!doctype html><meta http-equiv="Content-Security-Policy" content="default-src \'self\'">'
        config = json.dumps({"apiBaseUrl": api, "hub": "broadcast"}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = config if self.path.endswith("config.json") else page
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_site_origin_the_api_does_not_allow_fails_the_cors_step(server: LocalServer) -> None:
    elsewhere = ElsewhereSite(f"{server.url}/api")
    try:
        code, lines = smoke("--url", elsewhere.url, "--wait", "5")
    finally:
        elsewhere.server.shutdown()
    assert code == 1 and lines[-1].startswith("FAIL cors")
    assert "HTTP 403" in lines[-1] and "does not list the site's origin" in lines[-1]


def test_an_unreachable_site_fails_the_first_step() -> None:
    code, lines = smoke("--url", "http://127.0.0.1:9/", "--wait", "1")
    assert (
        code == 1
        and lines == [lines[0]]
        and lines[0].startswith("FAIL site")
        and "did not answer" in lines[0]
    )


def test_bad_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        smoke_main(["--url", "stbcast.z6.web.core.windows.net"])
    assert exited.value.code == 2 and "give the site's URL" in capsys.readouterr().err


@pytest.mark.parametrize("api", [5, ["http://x"], "ftp://api.example/", "http://[::1"])
def test_a_config_json_whose_api_is_not_a_url_fails_its_step_in_one_line(api: Any) -> None:
    """Issue 21: `apiBaseUrl: 5` ended in a traceback from a later step."""
    site = ElsewhereSite(api)
    try:
        code, lines = smoke("--url", site.url, "--wait", "1")
    finally:
        site.server.shutdown()
    assert code == 1 and len(lines) == 2 and lines[-1].startswith("FAIL config")
    assert "apiBaseUrl must be the API's http(s) URL" in lines[-1] or "not a usable URL" in lines[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "http://[::1"], "Invalid IPv6 URL"),
        (["--url", "http://site.example:99999/"], "Port out of range"),
        (["--url", "https:///path"], "no host name"),
        (["--url", "http://site.example/", "--wait", "nan"], "--wait nan: give a positive, finite number"),
        (["--url", "http://site.example/", "--wait", "inf"], "--wait inf: give a positive, finite number"),
        (["--url", "http://site.example/", "--wait", "-1"], "--wait -1.0: give a positive, finite number"),
    ],
)
def test_bad_urls_and_waits_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        smoke_main(argv)
    error = capsys.readouterr().err.splitlines()
    assert exited.value.code == 2 and message in error[-1] and len(error) == 2  # usage, then the error
