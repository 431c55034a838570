"""Running a node: uvicorn under our own signal handling, with or without embedded backends."""

from __future__ import annotations

import asyncio
import gc
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


# Collect the youngest generation every 50,000 net allocations instead of 700: a fan-out
# allocates a few objects per recipient, and at the default the cyclic collector ran many
# times per event and took a third of the CPU (bench/results/report.md).
GC_THRESHOLD = (50_000, 20, 100)


def keep_gc_off_the_hot_path() -> None:
    """Freeze what start-up built out of the collector's walks and make young collections rare.

    Everything alive once the node serves (modules, app, pools) is long-lived: frozen, the
    collector never scans it again; only objects made while serving are collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


class NodeServer(Server):
    """The node's uvicorn: tunes the GC once start-up (the app's lifespan) is done."""

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        keep_gc_off_the_hot_path()


async def serve_node(settings: Settings, servers: list[Server]) -> None:
    """Serve one Nexus node until a signal asks it to stop."""
    server = NodeServer(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=5,
            # The fan-out writes frames to this protocol's transport (realtime/wire.py).
            ws="websockets-sansio",
            # Engine.IO pings every socket already; a websocket ping too would be a
            # second timer per socket. Events are small JSON: deflate would cost a zlib
            # context (tens of KB) per socket and a compression per recipient.
            ws_ping_interval=None,
            ws_per_message_deflate=False,
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
