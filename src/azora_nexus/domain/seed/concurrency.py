"""Bounded concurrency for the seed's phases, and the progress they report."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")

# Sessions in flight at once: enough to overlap PostgreSQL's work with this process's, few
# enough that a node serving on the same machine keeps its share of the CPU and the pool.
CONCURRENCY = 8
# Things written per set-based statement: large enough that a round trip and a plan are
# spread over many rows, small enough that a batch's locks and progress step stay short.
BATCH = 500


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


def batches(items: Sequence[T], size: int = BATCH) -> list[list[T]]:
    """`items` in order, `size` at a time."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def one(_: object) -> int:
    return 1


async def for_each(
    items: Iterable[T],
    action: Callable[[T], Awaitable[None]],
    *,
    progress: Progress,
    concurrency: int = CONCURRENCY,
    size: Callable[[T], int] = one,
) -> None:
    """`action(item)` for every item, at most `concurrency` at once, advancing `progress`
    by `size(item)` (a batch: its length) after each; the first error stops the others and
    is raised as it is."""
    pending = iter(items)  # shared by the workers: each item is taken once

    async def work() -> None:
        for item in pending:
            await action(item)
            progress.advance(size(item))

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(work())
    except ExceptionGroup as failed:
        # One error, as the command line prints it (one line), not a group of them.
        raise failed.exceptions[0] from None
