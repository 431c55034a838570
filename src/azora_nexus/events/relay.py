"""The outbox relay: committed outbox rows onto the stream, in order, exactly once.

One relay runs at a time across every node: it holds a PostgreSQL advisory lock on a
connection of its own, so when its node dies PostgreSQL drops the connection, frees the
lock, and the relay of another node (retrying every `retry_s`) takes over. It is woken
by the NOTIFY `add_event` sends on commit, and polls every `poll_s` in case one is lost.

Woken, it waits `gather_s` (2 ms) before it reads: under a stream of commits (the
ledger's batches each send one NOTIFY) a relay round (four round trips) then carries what
several commits wrote instead of one each; with group-committed transfers over HTTP the
relay's rounds were a fifth of a node's CPU.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from contextlib import suppress
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from azora_nexus.events.envelope import NewEvent
from azora_nexus.events.outbox import NOTIFY_CHANNEL
from azora_nexus.events.stream import EventStream
from azora_nexus.guard import log_failure

logger = logging.getLogger(__name__)

# Advisory locks are per database, so each database (each deployment) has one relay.
RELAY_LOCK_KEY = 0x417A6F7261  # "Azora"
# Names the relay's connection in pg_stat_activity, so operators see which node relays.
RELAY_APPLICATION = f"azora-relay {socket.gethostname()} pid {os.getpid()}"

_UNPUBLISHED = """
SELECT id, type, payload::text AS payload, source, user_id, timestamp_ms, nonce
FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1
"""
_MARK = """
UPDATE outbox AS o SET stream_id = v.sid, published_at = now()
FROM unnest($1::bigint[], $2::text[]) AS v(id, sid)
WHERE o.id = v.id AND o.published_at IS NULL
"""
_PUBLISHED_AMONG = "SELECT id FROM outbox WHERE id = ANY($1::bigint[]) AND published_at IS NOT NULL"


def asyncpg_dsn(url: str) -> str:
    """A libpq-style URL asyncpg accepts, whatever SQLAlchemy dialect `url` names."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _event_of(row: Any) -> NewEvent:
    return NewEvent(
        type=row["type"],
        payload=orjson.loads(row["payload"]),
        source=row["source"],
        timestamp_ms=row["timestamp_ms"],
        user_id=row["user_id"],
    )


class Relay:
    """Moves outbox rows onto the stream while it holds the relay lock."""

    def __init__(
        self,
        database_url: str,
        stream: EventStream,
        *,
        batch_size: int = 500,
        poll_s: float = 1.0,
        retry_s: float = 1.0,
        gather_s: float = 0.002,
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.stream = stream
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.gather_s = gather_s
        self.is_leader = False

    async def run(self) -> None:
        """Relay for as long as this task lives; survive every failure but cancellation."""
        while True:
            try:
                await self._serve_one_connection()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(logger, "outbox relay", exc, self.retry_s)
            await asyncio.sleep(self.retry_s)

    async def _serve_one_connection(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, timeout=10, server_settings={"application_name": RELAY_APPLICATION}
        )
        try:
            await self._wait_for_lock(conn)
            self.is_leader = True
            logger.info("outbox relay: leading")
            await self._lead(conn)
        finally:
            self.is_leader = False
            # Closing the connection is what frees the lock for the other nodes.
            with suppress(Exception):
                await asyncio.shield(conn.close(timeout=2))

    async def _wait_for_lock(self, conn: asyncpg.Connection) -> None:
        # Polling, not pg_advisory_lock: a blocked call would hide a dead connection.
        while True:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK_KEY):
                return
            await asyncio.sleep(self.retry_s)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        wake = asyncio.Event()
        await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
        await self._settle_relayed(conn)
        while True:
            wake.clear()
            while await self.relay_batch(conn) == self.batch_size:
                pass
            with suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await wake.wait()
                    await asyncio.sleep(self.gather_s)  # the commits right behind it too

    async def _settle_relayed(self, conn: asyncpg.Connection) -> None:
        """Forget rows a previous relay appended and marked but did not get to forget."""
        relayed = await self.stream.relayed_outbox_ids()
        if relayed:
            rows = await conn.fetch(_PUBLISHED_AMONG, relayed)
            await self.stream.forget_relayed([row["id"] for row in rows])

    async def _already_on_stream(self, rows: list[Any]) -> dict[str, str]:
        """Nonce -> stream id of rows whose timed-out XADD Redis ran after all."""
        pending = [row for row in rows if row["nonce"] is not None]
        if not pending:
            return {}
        since_ms = min(row["timestamp_ms"] for row in pending) - 1000
        return await self.stream.find_nonces({row["nonce"] for row in pending}, since_ms)

    async def relay_batch(self, conn: asyncpg.Connection) -> int:
        """Publish the oldest unpublished rows; how many there were."""
        rows = await conn.fetch(_UNPUBLISHED, self.batch_size)
        if not rows:
            return 0
        outbox_ids = [row["id"] for row in rows]
        already = await self._already_on_stream(rows)
        appended = iter(
            await self.stream.append_outbox(
                [(row["id"], _event_of(row)) for row in rows if row["nonce"] not in already]
            )
        )
        stream_ids = [already.get(row["nonce"]) or next(appended) for row in rows]
        await conn.execute(_MARK, outbox_ids, stream_ids)
        await self.stream.forget_relayed(outbox_ids)
        return len(rows)
