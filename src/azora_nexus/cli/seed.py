"""`azora seed`: demo data through the domain services, with a progress bar per phase."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from azora_nexus.config import Settings

if TYPE_CHECKING:
    from azora_nexus.domain.seed.concurrency import Progress as SeedProgress
    from azora_nexus.domain.seed.plan import SeedSize
    from azora_nexus.domain.seed.report import SeedReport

console = Console(stderr=True)


class PhaseBars:
    """One bar per phase of the seed, each left complete when the next one starts."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def phase(self, description: str, total: int) -> None:
        self.finish()
        self.task = self.progress.add_task(description, total=total)

    def advance(self, count: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)

    def finish(self) -> None:
        if self.task is not None:
            total = self.progress.tasks[self.task].total
            self.progress.update(self.task, completed=total)


@contextmanager
def phase_bars() -> Iterator[PhaseBars]:
    """Bars on stderr, so that stdout carries the summary line alone."""
    columns = (
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bars = PhaseBars(progress)
        yield bars
        bars.finish()


async def seed_world(
    settings: Settings, size: SeedSize, progress: SeedProgress | None = None
) -> SeedReport:
    """The demo world of `size` in the data dir's database (migrated first): beside a running
    `azora up` on its servers, otherwise on servers started for the run."""
    from azora_nexus.domain.seed.concurrency import NoProgress
    from azora_nexus.domain.seed.runner import seed_into
    from azora_nexus.nexus import open_nexus

    # No background tasks: the seed's events wait in the outbox for a node to relay them.
    async with open_nexus(settings, migrate=True, background=False, attach=True) as nexus:
        return await seed_into(nexus, size, progress or NoProgress())


Count = Annotated[int, typer.Option(help="how many (0 or more)")]


def seed(users: Count = 100, courses: Count = 10, jobs: Count = 20, transfers: Count = 200) -> None:
    """Fill the data dir (or the URLs' servers) with demo users, wallets, courses, jobs and
    transfers; running it again with the same numbers adds nothing."""
    import uvloop

    from azora_nexus.domain.seed import catalog
    from azora_nexus.domain.seed.plan import SeedSize

    # Checked here (Invalid: one line, exit 1) rather than by click, whose error is a panel.
    size = SeedSize(users=users, courses=courses, jobs=jobs, transfers=transfers)
    settings = Settings()
    started = time.monotonic()
    with phase_bars() as bars, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        report = runner.run(seed_world(settings, size, bars))
    elapsed_s = time.monotonic() - started
    sign_in = f"; demo sign-in: {catalog.email(0)} / {catalog.DEMO_PASSWORD}" if users else ""
    print(f"seeded in {elapsed_s:.1f} s: {report.summary()}{sign_in}")


def register(app: typer.Typer) -> None:
    app.command()(seed)
