"""Erasure in PostgreSQL: one transaction that leaves no row naming the user.

What the user owned alone (profile, enrollments, certificates, achievements, pending
applications) is deleted with them. What other people or the ledger still need (wallets and
their postings, jobs, accepted or rejected applications, contracts, courses they created)
moves to a fresh tombstone user, so amounts, balances and the counterparties' records stay
exactly as they were while the original id disappears. Free text the user wrote for others
(job descriptions, proposals) is replaced; ledger memos, idempotency keys and outbox
payloads that spell the user's id, email or username are rewritten to the tombstone's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Update, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Role
from azora_nexus.cache import keys
from azora_nexus.domain.education.models import Course, Enrollment
from azora_nexus.domain.ledger.models import LedgerPosting, LedgerTransaction, Wallet
from azora_nexus.domain.marketplace.models import (
    Application,
    ApplicationStatus,
    Contract,
    Job,
    JobStatus,
)
from azora_nexus.domain.privacy.identity import (
    UNUSABLE_PASSWORD_HASH,
    Subject,
    Tombstone,
    subject_hmac,
)
from azora_nexus.domain.users.models import User
from azora_nexus.events.outbox import add_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = "users"
REDACTED = "[erased]"

# Candidates only (a uuid's text inside the payload); `Subject.ties` decides on the values.
_TIED_OUTBOX = text(
    "SELECT id, payload FROM outbox "
    "WHERE user_id IS DISTINCT FROM :uid AND lower(payload::text) LIKE ANY(:patterns)"
)
_SET_OUTBOX_PAYLOAD = text("UPDATE outbox SET payload = CAST(:payload AS jsonb) WHERE id = :id")


@dataclass(frozen=True)
class Erased:
    """What the transaction did: the tombstone that replaces the user, and the user as the
    traces outside PostgreSQL name them (their id and their former wallets')."""

    tombstone: Tombstone
    subject: Subject


def _repoint(model: type[Any], column: str, subject: Subject, tombstone: Tombstone) -> Update:
    return (
        update(model)
        .where(getattr(model, column) == subject.id)
        .values({column: tombstone.id})
        .execution_options(synchronize_session=False)
    )


async def _move_wallets(
    session: AsyncSession, subject: Subject, tomb: Tombstone
) -> list[uuid.UUID]:
    moved = await session.scalars(
        update(Wallet)
        .where(Wallet.user_id == subject.id)
        .values(user_id=tomb.id)
        .returning(Wallet.id)
        .execution_options(synchronize_session=False)
    )
    return list(moved)


async def _move_work(session: AsyncSession, subject: Subject, tomb: Tombstone) -> None:
    """Open jobs are cancelled (nobody can accept for a tombstone) and pending applications
    withdrawn; the rest moves to the tombstone with the user's free text replaced."""
    posted = select(Job.id).where(Job.poster_id == subject.id).scalar_subquery()
    await session.execute(
        update(Application)
        .where(Application.job_id.in_(posted), Application.status == ApplicationStatus.PENDING)
        .values(status=ApplicationStatus.REJECTED)
        .execution_options(synchronize_session=False)
    )
    for job in await session.scalars(select(Job).where(Job.poster_id == subject.id)):
        job.poster_id = tomb.id
        job.title = subject.scrub_text(job.title, tomb)
        job.description = REDACTED
        if job.status is JobStatus.OPEN:
            job.status = JobStatus.CANCELLED
    await session.execute(
        delete(Application)
        .where(Application.applicant_id == subject.id)
        .where(Application.status == ApplicationStatus.PENDING)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Application)
        .where(Application.applicant_id == subject.id)
        .values(applicant_id=tomb.id, proposal=REDACTED)
        .execution_options(synchronize_session=False)
    )
    await session.execute(_repoint(Contract, "poster_id", subject, tomb))
    await session.execute(_repoint(Contract, "worker_id", subject, tomb))
    await session.flush()


async def _rewrite_ledger(
    session: AsyncSession, subject: Subject, tomb: Tombstone, wallet_ids: list[uuid.UUID]
) -> None:
    """Memos, keys and `created_by` of the user's transactions name the tombstone instead;
    amounts and postings are untouched."""
    uid = str(subject.id)
    await session.execute(
        update(LedgerTransaction)
        .where(LedgerTransaction.created_by == uid)
        .values(created_by=str(tomb.id))
        .execution_options(synchronize_session=False)
    )
    # Their keys' scope is their id: it moves to the tombstone with them.
    await session.execute(
        update(LedgerTransaction)
        .where(LedgerTransaction.idempotency_scope == uid)
        .values(idempotency_scope=str(tomb.id))
        .execution_options(synchronize_session=False)
    )
    touched = select(LedgerPosting.transaction_id).where(LedgerPosting.wallet_id.in_(wallet_ids))
    theirs = await session.scalars(
        select(LedgerTransaction).where(
            or_(LedgerTransaction.id.in_(touched), LedgerTransaction.created_by == str(tomb.id))
        )
    )
    for transaction in theirs:
        key = subject.scrub_text(transaction.idempotency_key, tomb)
        if key != transaction.idempotency_key:
            transaction.idempotency_key = key
        memo = transaction.memo
        if memo is not None and subject.scrub_text(memo, tomb) != memo:
            transaction.memo = subject.scrub_text(memo, tomb)
    await session.flush()


async def _move_courses(
    session: AsyncSession, subject: Subject, tomb: Tombstone
) -> list[uuid.UUID]:
    """Courses the user created (with an admin token naming them) name the tombstone."""
    courses = await session.scalars(
        update(Course)
        .where(Course.created_by == str(subject.id))
        .values(created_by=str(tomb.id))
        .returning(Course.id)
        .execution_options(synchronize_session=False)
    )
    return list(courses)


async def rewrite_outbox(session: AsyncSession, subject: Subject, tomb: Tombstone) -> int:
    """Events for the user go; events for others tied to the user by id (`Subject.ties`)
    name the tombstone instead. Answers how many rows it changed."""
    uid = str(subject.id)
    deleted = await session.execute(text("DELETE FROM outbox WHERE user_id = :uid"), {"uid": uid})
    changed: int = getattr(deleted, "rowcount", 0)
    patterns = [f"%{i}%" for i in subject.id_texts()]
    rows = await session.execute(_TIED_OUTBOX, {"uid": uid, "patterns": patterns})
    for row in rows.all():
        if subject.ties(row.payload):
            scrubbed = subject.scrub(row.payload, tomb)
            await session.execute(
                _SET_OUTBOX_PAYLOAD, {"id": row.id, "payload": orjson.dumps(scrubbed).decode()}
            )
            changed += 1
    return changed


async def erase_rows(
    session: AsyncSession, subject: Subject, *, requested_by: Role, subject_key: bytes
) -> Erased:
    """Erase the user in the caller's transaction (the user row locked first, as every
    writer of a user does) and queue `system.user.erased`; invalidates their cache keys
    when it commits."""
    tomb = Tombstone.new()
    session.add(
        User(
            id=tomb.id,
            email=tomb.email,
            username=tomb.username,
            password_hash=UNUSABLE_PASSWORD_HASH,
            is_active=False,
        )
    )
    await session.flush()
    wallet_ids = await _move_wallets(session, subject, tomb)
    subject = subject.with_wallets(wallet_ids)
    await _move_work(session, subject, tomb)
    await _rewrite_ledger(session, subject, tomb, wallet_ids)
    course_ids = await _move_courses(session, subject, tomb)
    await rewrite_outbox(session, subject, tomb)
    enrollment_ids = list(
        await session.scalars(select(Enrollment.id).where(Enrollment.user_id == subject.id))
    )
    # The profile, enrollments, certificates and achievements go with the row (ON DELETE CASCADE).
    await session.execute(
        delete(User).where(User.id == subject.id).execution_options(synchronize_session=False)
    )
    await add_event(
        session,
        "system.user.erased",
        {"subjectHmac": subject_hmac(subject_key, subject.id), "requestedBy": requested_by.value},
        source=SOURCE,
    )
    await session.flush()
    invalidate_after_commit(
        session,
        [
            keys.user(subject.id),
            keys.user_wallets(tomb.id),
            *(keys.wallet(w) for w in wallet_ids),
            *(keys.enrollment(e) for e in enrollment_ids),
            *(keys.course(c) for c in course_ids),
        ],
        patterns=[keys.user_keys(subject.id)],
    )
    return Erased(tombstone=tomb, subject=subject)
