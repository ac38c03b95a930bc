"""The local mode assembled: one aiohttp application serving the site, the functions under
/api/, and the SignalR-compatible endpoint, over an embedded SQLite database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from artifacts.site_files import SITE_DIR
from functions import wiring
from local.cors import cors_middleware
from local.database import Database
from local.host import FunctionsHost, site_routes
from local.hub import Hub

log = logging.getLogger("local")


@dataclass
class LocalMode:
    """A running local mode: its URL, publish key and parts (tests reach into them)."""

    url: str
    publish_key: str
    database: Database
    hub: Hub
    host: FunctionsHost
    runner: web.AppRunner

    async def stop(self) -> None:
        """Close clients, stop the triggers, the server and the database."""
        await self.hub.shutdown()
        await self.host.stop()
        await self.runner.cleanup()
        self.database.close()


def build_app(
    database: Database, publish_key: str, site_dir: Path = SITE_DIR
) -> tuple[web.Application, Hub, FunctionsHost]:
    """The aiohttp application and its hub and host (base URL set once the port is known)."""
    hub = Hub({wiring.HUB_NAME})
    host = FunctionsHost(database, hub, publish_key)
    # The API allows the site's origin, as the deployed app's CORS does (here the site is on this one).
    app = web.Application(client_max_size=1 << 20, middlewares=[cors_middleware(lambda: [hub.base_url])])
    app.add_routes(hub.routes())
    app.add_routes(host.routes())
    app.add_routes(
        site_routes(site_dir, lambda: {"apiBaseUrl": f"{hub.base_url}/api", "hub": wiring.HUB_NAME})
    )
    return app, hub, host


async def start(
    host: str = "127.0.0.1",
    port: int = 7071,
    publish_key: str = "",
    db: str = ":memory:",
    site_dir: Path = SITE_DIR,
) -> LocalMode:
    """Start the local mode and return once it accepts connections (port 0 picks a free port)."""
    database = Database(db)
    app, hub, functions_host = build_app(database, publish_key, site_dir)
    runner = web.AppRunner(app, access_log_format='%a "%r" %s %b %Tfs')
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    url = f"http://{host}:{bound_port}"
    hub.base_url = url
    await functions_host.start()
    return LocalMode(url, publish_key, database, hub, functions_host, runner)
