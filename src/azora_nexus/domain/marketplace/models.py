"""Tables for work: jobs, the applications to them, and the contracts paid through escrow."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from azora_nexus.database.base import Base
from azora_nexus.database.types import MONEY, REFRESH_ON_UPDATE, TIMESTAMP, text_enum, uuid_pk
from azora_nexus.domain.ledger.models import Currency, currency_type


class JobStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ContractStatus(StrEnum):
    ESCROWED = "escrowed"
    RELEASED = "released"
    CANCELLED = "cancelled"


class Job(Base):
    """Work a user offers for a positive budget in one currency."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("budget > 0", name="budget_positive"),
        # The open-jobs list: one status, in creation order, paged by (created_at, id).
        Index("ix_jobs_status_created_at_id", "status", "created_at", "id"),
    )
    __mapper_args__ = REFRESH_ON_UPDATE

    id: Mapped[uuid.UUID] = uuid_pk()
    poster_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    budget: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[Currency] = mapped_column(currency_type())
    status: Mapped[JobStatus] = mapped_column(
        text_enum(JobStatus, "status"), default=JobStatus.OPEN, server_default=JobStatus.OPEN.value
    )
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP, server_default=func.now(), onupdate=func.now()
    )


class Application(Base):
    """A user's one proposal for a job, with a positive bid; deleted with its job."""

    __tablename__ = "applications"
    __table_args__ = (
        # Also the index for the job_id FK, its first column.
        UniqueConstraint("job_id", "applicant_id"),
        CheckConstraint("bid > 0", name="bid_positive"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    applicant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    proposal: Mapped[str] = mapped_column(Text)
    bid: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[ApplicationStatus] = mapped_column(
        text_enum(ApplicationStatus, "status"),
        default=ApplicationStatus.PENDING,
        server_default=ApplicationStatus.PENDING.value,
    )
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class Contract(Base):
    """An accepted application: its amount is held in escrow until the poster releases it.

    One contract per job and per application. The ledger transactions that hold and release
    the money are kept, so a contract can be audited against the ledger.
    """

    __tablename__ = "contracts"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), unique=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), unique=True)
    poster_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    worker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[Currency] = mapped_column(currency_type())
    status: Mapped[ContractStatus] = mapped_column(
        text_enum(ContractStatus, "status"),
        default=ContractStatus.ESCROWED,
        server_default=ContractStatus.ESCROWED.value,
    )
    escrow_transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), index=True
    )
    release_transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
