"""Refusing the tokens of erased users, without a Redis or database round trip.

Tokens are stateless JWTs that outlive an erasure, so every request and socket that
presents one is checked against the erased users: `sha256(user id)` of each (never the id,
which must appear nowhere after erasure), kept in PostgreSQL (table `erased_users`: the
source of truth, so backups carry it) and held in memory by every node (`ErasedUsers`).

How fast a node learns of an erasure: the erasing transaction sends a NOTIFY that every
node receives when it commits (milliseconds); every node also re-reads the rows newer than
the last it saw every `POLL_S` (1 s), and on every reconnection of its LISTEN connection.
So a token is refused on every node at most `POLL_S` (plus one query) after the erasure
commits, whatever Redis does, and at once on the node that erased. The check is a set
lookup: it neither fails open during an outage nor costs a call per request.

The older Redis set `azora:erased` is still written (other tools may read it) and still
read by `reapply_erasures`, but no longer decides anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Principal
from azora_nexus.database.engine import Database
from azora_nexus.domain.privacy.identity import subject_hash
from azora_nexus.errors import Unauthorized

logger = logging.getLogger(__name__)

ERASED_KEY = "azora:erased"
CHANNEL = "azora_erased"
POLL_S = 1.0

_RECORD = text("INSERT INTO erased_users (subject_sha256) VALUES (:subject) ON CONFLICT DO NOTHING")
_NOTIFY = text("SELECT pg_notify(:channel, :subject)")
_NEWER = text(
    "SELECT seq, subject_sha256 FROM erased_users WHERE seq > :seq ORDER BY seq LIMIT 10000"
)


class ErasedUsers:
    """This node's copy of the erased users (hashes), kept current from PostgreSQL."""

    def __init__(self, db: Database, *, poll_s: float = POLL_S) -> None:
        self.db = db
        self.poll_s = poll_s
        self.hashes: set[str] = set()
        self._seq = 0
        self.loaded = False
        # Told of the hashes newly learned (the realtime layer closes their live sockets:
        # the NOTIFY or the poll may come before the `system.user.erased` event).
        self.listeners: list[Callable[[set[str]], None]] = []

    def _learned(self, subjects: set[str]) -> None:
        new = subjects - self.hashes
        if not new:
            return
        self.hashes |= new
        for listener in list(self.listeners):
            listener(new)

    def __contains__(self, user_id: object) -> bool:
        return subject_hash(user_id) in self.hashes

    def heard(self, subject: str) -> None:
        """A NOTIFY from an erasing transaction that committed."""
        if subject:
            self._learned({subject})

    async def refresh(self) -> int:
        """Read the rows added since the last read; how many there were."""
        added = 0
        while True:
            async with self.db.sessions() as session:
                rows = (await session.execute(_NEWER, {"seq": self._seq})).all()
            self._learned({subject for _, subject in rows})
            for seq, _ in rows:
                self._seq = max(self._seq, seq)
            added += len(rows)
            if len(rows) < 10000:
                self.loaded = True
                return added

    async def follow(self) -> None:
        """Poll for as long as the task lives (the NOTIFYs usually come first)."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("erased users: could not refresh (%s)", exc)


async def record_erased(session: AsyncSession, user_id: object) -> None:
    """In the erasing transaction: the user is erased for good once it commits, and every
    node hears of it then."""
    subject = subject_hash(user_id)
    await session.execute(_RECORD, {"subject": subject})
    await session.execute(_NOTIFY, {"channel": CHANNEL, "subject": subject})


async def mark_erased(redis: Redis, user_id: object) -> None:
    """The legacy Redis set (not relied on): best effort."""
    try:
        await redis.sadd(ERASED_KEY, subject_hash(user_id))
    except RedisError as exc:
        logger.warning("could not add to the legacy erased set in redis (%s)", exc)


def refuse_erased(erased: ErasedUsers, principal: Principal) -> Principal:
    """`principal`, unless its subject was erased: Unauthorized (401) then."""
    if principal.user_id in erased:
        raise Unauthorized("this account was erased")
    return principal
