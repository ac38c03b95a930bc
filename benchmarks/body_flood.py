"""Memory and access of the local mode under issue 30's item-1 attack: anonymous request bodies
that never finish.

Each of `--connections` sockets (from `--attacker-addresses` loopback addresses, 127.0.0.2 and up)
sends `POST /api/messages` without a key, `Content-Length: 1 MiB` and all but the last 100 bytes
of the body, then holds. A socket the server closes is opened again while the attack lasts. Once the
attack has been under way for `--seconds`, a normal client from 127.0.0.1 asks for
`GET /api/health` and the script records whether it got 200 and how fast. It prints the server's
resident memory (VmRSS) before, at the peak, and after; it stops early, as a safety, once the server
holds `--rss-cap-mb`. Loopback only, and every loop ends by itself.

    python benchmarks/body_flood.py                       # 1,500 sockets from one address
    python benchmarks/body_flood.py --attacker-addresses 5
    python benchmarks/body_flood.py --root /tmp/before    # the same attack on another checkout
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages
from benchmarks.broadcast import launch_local, raise_file_limit, stop  # noqa: E402
from benchmarks.hub_memory import rss_mb  # noqa: E402

BODY_BYTES = 1 << 20
HELD_BACK = 100


async def attacker(port: int, address: str, deadline: float, counts: dict[str, int]) -> None:
    """One socket's worth of attack, reopened when the server closes it, until `deadline`."""
    head = (
        f"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {BODY_BYTES}\r\n\r\n"
    ).encode()
    chunk = b"x" * (64 * 1024)
    while time.monotonic() < deadline:
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
            counts["opened"] += 1
            writer.write(head)
            sent = 0
            while sent < BODY_BYTES - HELD_BACK and time.monotonic() < deadline:
                piece = chunk[: BODY_BYTES - HELD_BACK - sent]
                writer.write(piece)
                await asyncio.wait_for(writer.drain(), max(0.1, deadline - time.monotonic()))
                sent += len(piece)
            # Hold: wait for the server to close (or the attack to end).
            await asyncio.wait_for(reader.read(), max(0.1, deadline - time.monotonic()))
            counts["closed_by_server"] += 1
        except (OSError, TimeoutError):
            counts["errors"] += 1
            await asyncio.sleep(0.05)
        finally:
            if writer is not None:
                writer.transport.abort()


async def normal_client(port: int) -> tuple[int, float]:
    """`GET /api/health` from 127.0.0.1: its status (0 for no answer within 10 s) and seconds taken."""
    started = time.monotonic()
    try:
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.1", 0))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(
                f"http://127.0.0.1:{port}/api/health", timeout=aiohttp.ClientTimeout(total=10)
            ) as response,
        ):
            await response.read()
            return response.status, time.monotonic() - started
    except (aiohttp.ClientError, TimeoutError):
        return 0, time.monotonic() - started


async def attack(port: int, pid: int, args: argparse.Namespace) -> dict[str, float]:
    """Run the attack; the figures."""
    figures = {"before": rss_mb(pid), "peak": 0.0}
    counts = {"opened": 0, "closed_by_server": 0, "errors": 0}
    deadline = time.monotonic() + args.seconds + 12
    addresses = [f"127.0.0.{2 + n}" for n in range(args.attacker_addresses)]
    tasks = [
        asyncio.create_task(attacker(port, addresses[n % len(addresses)], deadline, counts))
        for n in range(args.connections)
    ]
    probe_at = time.monotonic() + args.seconds
    probe: asyncio.Task[tuple[int, float]] | None = None
    while time.monotonic() < deadline:
        figures["peak"] = max(figures["peak"], rss_mb(pid))
        if figures["peak"] > args.rss_cap_mb:
            print(f"stopped early: the server holds over {args.rss_cap_mb:g} MiB", flush=True)
            break
        if probe is None and time.monotonic() >= probe_at:
            probe = asyncio.create_task(normal_client(port))
        if probe is not None and probe.done():
            break
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    status, seconds = await probe if probe is not None else (0, 0.0)
    await asyncio.sleep(args.settle)
    figures.update(after=rss_mb(pid), status=status, probe_seconds=seconds, **counts)
    return figures


def main() -> None:
    """Start the local mode, attack it, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1500, help="attacking sockets (default 1,500)")
    parser.add_argument("--attacker-addresses", type=int, default=1, help="loopback addresses (default 1)")
    parser.add_argument("--seconds", type=float, default=5.0, help="attack time before the probe (default 5)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait after the attack")
    parser.add_argument("--rss-cap-mb", type=float, default=4000, help="stop the attack past this RSS")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose local mode to run")
    args = parser.parse_args()
    if not 1 <= args.connections <= 5000 or not 1 <= args.attacker_addresses <= 200 or args.seconds <= 0:
        parser.error("--connections 1-5000, --attacker-addresses 1-200, --seconds > 0")
    raise_file_limit()
    process, port, _ = launch_local(["--sql-polling-ms", "0"], root=args.root)
    try:
        figures = asyncio.run(attack(port, process.pid, args))
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(
            f"server RSS: {figures['before']:.0f} MiB before, {figures['peak']:.0f} MiB at the peak "
            f"(+{figures['peak'] - figures['before']:.0f} MiB), {figures['after']:.0f} MiB after; "
            f"normal client: {int(figures['status']) or 'no answer'} in {figures['probe_seconds']:.2f} s; "
            f"attack sockets opened {int(figures['opened'])}, closed by the server "
            f"{int(figures['closed_by_server'])}, errors {int(figures['errors'])}; load {' '.join(load)}",
            flush=True,
        )
    finally:
        stop(process)


if __name__ == "__main__":
    main()
