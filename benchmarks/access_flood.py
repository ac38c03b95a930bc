"""Whether a visitor still gets in while one client floods the local mode (issue 30, items 2 and 3).

`--attack websockets`: from 127.0.0.2, one access token (from one anonymous negotiate), negotiate
skipped, as many WebSockets as the hub takes, up to `--sockets`; they stay open. `--attack
negotiate`: `--negotiates` hub negotiations from five loopback addresses (127.0.0.2-6), as fast as
one client sends them. Then a visitor from 127.0.0.1 does what the site does (the API's negotiate,
the hub's negotiate, the WebSocket and the handshake) and the script prints whether it got in, the
server's resident memory before and after the flood, and how many of the flood's requests were
taken. Loopback only; every loop is bounded and ends by itself.

    python benchmarks/access_flood.py --attack websockets
    python benchmarks/access_flood.py --attack negotiate --root /tmp/before   # another checkout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages
from benchmarks.broadcast import launch_local, raise_file_limit, stop  # noqa: E402
from benchmarks.hub_memory import rss_mb  # noqa: E402

HUB = "broadcast"
SEPARATOR = "\x1e"


async def websocket_flood(url: str, sockets: int) -> tuple[int, list[aiohttp.ClientWebSocketResponse], list]:
    """Open up to `sockets` WebSockets on one token from 127.0.0.2; (taken, the sockets, sessions)."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), limit=0)
    session = aiohttp.ClientSession(connector=connector)
    async with session.post(f"{url}/api/negotiate") as response:
        info = await response.json()
    target = info["url"].replace("http", "ws", 1) + f"&access_token={info['accessToken']}"
    opened: list[aiohttp.ClientWebSocketResponse] = []

    async def open_one() -> bool:
        try:
            socket = await session.ws_connect(target, timeout=aiohttp.ClientWSTimeout(ws_close=2))
        except (aiohttp.ClientError, TimeoutError):
            return False
        await socket.send_str(json.dumps({"protocol": "json", "version": 1}) + SEPARATOR)
        opened.append(socket)
        return True

    for first in range(0, sockets, 100):
        taken = await asyncio.gather(*(open_one() for _ in range(min(100, sockets - first))))
        if not any(taken):
            break  # the hub says no to every one: it will go on saying so
        # A ping keeps each open one alive (the hub drops a client silent for 30 s).
        ping = json.dumps({"type": 6}) + SEPARATOR
        await asyncio.gather(*(socket.send_str(ping) for socket in opened), return_exceptions=True)
    return len(opened), opened, [session]


async def negotiate_flood(url: str, negotiates: int) -> tuple[int, list, list]:
    """`negotiates` hub negotiations from five addresses; (how many got 200, [], sessions)."""
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.0.{2 + n}", 0)))
        for n in range(5)
    ]
    async with sessions[0].post(f"{url}/api/negotiate") as response:
        token = (await response.json())["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    taken = 0

    async def one(session: aiohttp.ClientSession, count: int) -> None:
        nonlocal taken
        for _ in range(count):
            async with session.post(
                f"{url}/client/negotiate?hub={HUB}&negotiateVersion=1", headers=headers
            ) as r:
                taken += r.status == 200

    await asyncio.gather(*(one(session, negotiates // 5) for session in sessions))
    return taken, [], sessions


async def visitor(url: str) -> str:
    """What the site does, from 127.0.0.1; 'served' or where it was refused."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.1", 0))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.post(f"{url}/api/negotiate") as response:
            if response.status != 200:
                return f"api negotiate {response.status}"
            info = await response.json()
        headers = {"Authorization": f"Bearer {info['accessToken']}"}
        async with session.post(f"{url}/client/negotiate?hub={HUB}&negotiateVersion=1", headers=headers) as r:
            if r.status != 200:
                return f"hub negotiate {r.status}"
            token = (await r.json())["connectionToken"]
        try:
            socket = await session.ws_connect(
                info["url"].replace("http", "ws", 1) + f"&id={token}", headers=headers
            )
        except aiohttp.WSServerHandshakeError as error:
            return f"websocket {error.status}"
        await socket.send_str(json.dumps({"protocol": "json", "version": 1}) + SEPARATOR)
        answer = await socket.receive_str(timeout=5)
        await socket.close()
        return "served" if answer == "{}" + SEPARATOR else f"handshake {answer[:40]!r}"


async def run(url: str, pid: int, args: argparse.Namespace) -> dict[str, object]:
    """The flood, then the visitor; the figures."""
    before = rss_mb(pid)
    started = time.monotonic()
    if args.attack == "websockets":
        taken, sockets, sessions = await websocket_flood(url, args.sockets)
    else:
        taken, sockets, sessions = await negotiate_flood(url, args.negotiates)
    flood_seconds = time.monotonic() - started
    during = rss_mb(pid)
    outcome = await visitor(url)
    for socket in sockets:
        await socket.close()
    for session in sessions:
        await session.close()
    return {"before": before, "during": during, "taken": taken, "seconds": flood_seconds, "visitor": outcome}


def main() -> None:
    """Start the local mode, flood it, send a visitor, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attack", choices=["websockets", "negotiate"], required=True)
    parser.add_argument("--sockets", type=int, default=2100, help="WebSockets to try (default 2,100)")
    parser.add_argument("--negotiates", type=int, default=10_500, help="negotiations (default 10,500)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose local mode to run")
    args = parser.parse_args()
    if not 1 <= args.sockets <= 5000 or not 5 <= args.negotiates <= 50_000:
        parser.error("--sockets 1-5000, --negotiates 5-50000")
    raise_file_limit()
    process, port, _ = launch_local(["--sql-polling-ms", "0"], root=args.root)
    try:
        url = f"http://127.0.0.1:{port}"
        figures = asyncio.run(run(url, process.pid, args))
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(
            f"{args.attack}: the flood got {figures['taken']} in {figures['seconds']:.1f} s; server RSS "
            f"{figures['before']:.0f} MiB before, {figures['during']:.0f} MiB during; visitor: "
            f"{figures['visitor']}; load {load}",
            flush=True,
        )
    finally:
        stop(process)


if __name__ == "__main__":
    main()
