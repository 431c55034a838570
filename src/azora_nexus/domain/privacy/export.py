"""Everything Nexus holds about one user, as one JSON document."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from azora_nexus.auth.tokens import Principal
from azora_nexus.database.engine import Database
from azora_nexus.documents.client import Document, Documents
from azora_nexus.domain.education.models import Achievement, Certificate, Enrollment
from azora_nexus.domain.education.schemas import CertificatePublic, EnrollmentPublic
from azora_nexus.domain.ledger.models import LedgerPosting, LedgerTransaction, Wallet
from azora_nexus.domain.ledger.views import transaction_public, wallet_public
from azora_nexus.domain.marketplace.escrow import contract_public
from azora_nexus.domain.marketplace.models import Application, Contract, Job
from azora_nexus.domain.marketplace.service import application_public, job_public
from azora_nexus.domain.privacy.rights import require_self_or_admin
from azora_nexus.domain.users.models import User
from azora_nexus.domain.users.service import public_user
from azora_nexus.errors import NotFound
from azora_nexus.events.bus import EventBus
from azora_nexus.events.history import EventFilter

EVENT_PAGE = 1000
# Where the document collections name a user; nothing writes `content` yet, so every
# spelling an author might use is looked at.
CONTENT_OWNER_FIELDS = ("userId", "ownerId", "authorId", "createdBy")

Json = dict[str, Any]


def _wire(model: Any) -> Json:
    dumped: Json = model.model_dump(mode="json", by_alias=True)
    return dumped


def transaction_view(transaction: LedgerTransaction) -> Json:
    """A ledger transaction with every posting, amounts at their currency's scale."""
    return _wire(transaction_public(transaction))


def plain_document(value: Any) -> Any:
    """A Mongo document as JSON can carry it: ObjectIds and datetimes as strings."""
    if isinstance(value, dict):
        return {str(k): plain_document(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_document(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def _wallets(session: AsyncSession, user_id: uuid.UUID) -> list[Json]:
    wallets = list(
        await session.scalars(
            select(Wallet).where(Wallet.user_id == user_id).order_by(Wallet.created_at, Wallet.id)
        )
    )
    touching = (
        select(LedgerPosting.transaction_id)
        .where(LedgerPosting.wallet_id.in_([w.id for w in wallets]))
        .scalar_subquery()
    )
    transactions = list(
        await session.scalars(
            select(LedgerTransaction)
            .where(LedgerTransaction.id.in_(touching))
            .options(selectinload(LedgerTransaction.postings))
            .order_by(LedgerTransaction.created_at, LedgerTransaction.id)
        )
    )
    views = []
    for wallet in wallets:
        view = _wire(wallet_public(wallet))
        view["transactions"] = [
            transaction_view(t)
            for t in transactions
            if any(p.wallet_id == wallet.id for p in t.postings)
        ]
        views.append(view)
    return views


async def _learning(session: AsyncSession, user_id: uuid.UUID) -> Json:
    enrollments = await session.scalars(
        select(Enrollment).where(Enrollment.user_id == user_id).order_by(Enrollment.created_at)
    )
    certificates = await session.scalars(
        select(Certificate).where(Certificate.user_id == user_id).order_by(Certificate.issued_at)
    )
    achievements = await session.scalars(
        select(Achievement).where(Achievement.user_id == user_id).order_by(Achievement.awarded_at)
    )
    return {
        "enrollments": [_wire(EnrollmentPublic.model_validate(e)) for e in enrollments],
        "certificates": [_wire(CertificatePublic.model_validate(c)) for c in certificates],
        "achievements": [
            {"id": str(a.id), "kind": a.kind, "awardedAt": a.awarded_at.isoformat()}
            for a in achievements
        ],
    }


async def _work(session: AsyncSession, user_id: uuid.UUID) -> Json:
    jobs = await session.scalars(
        select(Job).where(Job.poster_id == user_id).order_by(Job.created_at, Job.id)
    )
    applications = await session.execute(
        select(Application, Job)
        .join(Job, Job.id == Application.job_id)
        .where(Application.applicant_id == user_id)
        .order_by(Application.created_at, Application.id)
    )
    contracts = await session.scalars(
        select(Contract)
        .where(or_(Contract.poster_id == user_id, Contract.worker_id == user_id))
        .order_by(Contract.created_at, Contract.id)
    )
    return {
        "jobs": [_wire(job_public(j)) for j in jobs],
        "applications": [_wire(application_public(a, j)) for a, j in applications.all()],
        "contracts": [_wire(contract_public(c)) for c in contracts],
    }


async def _events(events: EventBus, user_id: uuid.UUID) -> list[Json]:
    """Every event that concerns the user, from the stream and the archive beyond it."""
    found: list[Json] = []
    after: str | None = None
    while True:
        page = await events.read(after, EVENT_PAGE, EventFilter(user_id=str(user_id)))
        found += [e.to_wire() for e in page]
        if len(page) < EVENT_PAGE:
            return found
        after = page[-1].id


async def _documents(documents: Documents, user_id: uuid.UUID) -> Json:
    uid = str(user_id)
    activity = documents.activity.find({"userId": uid}).sort("timestamp", 1)
    content = documents.content.find({"$or": [{f: uid} for f in CONTENT_OWNER_FIELDS]})
    listed: list[Document] = [d async for d in activity]
    owned: list[Document] = [d async for d in content]
    return {"activity": plain_document(listed), "content": plain_document(owned)}


async def export_user(
    db: Database,
    events: EventBus,
    documents: Documents,
    user_id: uuid.UUID,
    *,
    actor: Principal,
) -> Json:
    """The user's profile, money, learning, work, events and documents (the user or an
    admin); NotFound for an unknown user."""
    require_self_or_admin(actor, user_id)
    async with db.sessions() as session, session.begin():
        user = await session.scalar(
            select(User).where(User.id == user_id).options(selectinload(User.profile))
        )
        if user is None:
            raise NotFound(f"no user {user_id}")
        exported: Json = {
            "exportedAt": datetime.now(UTC).isoformat(),
            "user": _wire(public_user(user)),
            "wallets": await _wallets(session, user_id),
            **await _learning(session, user_id),
            **await _work(session, user_id),
        }
    exported["events"] = await _events(events, user_id)
    exported |= await _documents(documents, user_id)
    return exported
