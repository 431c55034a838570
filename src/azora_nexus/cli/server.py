"""`azora up` (embedded backends, migrations, server) and `azora serve` (URLs only).

The server stack is imported inside the commands, so other commands start quickly.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from azora_nexus.config import Settings
from azora_nexus.errors import BadRequest
from azora_nexus.logs import configure_logging

logger = logging.getLogger(__name__)

PortOption = Annotated[int | None, typer.Option("--port", help="Port (default AZORA_PORT)")]


def up(port: PortOption = None) -> None:
    """Start the embedded backends that have no URL, migrate, and serve on AZORA_PORT."""
    settings = Settings() if port is None else Settings(AZORA_PORT=port)
    configure_logging(settings.log_level)
    from azora_nexus.cli import node

    try:
        node.run(node.run_up(settings))
    except asyncio.CancelledError:
        logger.info("stopped before start-up finished")


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
    from azora_nexus.cli import node

    node.run(node.run_serve(settings))


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(serve)
