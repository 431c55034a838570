"""Running a node: uvicorn under our own signal handling, with or without embedded backends."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
import uvloop

from azora_nexus.app import create_app
from azora_nexus.backends import start_backends
from azora_nexus.config import Settings
from azora_nexus.database.migrate import upgrade
from azora_nexus.errors import BadRequest

logger = logging.getLogger(__name__)


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


async def run_serve(settings: Settings) -> None:
    servers: list[Server] = []
    stop_on_signals(servers)
    await serve_node(settings, servers)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a node's main coroutine on uvloop (uvicorn picks it only when it owns the loop)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)
