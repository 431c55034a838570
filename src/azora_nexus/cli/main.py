"""`azora`: the command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys

import typer

from azora_nexus.cli import admin, backup, seed, server
from azora_nexus.errors import NexusError

app = typer.Typer(
    name="azora",
    help="Azora Nexus: data layer and real-time event hub.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
server.register(app)
admin.register(app)
backup.register(app)
seed.register(app)


def run() -> None:
    """Entry point of the `azora` script."""
    try:
        app()
    except NexusError as exc:
        print(f"azora: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
