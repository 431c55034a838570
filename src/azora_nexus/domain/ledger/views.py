"""Ledger rows and results as the wire shows them: amounts as strings at each currency's scale."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from azora_nexus.domain.ledger.amounts import format_amount
from azora_nexus.domain.ledger.models import Currency, TransactionKind, Wallet
from azora_nexus.domain.ledger.schemas import PostingPublic, TransactionPublic, WalletPublic


class PostingLike(Protocol):
    """A posting as `post_transaction` answers it or as its row reads (LedgerPosting)."""

    @property
    def wallet_id(self) -> uuid.UUID | None: ...
    @property
    def system_account_id(self) -> uuid.UUID | None: ...
    @property
    def currency(self) -> Currency: ...
    @property
    def amount(self) -> Decimal: ...


class TransactionLike(Protocol):
    """A transaction as `post_transaction` answers it or as its row reads (LedgerTransaction)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> TransactionKind: ...
    @property
    def idempotency_key(self) -> str: ...
    @property
    def memo(self) -> str | None: ...
    @property
    def created_by(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def postings(self) -> Sequence[PostingLike]: ...


def wallet_public(wallet: Wallet) -> WalletPublic:
    return WalletPublic(
        id=wallet.id,
        user_id=wallet.user_id,
        currency=wallet.currency,
        balance=format_amount(wallet.balance, wallet.currency),
        created_at=wallet.created_at,
    )


def transaction_public(posted: TransactionLike) -> TransactionPublic:
    return TransactionPublic(
        id=posted.id,
        kind=posted.kind,
        idempotency_key=posted.idempotency_key,
        memo=posted.memo,
        created_by=posted.created_by,
        created_at=posted.created_at,
        postings=[
            PostingPublic(
                wallet_id=p.wallet_id,
                system_account_id=p.system_account_id,
                currency=p.currency,
                amount=format_amount(p.amount, p.currency),
            )
            for p in posted.postings
        ],
    )
