"""Tables for money: wallets, system accounts, and the double-entry ledger between them.

Every movement is one `LedgerTransaction` with postings that sum to zero per currency.
A posting hits exactly one account: a user's `Wallet` or a `SystemAccount`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from azora_nexus.database.base import Base
from azora_nexus.database.types import MONEY, TIMESTAMP, text_enum, uuid_pk


class Currency(StrEnum):
    AZR = "AZR"
    USD = "USD"
    BTC = "BTC"
    ETH = "ETH"


class SystemAccountKind(StrEnum):
    MINING_POOL = "mining_pool"
    UBI_POOL = "ubi_pool"
    ESCROW = "escrow"


class TransactionKind(StrEnum):
    TRANSFER = "transfer"
    MINING_REWARD = "mining_reward"
    UBI = "ubi"
    ESCROW_HOLD = "escrow_hold"
    ESCROW_RELEASE = "escrow_release"
    ADJUSTMENT = "adjustment"


def currency_type() -> Enum:
    """The currency column type: one of `Currency`, checked by the database too."""
    return text_enum(Currency, "currency")


class Wallet(Base):
    """A user's balance in one currency; never negative, and never deleted with its user.

    Ledger history must outlive an erased user, so the user FK restricts deletion; erasure
    anonymises the user row instead.
    """

    __tablename__ = "wallets"
    __table_args__ = (
        UniqueConstraint("user_id", "currency"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # Indexed by the unique (user_id, currency) constraint, whose first column it is.
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    currency: Mapped[Currency] = mapped_column(currency_type())
    balance: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class SystemAccount(Base):
    """An account of the platform itself: the mining and UBI pools, and escrow.

    The pools are issuing accounts: their postings are the other side of money created
    for users, so their balance is minus what they have issued and goes negative by design.
    No CHECK on `balance` here, unlike `Wallet`.
    """

    __tablename__ = "system_accounts"
    __table_args__ = (UniqueConstraint("kind", "currency"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[SystemAccountKind] = mapped_column(text_enum(SystemAccountKind, "kind"))
    currency: Mapped[Currency] = mapped_column(currency_type())
    balance: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class LedgerTransaction(Base):
    """One movement of money; the same `idempotency_key` in the same `idempotency_scope`
    always names the same one.

    The scope is whose keys these are: the token subject that chose the key (transfers,
    mining rewards), or "" for the keys Nexus makes itself (escrow, UBI, adjustments). So one
    client's key never collides with another's, nor with Nexus's own. `request_hash`
    fingerprints the request that created it, so a retried key with a different body is told
    apart from a true retry.
    """

    __tablename__ = "ledger_transactions"
    __table_args__ = (UniqueConstraint("idempotency_key", "idempotency_scope"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[TransactionKind] = mapped_column(text_enum(TransactionKind, "kind"))
    idempotency_key: Mapped[str] = mapped_column(Text)
    idempotency_scope: Mapped[str] = mapped_column(Text, default="", server_default="")
    request_hash: Mapped[str] = mapped_column(Text)
    memo: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    # Text, not a FK: services and admins act under token subjects that are not users.
    created_by: Mapped[str | None] = mapped_column(Text)

    postings: Mapped[list[LedgerPosting]] = relationship(
        back_populates="transaction",
        lazy="raise",
        passive_deletes=True,
        order_by="LedgerPosting.id",
    )


class LedgerPosting(Base):
    """One signed amount on one account (a wallet or a system account, never both)."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint(
            "(wallet_id IS NULL) <> (system_account_id IS NULL)", name="exactly_one_account"
        ),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        # A wallet's history, newest first, paged by id; also serves the wallet_id FK.
        Index("ix_ledger_postings_wallet_id_id", "wallet_id", "id"),
        Index("ix_ledger_postings_system_account_id_id", "system_account_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    wallet_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("wallets.id", ondelete="RESTRICT")
    )
    system_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("system_accounts.id", ondelete="RESTRICT")
    )
    currency: Mapped[Currency] = mapped_column(currency_type())
    amount: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="postings", lazy="raise")


class DistributionStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class PayoutJob(Base):
    """One UBI distribution as a resumable job: the same `idempotency_key` names one job.

    Users are paid in id order; `cursor` is the last user id whose batch committed, so a
    node that takes the job over (its claim's `heartbeat_at` older than the lease) resumes
    after it. Each user's credit keeps its own ledger key, so nobody is paid twice anyway.
    """

    __tablename__ = "distributions"
    __table_args__ = (
        CheckConstraint("amount_per_user > 0", name="amount_positive"),
        # The workers' question, "a running job nobody holds?", without scanning old jobs.
        Index(
            "ix_distributions_running", "created_at", postgresql_where=text("status = 'running'")
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    request_hash: Mapped[str] = mapped_column(Text)
    currency: Mapped[Currency] = mapped_column(currency_type())
    amount_per_user: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[DistributionStatus] = mapped_column(
        text_enum(DistributionStatus, "status"), server_default=DistributionStatus.RUNNING.value
    )
    total_users: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    already_paid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    cursor: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    claimed_by: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
