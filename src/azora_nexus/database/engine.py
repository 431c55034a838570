"""The async engine, sessions and one transaction helper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

ASYNC_DRIVER = "postgresql+asyncpg"


def async_url(url: str) -> str:
    """`postgresql://...` (as users write it) → the asyncpg dialect SQLAlchemy needs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg", ASYNC_DRIVER):
        parsed = parsed.set(drivername=ASYNC_DRIVER)
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Database:
    """The engine and its session factory."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One session in one transaction: committed on exit, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self, timeout_s: float) -> None:
        """A real query; raises when PostgreSQL does not answer within `timeout_s`."""
        async with asyncio.timeout(timeout_s), self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


def create_engine(url: str, *, timeout_s: float = 5.0, pool_size: int = 20) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it doubles the round trips of every checkout. A connection that a
        # restarted server dropped fails once, and SQLAlchemy then invalidates the pool.
        pool_timeout=timeout_s,
        connect_args={"timeout": timeout_s},
    )


@asynccontextmanager
async def open_database(
    url: str, *, timeout_s: float = 5.0, pool_size: int = 20
) -> AsyncIterator[Database]:
    """An engine for `url`, disposed of on exit."""
    engine = create_engine(url, timeout_s=timeout_s, pool_size=pool_size)
    try:
        yield Database(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()
