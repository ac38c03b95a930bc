"""`python -m local`: run the whole broadcast system on this machine (see the README).

Exit codes: 0 stopped (Ctrl-C, SIGTERM); 1 could not start (a taken port, an address that is not
this machine's, a database file SQLite cannot use: one line naming the option); 2 bad command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import secrets
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import yaml

from local.gate import ConnectionLimits
from local.hub import HubLimits
from local.server import LocalMode, start

ROOT = Path(__file__).resolve().parent.parent
# The stack key the deployment turns into the app setting Sql_Trigger_PollingIntervalMs.
POLLING_KEY = "broadcast:sqlTriggerPollingIntervalMs"
BATCH_KEY = "broadcast:sqlTriggerMaxBatchSize"
DEFAULT_BATCH_SIZE = 100
"""What a stack that leaves sqlTriggerMaxBatchSize unset gets (settings/declarations.py; a test keeps
the two equal: the local mode does not import the program's settings)."""
EXIT_CANNOT_START = 1


def stack_polling_ms(stack: str, root: Path = ROOT) -> int:
    """The SQL trigger's polling interval that `Pulumi.<stack>.yaml` sets: what the local mode polls
    at unless told otherwise. Read from the file itself (the local mode never imports the program's
    settings), so a stack that leaves the key to its environment's default is refused, naming the
    key, rather than guessed."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ValueError(f"--stack {stack}: no Pulumi.{stack}.yaml in {root}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
        config = document.get("config") or {}
        value = config.get(POLLING_KEY)
    except (yaml.YAMLError, AttributeError) as error:
        raise ValueError(f"--stack {stack}: Pulumi.{stack}.yaml is not a stack file: {error}") from None
    if value is None:
        raise ValueError(
            f"--stack {stack}: Pulumi.{stack}.yaml does not set {POLLING_KEY}; set it there, or pass "
            "--sql-polling-ms"
        )
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 60_000:
        raise ValueError(f"--stack {stack}: {POLLING_KEY} = {value!r}: allowed 100-60000 (ms)")
    return value


def stack_batch_size(stack: str, root: Path = ROOT) -> int:
    """The SQL trigger's batch size `Pulumi.<stack>.yaml` sets, or the setting's default when unset
    (the stack file is already known to read: `stack_polling_ms` read it first)."""
    document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
    value = (document.get("config") or {}).get(BATCH_KEY, DEFAULT_BATCH_SIZE)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValueError(f"--stack {stack}: {BATCH_KEY} = {value!r}: allowed 1-1000")
    return value


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
    parser.add_argument(
        "--stack",
        default="dev",
        help="the stack whose sqlTriggerPollingIntervalMs the SQL trigger polls at (default dev)",
    )
    parser.add_argument(
        "--sql-polling-ms",
        type=int,
        default=None,
        help="the SQL trigger's polling interval in ms, 100-60000 as on Azure, or 0 to run it on every "
        "write (default: the stack's)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=HubLimits().max_connections,
        help=f"most open SignalR connections (default {HubLimits().max_connections:,})",
    )
    parser.add_argument(
        "--max-connections-per-address",
        type=int,
        default=HubLimits().max_connections_per_address,
        help="most open SignalR connections, and most open HTTP connections, from one client address "
        f"(default {HubLimits().max_connections_per_address:,}: one client cannot take the others' share)",
    )
    arguments = parser.parse_args(argv)
    if arguments.sql_polling_ms is None:
        try:
            arguments.sql_polling_ms = stack_polling_ms(arguments.stack)
        except ValueError as error:
            parser.error(str(error))
    elif arguments.sql_polling_ms != 0 and not 100 <= arguments.sql_polling_ms <= 60_000:
        parser.error(f"--sql-polling-ms {arguments.sql_polling_ms}: allowed 0 (every write) or 100-60000")
    try:
        # Polling as on Azure: batches of the stack's size too (immediate mode drains 100 at a time).
        arguments.sql_max_batch_size = (
            stack_batch_size(arguments.stack) if arguments.sql_polling_ms else DEFAULT_BATCH_SIZE
        )
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if arguments.max_connections < 1:
        parser.error(f"--max-connections {arguments.max_connections}: at least 1")
    if not 1 <= arguments.max_connections_per_address <= arguments.max_connections:
        parser.error(
            f"--max-connections-per-address {arguments.max_connections_per_address}: allowed 1 to "
            f"--max-connections ({arguments.max_connections})"
        )
    if not 0 <= arguments.message_retention_days <= 3650:
        parser.error(f"--message-retention-days {arguments.message_retention_days}: allowed 0-3650")
    if not 0 <= arguments.port <= 65535:
        parser.error(f"--port {arguments.port}: allowed 0-65535")
    if arguments.publish_key is not None and len(arguments.publish_key) < 8:
        parser.error("--publish-key: use at least 8 characters")
    return arguments


class StartError(Exception):
    """The local mode cannot start for a reason the user can fix: one line, naming the option."""


async def start_or_explain(arguments: argparse.Namespace, key: str) -> LocalMode:
    """`start` with the options given, or a StartError naming the option that cannot be used."""
    try:
        return await start(
            arguments.host,
            arguments.port,
            key,
            arguments.db,
            message_retention_days=arguments.message_retention_days,
            hub_limits=HubLimits(
                max_connections=arguments.max_connections,
                max_connections_per_address=arguments.max_connections_per_address,
            ),
            connection_limits=ConnectionLimits(
                max_connections=max(
                    ConnectionLimits().max_connections, arguments.max_connections_per_address
                ),
                max_connections_per_address=arguments.max_connections_per_address,
            ),
            sql_polling_ms=arguments.sql_polling_ms,
            sql_max_batch_size=arguments.sql_max_batch_size,
        )
    except sqlite3.Error as error:
        raise StartError(f"--db {arguments.db}: cannot use it as a SQLite database ({error})") from None
    except socket.gaierror as error:
        raise StartError(f"--host {arguments.host}: not a host name or address ({error.strerror})") from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise StartError(
                f"--port {arguments.port}: the port is taken on {arguments.host} (another python -m local?); "
                "choose another with --port, or --port 0 for a free one"
            ) from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise StartError(f"--host {arguments.host}: not an address of this machine") from None
        if error.errno == errno.EACCES:
            raise StartError(
                f"--port {arguments.port}: not allowed to listen on it (ports below 1024 need privileges)"
            ) from None
        raise  # not one the user can fix with an option: the traceback is the report


async def main(argv: list[str] | None = None) -> None:
    """Start, print how to use it, and run until Ctrl-C or SIGTERM."""
    arguments = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    key = arguments.publish_key or secrets.token_urlsafe(24)
    try:
        local = await start_or_explain(arguments, key)
    except StartError as error:
        print(f"python -m local: {error}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CANNOT_START) from None
    print(f"broadcast local mode on {local.url}/", flush=True)
    print(f"  site       {local.url}/", flush=True)
    print(f"  api        {local.url}/api/  (publish key: {key})", flush=True)
    print(f"  signalr    {local.url}/client/?hub=broadcast", flush=True)
    print(f"  database   {arguments.db}", flush=True)
    polling = f"every {arguments.sql_polling_ms} ms" if arguments.sql_polling_ms else "on every write"
    print(f"  sql trigger polls {polling}, batches of up to {arguments.sql_max_batch_size}", flush=True)
    print(
        f"  try: curl -X POST {local.url}/api/messages -H 'x-functions-key: {key}' "
        "-H 'Content-Type: application/json' -d '{\"text\": \"hello\"}'",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop(_signum: int, _frame: object) -> None:
        loop.call_soon_threadsafe(stop.set)

    # signal.signal, not loop.add_signal_handler: asyncio learns of a signal from a byte in its
    # self-pipe, which call_soon_threadsafe also fills, and a full pipe drops the byte (a SIGTERM
    # at the end of a 1,000-client benchmark was lost that way). Python's own handler runs whatever
    # the pipe holds.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    await stop.wait()
    print("stopping", flush=True)
    await local.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
