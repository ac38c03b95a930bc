"""The smoke test's steps: plain HTTP with urllib, and a SignalR client (pysignalr) for the hub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

HTTP_TIMEOUT = 30


class StepFailedError(Exception):
    """A step found the deployment not working; the message says what came back."""


@dataclass
class Http:
    """An HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        """A header's value ('' when absent), case-insensitively."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")

    def json(self) -> Any:
        """The body as JSON, or StepFailedError saying what it was."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise StepFailedError(f"expected JSON, got HTTP {self.status}: {self.body[:200]!r}") from None


def request(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Http:
    """One HTTP request; an error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=body, method=method, headers=headers or {}), timeout=HTTP_TIMEOUT
        ) as response:
            return Http(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Http(error.code, dict(error.headers), error.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise StepFailedError(f"{method} {url} did not answer: {error}") from None
    except ValueError as error:  # a URL urllib cannot use, e.g. one built from a bad config.json
        raise StepFailedError(f"{method} {url!r} is not a usable URL: {error}") from None


@dataclass
class Context:
    """What the steps learn and share."""

    site_url: str
    key: str | None
    wait_seconds: float
    api: str = ""
    hub: str = ""
    origin: str = ""
    listener: Listener | None = None
    published: dict[str, Any] = field(default_factory=dict)


def site(context: Context) -> str:
    """The site answers 200 with its Content-Security-Policy."""
    answer = request("GET", context.site_url)
    if answer.status != 200:
        raise StepFailedError(f"GET {context.site_url} answered HTTP {answer.status}")
    page = answer.body.decode("utf-8", "replace")
    if 'http-equiv="Content-Security-Policy"' not in page:
        raise StepFailedError("the page has no Content-Security-Policy meta tag")
    parts = urllib.parse.urlsplit(context.site_url)
    context.origin = f"{parts.scheme}://{parts.netloc}"
    return f"HTTP 200, {len(answer.body)} bytes, CSP present"


def url_problem(url: str) -> str | None:
    """What is wrong with a site URL (an http(s) scheme and a host are needed), or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (reading it checks the port)
    except ValueError as error:
        return str(error)
    if parts.scheme not in ("https", "http"):
        return "not an http(s) URL"
    if not parts.hostname:
        return "no host name"
    return None


def config(context: Context) -> str:
    """config.json names the API and the hub."""
    url = urllib.parse.urljoin(context.site_url, "config.json")
    answer = request("GET", url)
    document = answer.json()
    if answer.status != 200 or not isinstance(document, dict) or not document.get("apiBaseUrl"):
        raise StepFailedError(f"GET {url} answered HTTP {answer.status}: {answer.body[:200]!r}")
    api = document["apiBaseUrl"]
    if not isinstance(api, str) or url_problem(api) is not None:
        raise StepFailedError(f"{url}: apiBaseUrl must be the API's http(s) URL, got {api!r}")
    context.api, context.hub = api.rstrip("/"), str(document.get("hub", ""))
    return f"API {context.api}, hub {context.hub}"


def cors(context: Context) -> str:
    """A browser on the site may publish (PUT, as the site does) to the API: the preflight it sends
    first is allowed."""
    answer = request(
        "OPTIONS",
        f"{context.api}/messages/{uuid.uuid4()}",
        headers={
            "Origin": context.origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,x-functions-key",
        },
    )
    allowed = answer.header("Access-Control-Allow-Origin")
    if answer.status not in (200, 204) or allowed not in (context.origin, "*"):
        raise StepFailedError(
            f"preflight from {context.origin} answered HTTP {answer.status} with "
            f"Access-Control-Allow-Origin {allowed!r}: the app's CORS does not list the site's origin"
        )
    return f"HTTP {answer.status}, origin allowed"


def negotiate(context: Context) -> str:
    """The API hands out a SignalR endpoint and an access token."""
    answer = request("POST", f"{context.api}/negotiate", b"", {"Origin": context.origin})
    document = answer.json()
    if answer.status != 200 or not isinstance(document, dict) or not document.get("accessToken"):
        raise StepFailedError(
            f"POST {context.api}/negotiate answered HTTP {answer.status}: {answer.body[:200]!r}"
        )
    return f"SignalR at {urllib.parse.urlsplit(document.get('url', '')).netloc}"


class Listener:
    """A SignalR client that records broadcasts and wakes waiters on each."""

    def __init__(self, api: str) -> None:
        from pysignalr.client import SignalRClient

        self.client = SignalRClient(api, retry_count=1)
        self.messages: list[dict[str, Any]] = []
        self.arrived: dict[str, float] = {}
        """Wall-clock time (epoch seconds) each message key arrived at this client."""
        self.presence: list[int] = []
        self.opened = asyncio.Event()
        self.changed = asyncio.Event()
        self.client.on_open(self._open)
        self.client.on("newMessage", self._message)
        self.client.on("presence", self._presence)
        self.task: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        self.opened.set()

    async def _message(self, arguments: list[Any]) -> None:
        now = time.time()
        self.messages.extend(arguments)
        self.arrived.update({str(m.get("key")): now for m in arguments if isinstance(m, dict)})
        self.changed.set()

    async def _presence(self, arguments: list[Any]) -> None:
        self.presence.append(int(arguments[0]["online"]))
        self.changed.set()

    async def until(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Wait (woken by each broadcast) until `condition()` holds, or the time is up."""
        deadline = time.monotonic() + seconds
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def close(self) -> None:
        """Stop the client."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


PRESENCE_PATH = "SignalR's upstream, its Key Vault reference, the app, SQL and the SQL trigger"
"""What a client's `presence` proves went round, in order."""


async def connect(context: Context) -> str:
    """A client connects to SignalR and hears presence (a connection event went round the system);
    the answer says what it waited for, and how long each wait took."""
    listener = Listener(context.api)
    context.listener = listener
    started = time.monotonic()
    listener.task = asyncio.create_task(listener.client.run())
    try:
        await asyncio.wait_for(listener.opened.wait(), context.wait_seconds)
    except TimeoutError:
        raise StepFailedError(f"no SignalR connection within {context.wait_seconds:.0f} s") from None
    opened = time.monotonic()
    if not await listener.until(lambda: bool(listener.presence), context.wait_seconds):
        raise StepFailedError(
            f"connected, but no presence within {context.wait_seconds:.0f} s: connection events do not reach "
            f"the app ({PRESENCE_PATH}). SignalR reads the upstream's Key Vault reference when it is created "
            "and then every 30 minutes: one read before its role applied fails until the next "
            "(docs/day-two.md, first deployment)"
        )
    heard = time.monotonic()
    return (
        f"connected after {opened - started:.1f} s, {listener.presence[-1]} online after "
        f"{heard - opened:.1f} s more: waited for a connection event to go round {PRESENCE_PATH}"
    )


async def publish(context: Context) -> str:
    """A uniquely marked message, published under its own key as the site does, is accepted and
    reaches the client over SignalR; sent again, it is a replay that stores nothing new."""
    if not context.key:
        return "skipped: no --key given (the function key of PUT /api/messages/<key>)"
    assert context.listener is not None
    key = str(uuid.uuid4())
    url = f"{context.api}/messages/{key}"
    body = json.dumps({"text": f"smoke {key}", "author": "smoke"}).encode()
    headers = {"Content-Type": "application/json", "x-functions-key": context.key}
    answer = await asyncio.to_thread(request, "PUT", url, body, headers)
    if answer.status != 202:
        raise StepFailedError(f"PUT {url} answered HTTP {answer.status}: {answer.body[:200]!r}")
    listener = context.listener
    if not await listener.until(
        lambda: any(m.get("key") == key for m in listener.messages), context.wait_seconds
    ):
        raise StepFailedError(f"accepted as {key}, but not broadcast within {context.wait_seconds:.0f} s")
    context.published = next(m for m in listener.messages if m.get("key") == key)
    again = await asyncio.to_thread(request, "PUT", url, body, headers)
    if again.status != 200 or again.json().get("replayed") is not True:
        raise StepFailedError(
            f"the same PUT again answered HTTP {again.status}: {again.body[:200]!r}; expected 200, a replay"
        )
    lag = received_lag_ms(context.published, listener.arrived[key])
    return (
        f"message {context.published['id']} broadcast, here {lag} ms after its createdAt (the function "
        "logs its own lag as `broadcast message <key> as <id> lag <ms> ms`); its retry a replay"
    )


def received_lag_ms(message: dict[str, Any], arrived: float) -> int:
    """Milliseconds from the message's `createdAt` to its arrival at this client: the service level
    seen from outside, including the trip to this machine and the clocks' difference."""
    created = datetime.fromisoformat(str(message["createdAt"]).replace("Z", "+00:00")).timestamp()
    return round((arrived - created) * 1000)


def history(context: Context) -> str:
    """The published message is in history (a reconnecting client would get it)."""
    if not context.published:
        return "skipped: nothing was published"
    after = int(context.published["id"]) - 1
    url = f"{context.api}/messages?after={after}&take=1"
    answer = request("GET", url)
    messages = answer.json().get("messages") if answer.status == 200 else None
    if not messages or messages[0].get("key") != context.published["key"]:
        raise StepFailedError(f"GET {url} answered HTTP {answer.status}: {answer.body[:200]!r}")
    return f"message {context.published['id']} in history"


Step = Callable[[Context], "str | Awaitable[str]"]
STEPS: list[tuple[str, Step]] = [
    ("site", site),
    ("config", config),
    ("cors", cors),
    ("negotiate", negotiate),
    ("signalr", connect),
    ("publish", publish),
    ("history", history),
]
