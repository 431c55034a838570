"""`azora backup` and `azora restore`, with a progress bar."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from azora_nexus.backup.manifest import iso
from azora_nexus.config import Settings
from azora_nexus.errors import Invalid

console = Console(stderr=True)


@contextmanager
def steps(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar that moves one step each time the callback names the next one."""
    columns = (TextColumn("{task.description:<48}"), BarColumn(), TimeElapsedColumn())
    # Transient: on success a summary line follows; on failure only the error line stays.
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=total)
        first = True

        def on_step(description: str) -> None:
            nonlocal first
            progress.update(task, description=description, advance=0 if first else 1)
            first = False

        yield on_step
        progress.update(task, description="done", completed=total)


def parse_moment(text: str) -> float:
    """An ISO 8601 moment with its zone (e.g. 2026-11-23T10:15:00Z) as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(f"--at: {text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise Invalid(f"--at: {text!r} needs a zone, e.g. {text}Z")
    return moment.timestamp()


def backup(
    to: Annotated[
        Path | None, typer.Option(help="new directory (default: DATA_DIR/backups/<time>)")
    ] = None,
) -> None:
    """Back up the embedded PostgreSQL (with its WAL) and the Mongo documents."""
    from azora_nexus.backup.backup import BACKUP_STEPS, create_backup, default_target

    settings = Settings()
    target = to or default_target(settings)
    with steps(BACKUP_STEPS) as on_step:
        manifest = asyncio.run(create_backup(settings, target, on_step))
    rows = sum(manifest.table_counts.values())
    docs = sum(manifest.collection_counts.values())
    print(
        f"backup written to {target}: {rows} rows, {docs} documents; point-in-time restore "
        f"from {iso(manifest.pitr_from)} to {iso(manifest.pitr_to)}"
    )


def restore(
    source: Annotated[Path, typer.Argument(help="a directory written by `azora backup`")],
    at: Annotated[
        str | None, typer.Option(help='restore to this moment, e.g. "2026-11-23T10:15:00Z"')
    ] = None,
) -> None:
    """Bring a fresh AZORA_DATA_DIR back to a backup (or to a moment inside it) and verify it."""
    from azora_nexus.backup.restore import RESTORE_STEPS, restore_backup

    settings = Settings()
    at_s = parse_moment(at) if at else None
    with steps(RESTORE_STEPS) as on_step:
        report = asyncio.run(restore_backup(settings, source, at_s, on_step))
    print(
        f"restored into {settings.data_dir}: {sum(report.table_counts.values())} rows, "
        f"{sum(report.collection_counts.values())} documents; ledger balanced"
    )


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)
