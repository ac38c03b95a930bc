"""RFC 6455, section 5.1: "a client MUST mask all frames that it sends to the server [...] The server
MUST close the connection upon receiving a frame that is not masked." aiohttp's WebSocket reader
unmasks what is masked and takes the rest as it is (issue 30, item 12), so the local server puts
this check in front of it: it follows the frame boundaries of what a client sends and, at the
first unmasked frame, sends a close frame with 1002 (protocol error) and closes the connection; the
reader gets what came before, then the end of the input."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiohttp import WSCloseCode

# A server's close frame (final, opcode 8, unmasked) with status 1002 and no reason.
PROTOCOL_ERROR_CLOSE = struct.pack("!BBH", 0x88, 2, WSCloseCode.PROTOCOL_ERROR)


class MaskedFramesOnly:
    """Wraps aiohttp's WebSocketReader (what `RequestHandler.set_parser` receives)."""

    def __init__(self, reader: Any, transport: asyncio.BaseTransport | None) -> None:
        self._reader = reader
        self._transport = transport
        self._head = bytearray()
        self._payload_left = 0
        self._refused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)

    def feed_eof(self) -> None:
        """The peer closed: as the reader does."""
        self._reader.feed_eof()

    def feed_data(self, data: bytes | bytearray | memoryview) -> tuple[bool, bytes]:
        """Pass masked frames on; at an unmasked one, a protocol error and the end of the input."""
        if self._refused:
            return True, b""
        data = bytes(data)
        cut = self._first_unmasked(data)
        if cut is None:
            return self._reader.feed_data(data)  # type: ignore[no-any-return]
        if cut:
            self._reader.feed_data(data[:cut])
        self._refused = True
        if isinstance(self._transport, asyncio.Transport) and not self._transport.is_closing():
            self._transport.write(PROTOCOL_ERROR_CLOSE)
            self._transport.close()
        self._reader.feed_eof()
        return True, b""

    def _first_unmasked(self, data: bytes) -> int | None:
        """Where in `data` the header of an unmasked frame starts (None when every frame is masked),
        keeping track of frames that continue in the next chunk."""
        position = 0
        while position < len(data):
            if self._payload_left:
                taken = min(self._payload_left, len(data) - position)
                self._payload_left -= taken
                position += taken
                continue
            start = position - len(self._head)
            while position < len(data) and len(self._head) < _header_length(self._head):
                self._head.append(data[position])
                position += 1
            if len(self._head) < _header_length(self._head):
                return None  # the header goes on in the next chunk
            if not self._head[1] & 0x80:
                return max(start, 0)
            self._payload_left = _payload_length(self._head)
            self._head.clear()
        return None


def _header_length(head: bytearray) -> int:
    if len(head) < 2:
        return 2
    extended = {126: 2, 127: 8}.get(head[1] & 0x7F, 0)
    return 2 + extended + (4 if head[1] & 0x80 else 0)


def _payload_length(head: bytearray) -> int:
    length = head[1] & 0x7F
    if length == 126:
        return int.from_bytes(head[2:4], "big")
    if length == 127:
        return int.from_bytes(head[2:10], "big")
    return length
