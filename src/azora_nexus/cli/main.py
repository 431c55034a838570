"""`azora`: the command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys

from azora_nexus.compat import check_tested_versions
from azora_nexus.errors import NexusError

try:  # before anything imports the libraries whose internals realtime/ relies on
    check_tested_versions()
except NexusError as exc:
    raise SystemExit(f"azora: {exc}") from None

import typer

from azora_nexus.cli import admin, backup, seed, server, ubi

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
ubi.register(app)


def run() -> None:
    """Entry point of the `azora` script."""
    try:
        app()
    except NexusError as exc:
        print(f"azora: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
