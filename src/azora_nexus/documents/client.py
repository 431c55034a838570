"""MongoDB through `pymongo.AsyncMongoClient`: bounded retries, the collections Nexus uses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure

from azora_nexus.errors import BackendUnavailable
from azora_nexus.guard import Guard

logger = logging.getLogger(__name__)

T = TypeVar("T")
Document = dict[str, Any]

# The collections later parts rely on, with the indexes each query path needs.
INDEXES: dict[str, list[IndexModel]] = {
    # The event archive ("events") has its own, and no more: events/archive.py.
    "content": [
        IndexModel([("key", ASCENDING)], unique=True),
        IndexModel([("kind", ASCENDING), ("updatedAt", DESCENDING)]),
    ],
    "activity": [
        IndexModel([("userId", ASCENDING), ("timestamp", DESCENDING)]),
        IndexModel([("type", ASCENDING), ("timestamp", DESCENDING)]),
    ],
}


@dataclass(frozen=True)
class Documents:
    """The Mongo database Nexus writes to, and its retry policy."""

    client: AsyncMongoClient[Document]
    database: AsyncDatabase[Document]
    attempts: int = 3
    backoff_s: float = 0.1
    guard: Guard | None = None  # the node's mongo breaker: reads a request waits for use it

    @property
    def events(self) -> AsyncCollection[Document]:
        return self.database["events"]

    @property
    def content(self) -> AsyncCollection[Document]:
        return self.database["content"]

    @property
    def activity(self) -> AsyncCollection[Document]:
        return self.database["activity"]

    async def with_retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation`, retrying connection errors a bounded number of times with backoff."""
        for attempt in range(1, self.attempts + 1):
            try:
                return await operation()
            except (AutoReconnect, ConnectionFailure) as exc:
                if attempt == self.attempts:
                    raise BackendUnavailable(f"mongo: {exc}") from exc
                delay_s = self.backoff_s * 2 ** (attempt - 1)
                logger.warning("mongo: %s; retry %d in %.2f s", exc, attempt, delay_s)
                await asyncio.sleep(delay_s)
        raise AssertionError("unreachable")

    async def ping(self, timeout_s: float) -> None:
        """A real round trip; raises when the server does not answer within `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            await self.client.admin.command("ping")

    async def create_indexes(self) -> None:
        """Create every collection's indexes (idempotent)."""
        for name, indexes in INDEXES.items():
            collection = self.database[name]
            await self.with_retry(partial(collection.create_indexes, indexes))


def create_mongo_client(uri: str, *, timeout_s: float = 2.0) -> AsyncMongoClient[Document]:
    timeout_ms = int(timeout_s * 1000)
    # retryWrites=False: SecantusDB rescans its retry registry on every retryable write.
    # A socket timeout, so that a frozen server cannot hold a call forever (a request's
    # reads are cut at `timeout_s` by the guard; the archiver's batches may take longer).
    return AsyncMongoClient(
        uri,
        retryWrites=False,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms * 5,
        tz_aware=True,
    )


@asynccontextmanager
async def open_documents(
    uri: str, *, timeout_s: float = 2.0, create_indexes: bool = True, guard: Guard | None = None
) -> AsyncIterator[Documents]:
    """The database named in `uri` (default `azora`), indexes created; closed on exit.

    With a `guard`, a MongoDB that does not answer at start is not fatal: the node serves
    what needs no archive, and the indexes are created once it answers.
    """
    client = create_mongo_client(uri, timeout_s=timeout_s)
    try:
        documents = Documents(
            client=client, database=client.get_default_database("azora"), guard=guard
        )
        try:
            if create_indexes:
                await documents.create_indexes()
        except BackendUnavailable as exc:
            if guard is None:
                raise
            logger.warning("mongo unavailable at start (%s); serving without it", exc)
            guard.failed(str(exc))
        yield documents
    finally:
        await client.close()
