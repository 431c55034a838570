"""Wire types of money: wallets, transfers, ledger transactions, rewards."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from azora_nexus.domain.ledger.models import Currency, DistributionStatus, TransactionKind
from azora_nexus.domain.schemas import WireModel


def storable(value: str) -> str:
    """Text PostgreSQL can store: UTF-8 has no lone surrogates (JSON escapes can make them)."""
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return value


# A decimal string: digits, at most one point; the currency's scale is checked by the service
# (it depends on the wallet), which answers 422 for more places than the currency has.
AmountText = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,20}(\.[0-9]{1,30})?$",
        examples=["100.00"],
        description="a positive decimal string",
    ),
]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
Memo = Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$"), AfterValidator(storable)]


class WalletCreate(WireModel):
    """`POST /api/wallets`: the caller's wallet in one currency."""

    currency: Currency


class WalletPublic(WireModel):
    id: uuid.UUID
    user_id: uuid.UUID
    currency: Currency
    balance: str
    created_at: datetime


class TransferRequest(WireModel):
    """`POST /api/wallets/transfer`: the same `idempotencyKey` always names one transfer."""

    from_wallet_id: uuid.UUID
    to_wallet_id: uuid.UUID
    amount: AmountText
    idempotency_key: IdempotencyKey
    memo: Memo | None = None


class PostingPublic(WireModel):
    """One signed amount on one account (a wallet, or a system account of the platform)."""

    wallet_id: uuid.UUID | None
    system_account_id: uuid.UUID | None
    currency: Currency
    amount: str


class TransactionPublic(WireModel):
    """One ledger transaction and its postings, which sum to zero per currency."""

    id: uuid.UUID
    kind: TransactionKind
    idempotency_key: str
    memo: str | None
    created_by: str | None
    created_at: datetime
    postings: list[PostingPublic]


class WalletEntry(WireModel):
    """One line of a wallet's history: what one transaction did to this wallet."""

    transaction_id: uuid.UUID
    kind: TransactionKind
    amount: str
    currency: Currency
    memo: str | None
    created_at: datetime


class MiningReward(WireModel):
    """`POST /api/rewards/mining`: credit a user from the mining pool."""

    user_id: uuid.UUID
    currency: Currency
    amount: AmountText
    idempotency_key: IdempotencyKey | None = None


class UbiRequest(WireModel):
    """`POST /api/rewards/ubi`: credit every active user, once per `idempotencyKey`."""

    currency: Currency
    amount_per_user: AmountText
    idempotency_key: IdempotencyKey


class DistributionPublic(WireModel):
    """A UBI distribution as a job: `POST /api/rewards/ubi` answers it at once (202) and
    `GET /api/rewards/distributions/{id}` follows it. `paid` users were credited by this
    distribution, `alreadyPaid` found credited under its key before (a batch retried)."""

    id: uuid.UUID
    idempotency_key: str
    status: DistributionStatus
    currency: Currency
    amount_per_user: str
    total_users: int = Field(description="active users when the distribution was started")
    paid: int
    already_paid: int
    progress: float = Field(ge=0, le=1, description="share of users done, 1 when completed")
    error: str | None
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
