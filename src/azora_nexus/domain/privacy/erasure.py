"""`erase_user`: the user (with their password) or an admin erases the user's personal data.

The order: check who asks, confirm the password (counted like a sign-in attempt, so the
route cannot be used to guess it), refuse the user's tokens on this node, erase the rows
and record the erasure in one transaction (rows.py, revocation.py: every node refuses the
tokens from its commit on) with the work left outside it (pending.py), then the traces
outside PostgreSQL (traces.py), and last Redis's append-only file is rewritten so they leave
its disk too; a backend failing meanwhile leaves that work to be retried. This node
refuses the tokens before the commit so that no request slips in between; if the
transaction fails, the refusal is taken back.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from azora_nexus.auth.hashing import Passwords
from azora_nexus.auth.passwords import verify_password
from azora_nexus.auth.ratelimit import LoginLimits, count_attempt
from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.domain.privacy.identity import Subject, subject_hash, subject_hmac
from azora_nexus.domain.privacy.models import ErasedUser
from azora_nexus.domain.privacy.pending import finish_traces, record_pending
from azora_nexus.domain.privacy.revocation import (
    ERASED_KEY,
    ErasedUsers,
    mark_erased,
    record_erased,
)
from azora_nexus.domain.privacy.rights import require_self_or_admin
from azora_nexus.domain.privacy.rows import Erased, erase_rows
from azora_nexus.domain.privacy.traces import TraceStores, rewrite_aof
from azora_nexus.domain.users.models import User
from azora_nexus.errors import Forbidden, Invalid, NotFound

logger = logging.getLogger(__name__)

# A concurrent writer (say, accepting an application to the user's job) can lock the same
# rows in the other order; PostgreSQL then aborts one of the two, and erasure tries again.
RETRYABLE_SQLSTATES = {"40P01", "40001"}
ATTEMPTS = 3
_RECORD_HASHES = text(
    "INSERT INTO erased_users (subject_sha256)"
    " SELECT unnest(CAST(:subjects AS text[])) ON CONFLICT DO NOTHING"
)


async def _confirm_password(
    redis: Redis,
    user: User,
    password: str | None,
    *,
    address: str,
    passwords: Passwords | None,
) -> None:
    """Forbidden (403) for a wrong password: the bearer token is valid, so 401 (which
    tells a client to drop its session) would be the wrong answer."""
    if password is None:
        raise Invalid("password: required to erase your own account")
    attempt = await count_attempt(redis, user.email, address, LoginLimits())
    verify = passwords.verify if passwords else verify_password
    if not await verify(user.password_hash, password):
        raise Forbidden("the password does not match")
    await attempt.succeeded()


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state if isinstance(state, str) else None


async def _erase_in_transaction(
    stores: TraceStores, user_id: uuid.UUID, requested_by: Role
) -> Erased:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with stores.db.transaction() as session:
                user = await session.scalar(
                    select(User).where(User.id == user_id).with_for_update()
                )
                if user is None:
                    raise NotFound(f"no user {user_id}")
                subject = Subject(id=user.id, email=user.email, username=user.username)
                erased = await erase_rows(
                    session, subject, requested_by=requested_by, subject_key=stores.subject_key
                )
                await record_erased(session, user_id)
                record_pending(session, erased, user.created_at)
                return erased
        except DBAPIError as exc:
            if attempt == ATTEMPTS or _sqlstate(exc) not in RETRYABLE_SQLSTATES:
                raise
    raise AssertionError("unreachable")


async def erase_user(
    stores: TraceStores,
    user_id: uuid.UUID,
    *,
    actor: Principal,
    password: str | None,
    address: str,
    erased_users: ErasedUsers | None = None,
    passwords: Passwords | None = None,
) -> None:
    """After this returns, nothing Nexus keeps names the user, their tokens are refused on
    every node, the ledger still balances, and `system.user.erased` is on its way. NotFound
    for an unknown user; Forbidden unless the user (with the right password) or an admin."""
    require_self_or_admin(actor, user_id)
    async with stores.db.sessions() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    if actor.role is not Role.ADMIN:
        await _confirm_password(stores.redis, user, password, address=address, passwords=passwords)
    subject_sha256 = subject_hash(user_id)
    if erased_users is not None:
        erased_users.hashes.add(subject_sha256)
    try:
        erased = await _erase_in_transaction(stores, user_id, actor.role)
    except BaseException:
        # A concurrent erasure of the same user may have won: its mark must stay.
        async with stores.db.sessions() as session:
            if await session.get(User, user_id) is not None and erased_users is not None:
                erased_users.hashes.discard(subject_sha256)
        raise
    await mark_erased(stores.redis, user_id)
    # A backend failing now answers 503, and the traces are removed once it is back.
    await finish_traces(stores, erased.tombstone.id)


@dataclass(frozen=True)
class Remembered:
    """The erasures some record remembers: sha256 of ids (`erased_users`, the legacy Redis
    set, archived announcements made before `subjectHmac`) and the archive's `subjectHmac`s."""

    hashes: set[str]
    hmacs: set[str]

    def names(self, user_id: object, key: bytes) -> bool:
        """Whether `user_id` is among the erased."""
        return subject_hash(user_id) in self.hashes or subject_hmac(key, user_id) in self.hmacs


async def erased_everywhere(stores: TraceStores) -> Remembered:
    """Every erasure anything remembers: the table, the archive's `system.user.erased`
    events (a restore to a moment brings the documents back as of the backup, later than
    the table), and the legacy Redis set."""
    async with stores.db.sessions() as session:
        hashes = set(await session.scalars(select(ErasedUser.subject_sha256)))
    hmacs: set[str] = set()
    cursor = stores.documents.events.find({"type": "system.user.erased"}, {"payload": 1})
    async for document in cursor:
        payload = document.get("payload") or {}
        for field, found in (("subjectHmac", hmacs), ("subjectSha256", hashes)):
            if isinstance(subject := payload.get(field), str):
                found.add(subject)
    with contextlib.suppress(RedisError):
        members: Any = await stores.redis.smembers(ERASED_KEY)
        hashes |= {m.decode() if isinstance(m, bytes) else str(m) for m in members}
    return Remembered(hashes=hashes, hmacs=hmacs)


async def reconcile_erasures(stores: TraceStores) -> int:
    """At a node's start: if any record knows an erasure `erased_users` does not (after a
    restore to a moment before it), erase those users again; how many were."""
    async with stores.db.sessions() as session:
        recorded = set(await session.scalars(select(ErasedUser.subject_sha256)))
    remembered = await erased_everywhere(stores)
    # An HMAC names nobody until it is matched against the users there are: look when any.
    if remembered.hashes <= recorded and not remembered.hmacs:
        return 0
    again = await reapply_erasures(stores)
    if again:
        logger.warning("restored data knew of erasures it had lost: %d users erased again", again)
    return again


async def reapply_erasures(stores: TraceStores, *, batch: int = 1000) -> int:
    """Erase again every user that any record says was erased; answers how many.

    A restore from a backup taken before an erasure (or to a moment before it) brings the
    user's rows back, and loses the erasure from `erased_users`; the archive, restored as
    of the backup, still announces it: run this after every restore. It also records every
    erasure found in `erased_users`, so the tokens are refused again.
    """
    remembered = await erased_everywhere(stores)
    async with stores.db.transaction() as session:
        await session.execute(_RECORD_HASHES, {"subjects": sorted(remembered.hashes)})
    async with stores.db.sessions() as session:
        user_ids = list(await session.scalars(select(User.id).order_by(User.id)))
    again = 0
    for at in range(0, len(user_ids), batch):
        chunk = user_ids[at : at + batch]
        for user_id in chunk:
            if remembered.names(user_id, stores.subject_key):
                try:
                    erased = await _erase_in_transaction(stores, user_id, Role.ADMIN)
                except NotFound:  # another node (a worker beside this one) got there first
                    continue
                await finish_traces(stores, erased.tombstone.id, rewrite=False)
                again += 1
    if again:
        await rewrite_aof(stores)
    return again
