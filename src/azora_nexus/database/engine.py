"""The async engine, sessions and one transaction helper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from azora_nexus.guard import Guard, is_outage

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


def guarded_pool(guard: Guard) -> type[AsyncAdaptedQueuePool]:
    """The engine's pool, refusing at once (before waiting for a connection) while the
    breaker is open. A pool the engine recreates is of the same class, so it keeps this."""

    class GuardedPool(AsyncAdaptedQueuePool):
        def _do_get(self) -> Any:
            guard.check()
            return super()._do_get()

    return GuardedPool


def report_outages(engine: AsyncEngine, guard: Guard) -> None:
    """Open the breaker on a timeout or a lost connection, whatever statement saw it."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        exc = context.original_exception
        # A cancelled task (a client gone, a shutdown) says nothing about the server,
        # although SQLAlchemy counts it as a disconnect of the connection it interrupted.
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit)):
            return
        if is_outage(exc) or (context.is_disconnect and isinstance(exc, Exception)):
            guard.failed(exc)
            # A connection that timed out is dropped, not rolled back or closed politely:
            # either would wait out a second timeout on a frozen server.
            context.is_disconnect = True
            _terminate(context)


def _terminate(context: ExceptionContext) -> None:
    """Cut the driver's connection at once (SQLAlchemy would first try a polite close)."""
    try:
        adapted = context.connection.connection.dbapi_connection  # type: ignore[union-attr]
        driver = getattr(adapted, "_connection", None)
        if driver is not None and not driver.is_closed():
            driver.terminate()
    except Exception:  # the connection is being dropped either way
        pass


def create_engine(
    url: str,
    *,
    timeout_s: float = 5.0,
    pool_size: int = 20,
    guard: Guard | None = None,
    statement_timeout_s: float | None = None,
) -> AsyncEngine:
    """An engine whose connect and pool waits are bounded by `timeout_s`, and each statement
    by `statement_timeout_s` (a frozen server answers nothing); with a `guard`, outages open
    the breaker and an open breaker refuses at once."""
    connect_args: dict[str, Any] = {"timeout": timeout_s}
    options: dict[str, Any] = {}
    if statement_timeout_s is not None:
        connect_args["command_timeout"] = statement_timeout_s
    if guard is not None:
        options["poolclass"] = guarded_pool(guard)
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it doubles the round trips of every checkout. A connection that a
        # restarted server dropped fails once, and SQLAlchemy then invalidates the pool.
        pool_timeout=timeout_s,
        connect_args=connect_args,
        **options,
    )
    if guard is not None:
        report_outages(engine, guard)
    return engine


@asynccontextmanager
async def open_database(
    url: str,
    *,
    timeout_s: float = 5.0,
    pool_size: int = 20,
    guard: Guard | None = None,
    statement_timeout_s: float | None = None,
) -> AsyncIterator[Database]:
    """An engine for `url`, disposed of on exit."""
    engine = create_engine(
        url,
        timeout_s=timeout_s,
        pool_size=pool_size,
        guard=guard,
        statement_timeout_s=statement_timeout_s,
    )
    try:
        yield Database(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()
