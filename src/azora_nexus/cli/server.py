"""`azora up` (embedded backends, migrations, server) and `azora serve` (URLs only).

The server stack is imported inside the commands, so other commands start quickly.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated

import typer

from azora_nexus.config import Settings
from azora_nexus.errors import BadRequest
from azora_nexus.logs import configure_logging

logger = logging.getLogger(__name__)

PortOption = Annotated[int | None, typer.Option("--port", help="Port (default AZORA_PORT)")]
# Up to 999: a worker's index is the first part of each of its Engine.IO session ids.
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        max=999,
        help="Worker processes sharing the port (default: one per core)",
    ),
]


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0))


def up(port: PortOption = None, workers: WorkersOption = None) -> None:
    """Start the embedded backends that have no URL, migrate, and serve on AZORA_PORT."""
    settings = Settings() if port is None else Settings(AZORA_PORT=port)
    configure_logging(settings.log_level)
    from azora_nexus.cli import node

    try:
        node.run(node.run_up(settings, workers or default_workers()))
    except asyncio.CancelledError:
        logger.info("stopped before start-up finished")


def serve(port: PortOption = None, workers: WorkersOption = None) -> None:
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
    from azora_nexus.cli import node

    node.run(node.run_serve(settings, workers or default_workers()))


def backends() -> None:
    """Run the embedded server of each backend with no URL, migrated, until Ctrl-C/SIGTERM.

    Prints `DATABASE_URL=...`, `REDIS_URL=...` and `MONGODB_URI=...` once they answer: the
    shared backends of several `azora serve` nodes (README, "Scaling past one machine").
    """
    settings = Settings()
    configure_logging(settings.log_level)
    from azora_nexus.cli import node

    try:
        node.run(node.run_backends(settings))
    except asyncio.CancelledError:
        logger.info("stopped before start-up finished")


def worker(
    index: Annotated[int, typer.Option("--index")],
    channel_fd: Annotated[int, typer.Option("--channel-fd")],
) -> None:
    """One worker process of `up`/`serve --workers N` (started by them, not by hand)."""
    settings = Settings()
    configure_logging(settings.log_level, process=f"worker {index}")
    from azora_nexus.cli import node

    node.run(node.serve_worker(settings, index, channel_fd))


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(serve)
    app.command()(backends)
    app.command(hidden=True)(worker)
