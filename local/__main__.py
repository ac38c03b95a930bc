"""`python -m local`: run the whole broadcast system on this machine (see the README)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal

from local.server import start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7071, help="port (default 7071; 0 picks a free one)")
    parser.add_argument(
        "--publish-key", default=None, help="function key for POST /api/messages (default: random)"
    )
    parser.add_argument(
        "--db", default=":memory:", help="SQLite file to keep messages in (default: in memory)"
    )
    parser.add_argument(
        "--message-retention-days",
        type=int,
        default=0,
        help="delete messages older than this many days, hourly (default 0: keep them all)",
    )
    arguments = parser.parse_args(argv)
    if not 0 <= arguments.message_retention_days <= 3650:
        parser.error(f"--message-retention-days {arguments.message_retention_days}: allowed 0-3650")
    if not 0 <= arguments.port <= 65535:
        parser.error(f"--port {arguments.port}: allowed 0-65535")
    if arguments.publish_key is not None and len(arguments.publish_key) < 8:
        parser.error("--publish-key: use at least 8 characters")
    return arguments


async def main(argv: list[str] | None = None) -> None:
    """Start, print how to use it, and run until Ctrl-C or SIGTERM."""
    arguments = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    key = arguments.publish_key or secrets.token_urlsafe(24)
    local = await start(
        arguments.host,
        arguments.port,
        key,
        arguments.db,
        message_retention_days=arguments.message_retention_days,
    )
    print(f"broadcast local mode on {local.url}/", flush=True)
    print(f"  site       {local.url}/", flush=True)
    print(f"  api        {local.url}/api/  (publish key: {key})", flush=True)
    print(f"  signalr    {local.url}/client/?hub=broadcast", flush=True)
    print(f"  database   {arguments.db}", flush=True)
    print(
        f"  try: curl -X POST {local.url}/api/messages -H 'x-functions-key: {key}' "
        "-H 'Content-Type: application/json' -d '{\"text\": \"hello\"}'",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    print("stopping", flush=True)
    await local.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
