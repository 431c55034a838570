"""The Python facade other Azora services call (the seed's `dbIntegration`).

Each method is one call into the domain services the HTTP API uses, in its own transaction,
with the same rules: events through the outbox, cache invalidated after commit, NexusErrors
for refusals. The facade acts as a `service` principal::

    async with open_integration(Settings()) as azora:
        user = await azora.create_user("thandi@example.com", "thandi", "a long passphrase")
        await azora.update_balance(user.id, Currency.AZR, "10", idempotency_key="welcome:thandi")
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.config import Settings
from azora_nexus.domain.education import progress
from azora_nexus.domain.education import service as education
from azora_nexus.domain.education.schemas import CourseCreate, CoursePublic, EnrollmentPublic
from azora_nexus.domain.ledger.adjustments import adjust_balance
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, Wallet
from azora_nexus.domain.ledger.schemas import TransactionPublic, WalletPublic
from azora_nexus.domain.ledger.views import wallet_public
from azora_nexus.domain.marketplace import service as marketplace
from azora_nexus.domain.marketplace.schemas import (
    ApplicationCreate,
    ApplicationPublic,
    JobCreate,
    JobPublic,
)
from azora_nexus.domain.users import service as users
from azora_nexus.domain.users.schemas import RegisterRequest, UserPublic
from azora_nexus.errors import Invalid
from azora_nexus.events.envelope import Event
from azora_nexus.nexus import Nexus, open_nexus

BodyT = TypeVar("BodyT", bound=BaseModel)

# Who the facade's writes are recorded as (`created_by`), and what it may do: anything.
FACADE = Principal(user_id="integration", role=Role.SERVICE)


def as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    """An id as given or parsed; Invalid for text that is not one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid(f"not an id: {value!r}") from None


def as_currency(value: Currency | str) -> Currency:
    try:
        return Currency(value)
    except ValueError:
        raise Invalid(f"unknown currency {value!r}") from None


def build(model: type[BodyT], **fields: Any) -> BodyT:
    """A request body checked as the HTTP API checks it; Invalid (not a pydantic error)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise Invalid("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc


@dataclass(frozen=True)
class Integration:
    """Nexus for in-process callers: users, courses, wallets, jobs and events."""

    nexus: Nexus

    async def get_user(self, user_id: uuid.UUID | str) -> UserPublic:
        """The user with profile (cache-aside); NotFound for an unknown or erased user."""
        return await users.get_user(
            self.nexus.db, self.nexus.cache, as_uuid(user_id), viewer=FACADE
        )

    async def create_user(self, email: str, username: str, password: str) -> UserPublic:
        """A registered user (argon2id hash, `system.user.registered`); DuplicateKey if taken."""
        body = build(RegisterRequest, email=email, username=username, password=password)
        async with self.nexus.db.sessions() as session:
            created = await users.register(
                session, body, secret=self.nexus.jwt_secret, passwords=self.nexus.passwords
            )
        return created.user

    async def create_course(
        self, title: str, lessons: list[tuple[str, str]], description: str = ""
    ) -> CoursePublic:
        """A course with its lessons (title, content) in order."""
        body = build(
            CourseCreate,
            title=title,
            description=description,
            lessons=[{"title": t, "content": c} for t, c in lessons],
        )
        async with self.nexus.db.sessions() as session:
            return await education.create_course(session, body, actor=FACADE)

    async def get_course(self, course_id: uuid.UUID | str) -> CoursePublic:
        """One course with its lessons (cache-aside); NotFound otherwise."""
        return await education.get_course(self.nexus.db, self.nexus.cache, as_uuid(course_id))

    async def enroll_course(
        self, user_id: uuid.UUID | str, course_id: uuid.UUID | str
    ) -> EnrollmentPublic:
        """The user's one enrollment in the course; DuplicateKey the second time."""
        async with self.nexus.db.sessions() as session:
            return await education.enroll(session, as_uuid(course_id), user_id=as_uuid(user_id))

    async def update_enrollment_progress(
        self, enrollment_id: uuid.UUID | str, value: int
    ) -> EnrollmentPublic:
        """Progress forward only (0..100); 100 issues the certificate once."""
        async with self.nexus.db.sessions() as session:
            return await progress.update_progress(
                session, as_uuid(enrollment_id), value, actor=FACADE
            )

    async def get_wallet(
        self, user_id: uuid.UUID | str, currency: Currency | str
    ) -> WalletPublic | None:
        """The user's wallet in `currency` with its balance, or None when it has none."""
        async with self.nexus.db.sessions() as session:
            wallet = await session.scalar(
                select(Wallet).where(
                    Wallet.user_id == as_uuid(user_id), Wallet.currency == as_currency(currency)
                )
            )
            return None if wallet is None else wallet_public(wallet)

    async def update_balance(
        self,
        user_id: uuid.UUID | str,
        currency: Currency | str,
        delta: Decimal | str,
        *,
        idempotency_key: str,
        memo: str | None = None,
        counter: SystemAccountKind = SystemAccountKind.MINING_POOL,
    ) -> TransactionPublic:
        """Move the balance by signed `delta` as a balanced posting against a pool, once per
        `idempotency_key`; InsufficientFunds for a debit past the balance."""
        async with self.nexus.db.sessions() as session:
            return await adjust_balance(
                session,
                as_uuid(user_id),
                as_currency(currency),
                delta,
                idempotency_key=idempotency_key,
                memo=memo,
                counter=counter,
                created_by=FACADE.user_id,
            )

    async def post_job(
        self,
        poster_id: uuid.UUID | str,
        title: str,
        budget: Decimal | str,
        currency: Currency | str,
        description: str = "",
    ) -> JobPublic:
        """An open job posted by the user (`marketplace.job.posted`)."""
        body = build(
            JobCreate,
            title=title,
            description=description,
            budget=str(budget),
            currency=as_currency(currency),
        )
        async with self.nexus.db.sessions() as session:
            return await marketplace.post_job(session, body, poster_id=as_uuid(poster_id))

    async def apply_to_job(
        self,
        job_id: uuid.UUID | str,
        applicant_id: uuid.UUID | str,
        proposal: str,
        bid: Decimal | str,
    ) -> ApplicationPublic:
        """The applicant's one application to another's open job."""
        body = build(ApplicationCreate, proposal=proposal, bid=str(bid))
        async with self.nexus.db.sessions() as session:
            return await marketplace.apply(
                session, as_uuid(job_id), body, applicant_id=as_uuid(applicant_id)
            )

    async def publish(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        source: str,
        user_id: str | None = None,
    ) -> Event:
        """An event with no write behind it, straight onto the stream; Invalid if unknown."""
        return await self.nexus.events.publish(event_type, payload, source=source, user_id=user_id)


@asynccontextmanager
async def open_integration(
    settings: Settings, *, migrate: bool = False, background: bool = True
) -> AsyncIterator[Integration]:
    """Nexus opened for in-process use (backends, cache, outbox relay), closed on exit."""
    async with open_nexus(settings, migrate=migrate, background=background) as nexus:
        yield Integration(nexus)
