"""Run the local mode in a background thread, and Python SignalR clients against it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pysignalr.client import SignalRClient

from local.server import LocalMode, start

T = TypeVar("T")
PUBLISH_KEY = "test-publish-key"


class LocalServer:
    """The local mode on a free loopback port, in its own thread and event loop."""

    def __init__(self, db: str = ":memory:", message_retention_days: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.mode: LocalMode = self.run(
            start("127.0.0.1", 0, PUBLISH_KEY, db, message_retention_days=message_retention_days)
        )
        self.url = self.mode.url

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)  # type: ignore[arg-type]

    def call(self, function: Callable[[], T]) -> T:
        """Run a plain callable on the server's loop (hub and host state live there)."""

        async def wrapper() -> T:
            return function()

        return self.run(wrapper())

    def stop(self) -> None:
        """Stop the server and its loop."""
        self.run(self.mode.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """One HTTP call; returns (status, parsed JSON or text)."""
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def put(
        self, message_key: str, text: str, author: str | None = None, key: str = PUBLISH_KEY
    ) -> tuple[int, Any]:
        """PUT /api/messages/{message_key}: publish under a key of the publisher's choosing."""
        body = json.dumps({"text": text, "author": author}).encode()
        return self.request(
            "PUT",
            f"/api/messages/{message_key}",
            body,
            {"Content-Type": "application/json", "x-functions-key": key},
        )

    def publish(self, text: str, author: str | None = None, key: str = PUBLISH_KEY) -> tuple[int, Any]:
        """POST /api/messages as a publisher would."""
        body = json.dumps({"text": text, "author": author}).encode()
        return self.request(
            "POST", "/api/messages", body, {"Content-Type": "application/json", "x-functions-key": key}
        )


class Listener:
    """A pysignalr client that negotiates through the API (Azure's redirect) and records broadcasts."""

    def __init__(self, api_url: str) -> None:
        self.client = SignalRClient(api_url)
        self.messages: list[dict[str, Any]] = []
        self.presence: list[int] = []
        self._changed = asyncio.Condition()
        self._opened = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.client.on_open(self._on_open)
        self.client.on("newMessage", self._on_message)
        self.client.on("presence", self._on_presence)

    async def _on_open(self) -> None:
        self._opened.set()

    async def _on_message(self, arguments: list[Any]) -> None:
        async with self._changed:
            self.messages.extend(arguments)
            self._changed.notify_all()

    async def _on_presence(self, arguments: list[Any]) -> None:
        async with self._changed:
            self.presence.append(arguments[0]["online"])
            self._changed.notify_all()

    async def __aenter__(self) -> Listener:
        self._task = asyncio.create_task(self.client.run())
        await asyncio.wait_for(self._opened.wait(), timeout=10)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def wait_for(self, predicate: Callable[[Listener], bool], timeout: float = 10) -> None:
        """Wait until `predicate(self)` holds (woken by each broadcast, no polling)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)


async def raw_request(url: str, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request written byte for byte (headers aiohttp's client would not send)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        head + b"\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    header, _, payload = answer.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), fields, payload
