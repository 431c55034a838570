"""Logging setup; only the CLI calls it (library code just uses `logging.getLogger`)."""

from __future__ import annotations

import logging
import sys

from rich.logging import RichHandler

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO", process: str | None = None) -> None:
    """Rich output on a terminal; one plain line per record when stderr is a file or pipe.

    `process` (a worker's name) starts each line, to tell the workers' lines apart.
    """
    handler: logging.Handler
    who = f"[{process}] " if process else ""
    if sys.stderr.isatty():
        handler = RichHandler(rich_tracebacks=False, show_path=False)
        handler.setFormatter(logging.Formatter(who + "%(name)s: %(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT.replace("%(name)s", who + "%(name)s")))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Alembic announces each of its plugins at INFO when first imported: noise, not news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
