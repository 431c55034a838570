"""`azora migrate`, `azora token` and `azora status`.

Backends and Alembic are imported inside the commands that use them: `azora token` stays quick.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from azora_nexus.auth.tokens import Role, issue_token, resolve_secret
from azora_nexus.config import Settings

console = Console()


def migrate(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Upgrade the database schema (starting embedded PostgreSQL if DATABASE_URL is unset)."""
    from azora_nexus.database.migrate import upgrade
    from azora_nexus.nexus import open_backends

    settings = Settings()

    async def run() -> None:
        async with open_backends(settings, migrate_to=revision):
            pass

    # With DATABASE_URL set, no embedded Redis or Mongo is started just to migrate.
    if settings.database_url:
        asyncio.run(upgrade(settings.database_url, revision))
    else:
        asyncio.run(run())
    console.print(f"schema at {revision}")


def token(
    role: Annotated[Role, typer.Option(help="the token's role")] = Role.USER,
    sub: Annotated[str | None, typer.Option(help="the user id (default: the role's name)")] = None,
    ttl_s: Annotated[int, typer.Option("--ttl-s", min=1, help="lifetime in seconds")] = 86400,
) -> None:
    """Print an access token signed with AZORA_JWT_SECRET (or the data dir's secret)."""
    settings = Settings()
    print(issue_token(resolve_secret(settings), sub=sub or role.value, role=role, ttl_s=ttl_s))


def status() -> None:
    """Show which backends run and where (passwords in URLs masked)."""
    from azora_nexus.backends import backend_status
    from azora_nexus.backends.private import masked

    settings = Settings()
    table = Table("backend", "kind", "state", "url", "pid")
    for backend in backend_status(settings):
        kind = "embedded" if backend.embedded else "external (URL)"
        state = ("running" if backend.running else "stopped") if backend.embedded else "-"
        table.add_row(
            backend.name,
            kind,
            state,
            masked(backend.url) if backend.url else "-",
            str(backend.pid or "-"),
        )
    console.print(table)
    console.print(f"data dir: {settings.data_dir.resolve()}")
    console.print(storage_table(settings))


def storage_table(settings: Settings) -> Table:
    """Per store: bytes on disk, items, the oldest item kept and the retention setting."""
    from azora_nexus.storage import StoreUsage, survey

    table = Table(
        "store", "backend", "on disk", "items", "oldest kept", "retention", title="storage"
    )
    for usage in asyncio.run(survey(settings)):
        if not isinstance(usage, StoreUsage):
            table.add_row(
                usage.split(":", 1)[0], "-", "-", "-", "-", usage.split(":", 1)[1].strip()
            )
            continue
        age_s = usage.oldest_age_s()
        table.add_row(
            usage.store,
            usage.backend,
            "-" if usage.bytes is None else _bytes(usage.bytes),
            "-" if usage.items is None else f"{usage.items:,}",
            "-" if age_s is None else f"{_age(age_s)} ago",
            usage.retention,
        )
    return table


def _bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def register(app: typer.Typer) -> None:
    app.command()(migrate)
    app.command()(token)
    app.command()(status)
