"""Broadcast benchmark: N SignalR clients, M published messages, end-to-end latency and throughput.

It starts the local mode in a subprocess (or uses `--url` of a deployment with `--key`), connects
N WebSocket clients that speak the SignalR JSON hub protocol after the serverless negotiate
redirect (and ping every 15 s, as the official clients do: the service drops a client it hears
nothing from for 30 s), then:
  1. publishes M messages at R per second and measures publish-request-start -> client-receipt
     latency for every delivery (p50, p99) and counts deliveries (expected N x M);
  2. publishes a burst of B messages as fast as the API takes them and measures deliveries/s;
The local mode runs twice. First as the Azure path: started with `--stack dev`, so its SQL trigger
polls every `sqlTriggerPollingIntervalMs` of Pulumi.dev.yaml (100 ms) in batches of the stack's
`sqlTriggerMaxBatchSize` (100 unless set), the path a deployed stack takes: a
message is broadcast by the SQL trigger once its row exists, nothing sent on the side. Then woken by
every write (immediate: what the rest of the stack can do). Beside them, the same N clients against
a bare aiohttp WebSocket broadcast server (the limit of this machine for this stack): the same
burst, as frames of the same size.

    python benchmarks/broadcast.py                    # 1,000 clients: Azure path, immediate, bare
    python benchmarks/broadcast.py --sql-polling-ms 0 # immediate only
    python benchmarks/broadcast.py --clients 200 --messages 50
    python benchmarks/broadcast.py --url https://func-x.azurewebsites.net --key <function key>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages
from benchmarks.capacity import Load, refusal  # noqa: E402
from local.__main__ import stack_polling_ms  # noqa: E402

SEPARATOR = "\x1e"
# The official clients' keep-alive interval (the service drops a client silent for 30 s).
CLIENT_PING_SECONDS = 15.0
BARE_SERVER = r"""
import asyncio, sys
from aiohttp import web, WSMsgType
clients = set()
async def ws(request):
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    clients.add(socket)
    try:
        async for _ in socket:
            pass
    finally:
        clients.discard(socket)
    return socket
async def send(request):
    frame = await request.text()
    for client in list(clients):
        await client.send_str(frame)
    return web.Response(status=202)
app = web.Application()
app.add_routes([web.get("/ws", ws), web.post("/send", send)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


@dataclass
class Client:
    """One benchmark client: the sequence numbers it got and when."""

    received: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    settled: bool = False
    """Whether it has heard the presence count of all the run's clients."""


def raise_file_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_until_up(
    url: str, timeout: float = 30, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until `url` answers below 500; sooner an error when `process` (the server) has exited."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the server exited at start (code {process.returncode})")
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


def record(client: Client, sequence: int, now: float) -> None:
    if sequence in client.received:
        client.duplicates += 1
    else:
        client.received[sequence] = now


async def signalr_client(
    session: aiohttp.ClientSession,
    api: str,
    client: Client,
    ready: asyncio.Event,
    counter: list[int],
    total: int,
    settled: tuple[asyncio.Event, list[int]] | None = None,
) -> None:
    """Negotiate through the API (Azure's redirect), negotiate with the hub, then read frames."""
    async with session.post(f"{api}/negotiate") as response:
        info = await response.json()
    headers = {"Authorization": f"Bearer {info['accessToken']}"}
    hub_url, _, query = info["url"].partition("?")
    async with session.post(
        f"{hub_url.rstrip('/')}/negotiate?{query}&negotiateVersion=1", headers=headers
    ) as r:
        negotiated = await r.json()
    target = info["url"].replace("http", "ws", 1) + f"&id={negotiated['connectionToken']}"
    async with session.ws_connect(target, headers=headers, heartbeat=None, max_msg_size=0) as socket:
        await socket.send_str(json.dumps({"protocol": "json", "version": 1}) + SEPARATOR)
        await socket.receive_str()
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        pinger = asyncio.create_task(keep_alive(socket))
        try:
            await read_frames(socket, client, total, settled)
        finally:
            pinger.cancel()


async def keep_alive(socket: aiohttp.ClientWebSocketResponse) -> None:
    """A ping record every CLIENT_PING_SECONDS, as @microsoft/signalr sends when it has sent nothing."""
    ping = json.dumps({"type": 6}) + SEPARATOR
    while True:
        await asyncio.sleep(CLIENT_PING_SECONDS)
        await socket.send_str(ping)


async def read_frames(
    socket: aiohttp.ClientWebSocketResponse,
    client: Client,
    total: int,
    settled: tuple[asyncio.Event, list[int]] | None,
) -> None:
    """Record each newMessage's receipt, and when the client has heard the full presence count."""
    async for message in socket:
        now = time.perf_counter()
        for record_text in message.data.split(SEPARATOR):
            if '"newMessage"' in record_text:
                payload = json.loads(record_text)
                record(client, int(payload["arguments"][0]["text"].split()[1]), now)
            elif settled and not client.settled and '"presence"' in record_text:
                online = json.loads(record_text)["arguments"][0]["online"]
                if online >= total:
                    client.settled = True
                    settled[1][0] += 1
                    if settled[1][0] == total:
                        settled[0].set()


async def bare_client(
    session: aiohttp.ClientSession,
    url: str,
    client: Client,
    ready: asyncio.Event,
    counter: list[int],
    total: int,
) -> None:
    async with session.ws_connect(url, heartbeat=None, max_msg_size=0) as socket:
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        async for message in socket:
            now = time.perf_counter()
            payload = json.loads(message.data.rstrip(SEPARATOR))
            record(client, int(payload["arguments"][0]["text"].split()[1]), now)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summarize(name: str, clients: list[Client], sent: dict[int, float], sequences: range) -> dict[str, Any]:
    latencies = [
        (client.received[s] - sent[s]) * 1000 for client in clients for s in sequences if s in client.received
    ]
    delivered = len(latencies)
    expected = len(clients) * len(sequences)
    first = min(sent[s] for s in sequences)
    last = max(
        (client.received[s] for client in clients for s in sequences if s in client.received), default=first
    )
    return {
        "name": name,
        "delivered": delivered,
        "expected": expected,
        "duplicates": sum(c.duplicates for c in clients),
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": percentile(latencies, 0.99) if latencies else float("nan"),
        "deliveries_per_s": delivered / (last - first) if last > first else float("nan"),
    }


async def run_against_api(
    api: str, key: str, args: argparse.Namespace, label: str = "local mode"
) -> list[dict[str, Any]]:
    clients = [Client() for _ in range(args.clients)]
    ready, counter = asyncio.Event(), [0]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        settled: tuple[asyncio.Event, list[int]] = (asyncio.Event(), [0])
        tasks = [
            asyncio.create_task(signalr_client(session, api, c, ready, counter, args.clients, settled))
            for c in clients
        ]
        await asyncio.wait_for(ready.wait(), timeout=120)
        print(f"  {args.clients} clients connected in {time.perf_counter() - started:.1f} s", flush=True)
        # Each connect sends the new count to everyone connected: ~N^2/2 presence messages. The
        # latency phase starts once every client has heard the full count, so it measures messages,
        # not the tail of that storm (its length is printed).
        try:
            await asyncio.wait_for(settled[0].wait(), timeout=args.settle * 6)
            print(
                f"  presence settled {time.perf_counter() - started:.1f} s after the first connect",
                flush=True,
            )
        except TimeoutError:
            print(f"  presence not settled within {args.settle * 6:.0f} s; measuring anyway", flush=True)
        sent: dict[int, float] = {}
        headers = {"Content-Type": "application/json", "x-functions-key": key}

        async def publish(sequence: int) -> None:
            body = json.dumps({"text": f"bench {sequence} " + "x" * args.size, "author": "bench"})
            sent[sequence] = time.perf_counter()
            async with session.post(f"{api}/messages", data=body, headers=headers) as response:
                if response.status != 202:
                    raise RuntimeError(f"publish {sequence}: HTTP {response.status} {await response.text()}")

        results = await measure(label, clients, publish, sent, args)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return results


async def run_bare(url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    clients = [Client() for _ in range(args.clients)]
    ready, counter = asyncio.Event(), [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [
            asyncio.create_task(bare_client(session, f"{url}/ws", c, ready, counter, args.clients))
            for c in clients
        ]
        await asyncio.wait_for(ready.wait(), timeout=120)
        sent: dict[int, float] = {}

        async def send(sequence: int) -> None:
            frame = (
                json.dumps(
                    {
                        "type": 1,
                        "target": "newMessage",
                        "arguments": [{"id": sequence, "text": f"bench {sequence} " + "x" * args.size}],
                    }
                )
                + SEPARATOR
            )
            sent[sequence] = time.perf_counter()
            async with session.post(f"{url}/send", data=frame) as response:
                assert response.status == 202

        results = await measure("bare WebSocket", clients, send, sent, args)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return results


async def measure(
    label: str,
    clients: list[Client],
    send: Callable[[int], Awaitable[None]],
    sent: dict[int, float],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """The two phases: M messages at R per second (latency), then a burst of B (throughput)."""
    paced = range(args.messages)
    for sequence in paced:
        started_at = time.perf_counter()
        await send(sequence)
        await asyncio.sleep(max(0.0, started_at + 1 / args.rate - time.perf_counter()))
    await drain(clients, paced, args.settle)
    results = [summarize(f"{label}, {args.rate:g} msg/s", clients, sent, paced)]
    burst = range(args.messages, args.messages + args.burst)
    await asyncio.gather(*(send(sequence) for sequence in burst))
    await drain(clients, burst, args.settle)
    results.append(summarize(f"{label}, burst", clients, sent, burst))
    return results


async def drain(clients: list[Client], sequences: range, settle: float) -> None:
    """Wait until every client has every sequence, or `settle` seconds pass without progress."""
    wanted = set(sequences)
    last_total, last_change = -1, time.monotonic()
    while True:
        total = sum(len(wanted & client.received.keys()) for client in clients)
        if total == len(clients) * len(wanted):
            return
        if total != last_total:
            last_total, last_change = total, time.monotonic()
        elif time.monotonic() - last_change > settle:
            return
        await asyncio.sleep(0.05)


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'run':48} {'delivered':>17} {'dup':>4} {'p50 ms':>8} {'p99 ms':>8} {'deliveries/s':>13}")
    for r in results:
        delivered = f"{r['delivered']}/{r['expected']}"
        print(
            f"{r['name']:48} {delivered:>17} {r['duplicates']:>4} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['deliveries_per_s']:>13,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100, help="paced messages (latency phase)")
    parser.add_argument("--rate", type=float, default=10.0, help="paced messages per second")
    parser.add_argument(
        "--burst", type=int, default=200, help="messages published at once (throughput phase)"
    )
    parser.add_argument("--size", type=int, default=100, help="extra characters per message text")
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds without progress before giving up"
    )
    parser.add_argument(
        "--url", help="base URL of a deployment's Functions app (default: start the local mode)"
    )
    parser.add_argument("--key", help="function key for POST /api/messages (with --url)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare WebSocket baseline")
    parser.add_argument(
        "--signalr-sku", help="with --url: the target stack's signalrSku (the run must fit its limits)"
    )
    parser.add_argument("--signalr-units", type=int, default=1, help="with --url: the stack's signalrUnits")
    parser.add_argument(
        "--sql-polling-ms",
        type=int,
        action="append",
        help="the local mode's SQL trigger polling interval(s), 0 for every write; repeat to run several "
        "(default: the Azure path, i.e. the local mode as the dev stack configures it, then 0)",
    )
    args = parser.parse_args()
    if args.sql_polling_ms is None:
        args.sql_polling_ms = [AZURE_PATH, 0]
    for polling in args.sql_polling_ms:
        if polling not in (0, AZURE_PATH) and not 100 <= polling <= 60_000:
            parser.error(f"--sql-polling-ms {polling}: allowed 0 (every write) or 100-60000")
    if args.url and not args.key:
        parser.error("--url needs --key (the function key of POST /api/messages)")
    if args.url:
        if not args.signalr_sku:
            parser.error("--url needs --signalr-sku (the stack's signalrSku), so the run stays within it")
        # About 200 bytes of framing and fields around the text of each broadcast.
        load = Load(args.clients, args.messages + args.burst, args.size + 200)
        if (reason := refusal(args.signalr_sku, args.signalr_units, load)) is not None:
            parser.error(reason)
    limit = raise_file_limit()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"open files {limit}",
        flush=True,
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if args.url:
            api = args.url.rstrip("/") + "/api"
            announce(api, args)
            results = asyncio.run(run_against_api(api, args.key, args, "deployment"))
        else:
            results = []
            for polling in args.sql_polling_ms:
                api, key = start_local(polling, processes)
                label = run_label(polling)
                announce(api, args, label)
                results += asyncio.run(run_against_api(api, key, args, label))
                # One local mode at a time: the next run gets the machine to itself.
                stop(processes.pop())
        if not args.no_baseline:
            bare_port = free_port()
            processes.append(subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)]))
            asyncio.run(wait_until_up(f"http://127.0.0.1:{bare_port}/ws"))
            print("baseline: bare aiohttp WebSocket broadcast, same clients and frames", flush=True)
            results += asyncio.run(run_bare(f"http://127.0.0.1:{bare_port}", args))
        print_table(results)
        if not args.no_baseline:
            bare_burst = results[-1]["deliveries_per_s"]
            for result in results[1:-2:2]:
                ratio = result["deliveries_per_s"] / bare_burst
                print(f"burst throughput: {result['name']} / bare baseline = {ratio:.2f}")
    finally:
        for process in processes:
            stop(process)


AZURE_PATH = -1
"""In `--sql-polling-ms`' list: the local mode started as the dev stack configures it (`--stack dev`)."""


def run_label(polling_ms: int) -> str:
    """The table's name of a local mode run; the Azure path names the interval it read."""
    if polling_ms == AZURE_PATH:
        return f"Azure path (dev stack, polls {stack_polling_ms('dev')} ms)"
    return f"local, polls {polling_ms} ms" if polling_ms else "local, immediate"


def local_command(port: int, key: str) -> list[str]:
    """`python -m local` on this port with this publish key. The key goes as `--publish-key=<key>`: a
    random URL-safe key starts with "-" one time in 64, and argparse takes `--publish-key -x...` for
    a missing value (exit 2; two of three benchmark runs once failed on it)."""
    return [sys.executable, "-m", "local", "--port", str(port), f"--publish-key={key}"]


def launch_local(
    options: list[str], root: Path = ROOT, key: str | None = None
) -> tuple[subprocess.Popen[bytes], int, str]:
    """`python -m local` of the checkout at `root` on a free port with `options`, once it answers its
    health check: the process, its port and its publish key (random unless given)."""
    port, key = free_port(), key or secrets.token_urlsafe(16)
    command = [*local_command(port, key), *options]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(wait_until_up(f"http://127.0.0.1:{port}/api/health", process=process))
    except BaseException:
        stop(process)
        raise
    return process, port, key


def start_local(polling_ms: int, processes: list[subprocess.Popen[bytes]]) -> tuple[str, str]:
    """`python -m local` on a free port with this SQL trigger polling (AZURE_PATH: the dev stack's own
    settings, read by the local mode from Pulumi.dev.yaml); its API URL and key."""
    options = ["--stack", "dev"] if polling_ms == AZURE_PATH else ["--sql-polling-ms", str(polling_ms)]
    # Every benchmark client connects from 127.0.0.1: let that one address stand for them all.
    process, port, key = launch_local([*options, "--max-connections-per-address", "2000"])
    processes.append(process)
    return f"http://127.0.0.1:{port}/api", key


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not exited 15 s later: a benchmark leaves nothing running (a
    local mode at the end of a 1,000-client run was seen to miss its SIGTERM and stay up)."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def announce(api: str, args: argparse.Namespace, label: str = "") -> None:
    print(
        f"target: {api}{f' ({label})' if label else ''}, {args.clients} clients, {args.messages} messages "
        f"at {args.rate:g}/s, burst {args.burst}",
        flush=True,
    )


if __name__ == "__main__":
    main()
