"""Bounded concurrency for the seed's phases, and the progress they report."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")

# Sessions in flight at once: enough to overlap PostgreSQL's work with this process's, few
# enough that a node serving on the same machine keeps its share of the CPU and the pool.
CONCURRENCY = 8


class Progress(Protocol):
    """Where a phase reports how far it has come (the CLI draws a bar; tests ignore it)."""

    def phase(self, description: str, total: int) -> None: ...

    def advance(self, count: int = 1) -> None: ...


class NoProgress:
    """Progress reported nowhere."""

    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass


async def for_each(
    items: Iterable[T],
    action: Callable[[T], Awaitable[None]],
    *,
    progress: Progress,
    concurrency: int = CONCURRENCY,
) -> None:
    """`action(item)` for every item, at most `concurrency` at once, advancing `progress`
    after each; the first error stops the others and is raised as it is."""
    pending = iter(items)  # shared by the workers: each item is taken once

    async def work() -> None:
        for item in pending:
            await action(item)
            progress.advance()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(work())
    except ExceptionGroup as failed:
        # One error, as the command line prints it (one line), not a group of them.
        raise failed.exceptions[0] from None
