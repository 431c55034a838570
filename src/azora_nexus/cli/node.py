"""Running a node: uvicorn under our own signal handling, with or without embedded backends.

With more than one worker, this process routes connections on the port to worker
processes (`workers/`), each a whole node; with one, it is the node itself.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Protocol

import uvicorn
import uvloop

from azora_nexus.app import create_app
from azora_nexus.auth.tokens import resolve_secret
from azora_nexus.cli.preflight import require_backends
from azora_nexus.config import Settings
from azora_nexus.errors import BadRequest
from azora_nexus.metrics import MULTIPROCESS_DIR
from azora_nexus.nexus import open_backends
from azora_nexus.realtime.direct import DirectWebSocket
from azora_nexus.realtime.engine import Server
from azora_nexus.workers.intake import Intake
from azora_nexus.workers.routing import Router
from azora_nexus.workers.supervisor import Supervisor

logger = logging.getLogger(__name__)


class Stoppable(Protocol):
    """What a signal stops: a uvicorn server, or the parent of several workers."""

    started: bool
    should_exit: bool


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

    def on_started(self) -> None:
        keep_gc_off_the_hot_path()


class WorkerServer(NodeServer):
    """A worker's uvicorn: no listening socket; it serves what the parent hands over."""

    listen = False

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self.intake: Intake | None = None

    def on_started(self) -> None:
        super().on_started()
        self.intake = Intake(self.channel, self.new_connection, on_parent_gone=self.parent_gone)
        self.intake.start()

    def parent_gone(self) -> None:
        logger.warning("the parent process is gone: stopping")
        self.should_exit = True

    def on_stopping(self) -> None:
        if self.intake is not None:
            self.intake.stop()


def node_config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings for a node (or a worker) serving `app`."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=5,
        # Forwarding headers only from AZORA_TRUSTED_PROXIES (uvicorn would believe any peer
        # on 127.0.0.1, so a local client could name the address its login limit counts).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
        # Sessions opened on a websocket are served by realtime/direct.py; any other
        # websocket goes on to uvicorn's websockets-sansio protocol.
        ws=DirectWebSocket,
        # Engine.IO pings every socket already; a websocket ping too would be a second
        # timer per socket. Events are small JSON: deflate would cost a zlib context
        # (tens of KB) per socket and a compression per recipient.
        ws_ping_interval=None,
        ws_per_message_deflate=False,
    )


async def serve_node(settings: Settings, servers: list[Stoppable]) -> None:
    """Serve one Nexus node until a signal asks it to stop."""
    await require_backends(settings)
    server = NodeServer(node_config(create_app(settings), settings))
    servers.append(server)
    logger.info(
        "Nexus on http://%s:%d (health: /health, API docs: /docs)", settings.host, settings.port
    )
    await server.serve()
    if not server.started and not server.should_exit:
        raise BadRequest(f"could not serve on {settings.host}:{settings.port} (port taken?)")


class Cluster:
    """What waits for a signal to stop (the parent of several workers, `azora backends`)."""

    def __init__(self) -> None:
        self.started = False
        self.exit = asyncio.Event()

    @property
    def should_exit(self) -> bool:
        return self.exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self.exit.set()


def worker_env(settings: Settings, metrics_dir: str, count: int) -> dict[str, str]:
    """A worker's environment: ours, with the backends, the port, the shared metrics and
    (unless set) its share of the PostgreSQL pool: N workers keep what one node would, so
    a worker per core stays within the server's connection limit."""
    env = dict(os.environ) | {MULTIPROCESS_DIR: metrics_dir}
    env.setdefault("AZORA_DB_POOL_SIZE", str(max(2, settings.db_pool_size // count)))
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("REDIS_URL", settings.redis_url),
        ("MONGODB_URI", settings.mongodb_uri),
    ):
        if value:
            env[name] = value
    return env | {"AZORA_DATA_DIR": str(settings.data_dir), "AZORA_PORT": str(settings.port)}


async def serve_workers(settings: Settings, count: int, holder: list[Stoppable]) -> None:
    """Route the port's connections to `count` worker processes until a signal stops us."""
    await require_backends(settings)
    try:
        listener = socket.create_server((settings.host, settings.port), backlog=4096)
    except OSError as exc:
        raise BadRequest(f"could not serve on {settings.host}:{settings.port}: {exc}") from None
    cluster = Cluster()
    holder.append(cluster)
    resolve_secret(settings)  # made here once, read by every worker
    metrics_dir = tempfile.TemporaryDirectory(prefix="azora-metrics-")
    supervisor = Supervisor(count, worker_env(settings, metrics_dir.name, count))
    with listener, metrics_dir:
        try:
            await supervisor.start()
            loop = asyncio.get_running_loop()
            router = await loop.create_server(
                partial(Router, supervisor.workers), sock=listener, backlog=4096
            )
            cluster.started = True
            logger.info(
                "Nexus on http://%s:%d with %d workers (health: /health, API docs: /docs)",
                settings.host,
                settings.port,
                count,
            )
            await cluster.exit.wait()
            router.close()
        finally:
            await supervisor.stop()


async def serve_worker(settings: Settings, index: int, channel_fd: int) -> None:
    """One worker: a node serving the connections its parent hands it, until told to stop."""
    holder: list[Stoppable] = []
    stop_on_signals(holder)
    try:
        channel = socket.socket(fileno=channel_fd)
    except OSError as exc:
        raise BadRequest(
            f"worker: no channel on fd {channel_fd} ({exc.strerror}); "
            "workers are started by `azora up --workers N`"
        ) from None
    app = create_app(settings, sid_prefix=f"{index}.")
    server = WorkerServer(node_config(app, settings), channel)
    holder.append(server)
    with channel:
        await server.serve()


def stop_on_signals(holder: list[Stoppable]) -> None:
    """On SIGINT or SIGTERM: stop what serves, or give up on a start-up still under way."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_signal(sig: signal.Signals) -> None:
        logger.info("%s: stopping", sig.name)
        if holder and holder[0].started:
            holder[0].should_exit = True
        else:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


async def serve(settings: Settings, workers: int, holder: list[Stoppable]) -> None:
    if workers > 1:
        await serve_workers(settings, workers, holder)
    else:
        await serve_node(settings, holder)


@asynccontextmanager
async def migrated_backends(settings: Settings) -> AsyncIterator[Settings]:
    """Start the embedded backends `settings` names no URL for, migrate, and yield the
    settings of a node on them (every URL set); the backends stop when the context ends."""
    async with open_backends(settings, migrate_to="head") as urls:
        yield settings.model_copy(
            update={
                "database_url": urls.database,
                "redis_url": urls.redis,
                "mongodb_uri": urls.mongodb,
            }
        )


async def run_up(settings: Settings, workers: int) -> None:
    holder: list[Stoppable] = []
    stop_on_signals(holder)
    async with migrated_backends(settings) as node:
        await serve(node, workers, holder)


async def run_serve(settings: Settings, workers: int) -> None:
    holder: list[Stoppable] = []
    stop_on_signals(holder)
    await serve(settings, workers, holder)


async def run_backends(settings: Settings) -> None:
    """Hold the migrated backends until a signal; their URLs on stdout once they answer."""
    holder: list[Stoppable] = []
    stop_on_signals(holder)
    async with migrated_backends(settings) as ready:
        holding = Cluster()
        holder.append(holding)
        for name, url in (
            ("DATABASE_URL", ready.database_url),
            ("REDIS_URL", ready.redis_url),
            ("MONGODB_URI", ready.mongodb_uri),
        ):
            print(f"{name}={url}", flush=True)
        holding.started = True
        await holding.exit.wait()


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a node's main coroutine on uvloop (uvicorn picks it only when it owns the loop)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)
