"""`azora up` (embedded backends, migrations, server) and `azora serve` (URLs only)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
import uvicorn

from azora_nexus.app import create_app
from azora_nexus.backends import start_backends
from azora_nexus.config import Settings
from azora_nexus.database.migrate import upgrade
from azora_nexus.errors import BadRequest
from azora_nexus.logs import configure_logging

logger = logging.getLogger(__name__)

PortOption = Annotated[int | None, typer.Option("--port", help="Port (default AZORA_PORT)")]


class Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: `azora` decides what a signal stops."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_node(settings: Settings, servers: list[Server]) -> None:
    """Serve one Nexus node until a signal asks it to stop."""
    server = Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    servers.append(server)
    logger.info(
        "Nexus on http://%s:%d (health: /health, API docs: /docs)", settings.host, settings.port
    )
    await server.serve()
    if not server.started and not server.should_exit:
        raise BadRequest(f"could not serve on {settings.host}:{settings.port} (port taken?)")


def stop_on_signals(server_holder: list[Server]) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_signal(sig: signal.Signals) -> None:
        logger.info("%s: stopping", sig.name)
        if server_holder and server_holder[0].started:
            server_holder[0].should_exit = True
        else:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


async def run_up(settings: Settings) -> None:
    servers: list[Server] = []
    stop_on_signals(servers)
    async with start_backends(settings) as urls:
        await upgrade(urls.database)
        node = settings.model_copy(
            update={
                "database_url": urls.database,
                "redis_url": urls.redis,
                "mongodb_uri": urls.mongodb,
            }
        )
        await serve_node(node, servers)


def up(port: PortOption = None) -> None:
    """Start the embedded backends that have no URL, migrate, and serve on AZORA_PORT."""
    settings = Settings() if port is None else Settings(AZORA_PORT=port)
    configure_logging(settings.log_level)
    try:
        asyncio.run(run_up(settings))
    except asyncio.CancelledError:
        logger.info("stopped before start-up finished")


async def run_serve(settings: Settings) -> None:
    servers: list[Server] = []
    stop_on_signals(servers)
    await serve_node(settings, servers)


def serve(port: PortOption = None) -> None:
    """Serve Nexus against the backends named by DATABASE_URL, REDIS_URL and MONGODB_URI."""
    settings = Settings() if port is None else Settings(AZORA_PORT=port)
    missing = [
        name
        for name, value in (
            ("DATABASE_URL", settings.database_url),
            ("REDIS_URL", settings.redis_url),
            ("MONGODB_URI", settings.mongodb_uri),
        )
        if not value
    ]
    if missing:
        raise BadRequest(f"serve needs {', '.join(missing)} set (or use `azora up`)")
    configure_logging(settings.log_level)
    asyncio.run(run_serve(settings))


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(serve)
