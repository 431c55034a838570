"""One LISTEN connection per node: PostgreSQL's NOTIFYs handed to whoever subscribed.

A notification is sent by the transaction that made the change and arrives when it
commits (milliseconds later, on every node). Notifications sent while this connection is
down are lost, so every (re)connection first calls the `on_connect` callbacks, which
re-read the state they follow; the subscribers' own poll bounds what a silently broken
connection could miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

logger = logging.getLogger(__name__)

Handler = Callable[[str], None]
Resync = Callable[[], Awaitable[object]]


class Notifications:
    """Listens on the subscribed channels for as long as `run()` lives; reconnects."""

    def __init__(self, dsn: str, *, timeout_s: float = 2.0, retry_s: float = 1.0) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._handlers: dict[str, list[Handler]] = {}
        self._resyncs: list[Resync] = []
        self.connected = asyncio.Event()

    def subscribe(self, channel: str, handler: Handler, on_connect: Resync | None = None) -> None:
        self._handlers.setdefault(channel, []).append(handler)
        if on_connect is not None:
            self._resyncs.append(on_connect)

    async def run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("notifications: %s; reconnecting in %.1f s", exc, self.retry_s)
            self.connected.clear()
            await asyncio.sleep(self.retry_s)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(self.dsn, timeout=self.timeout_s)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            for channel in self._handlers:
                await conn.add_listener(channel, self._dispatch)
            for resync in self._resyncs:
                await resync()
            self.connected.set()
            while not lost.is_set():
                # A frozen server never ends the connection: ask it now and then.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5 * self.timeout_s):
                        await lost.wait()
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=self.timeout_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=self.timeout_s))

    def _dispatch(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        for handler in self._handlers.get(channel, []):
            try:
                handler(payload)
            except Exception:
                logger.exception("notification handler for %s failed", channel)
