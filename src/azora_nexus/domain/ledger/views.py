"""Ledger rows and results as the wire shows them: amounts as strings at each currency's scale."""

from __future__ import annotations

from azora_nexus.domain.ledger.amounts import format_amount
from azora_nexus.domain.ledger.models import Wallet
from azora_nexus.domain.ledger.postings import PostedTransaction
from azora_nexus.domain.ledger.schemas import PostingPublic, TransactionPublic, WalletPublic


def wallet_public(wallet: Wallet) -> WalletPublic:
    return WalletPublic(
        id=wallet.id,
        user_id=wallet.user_id,
        currency=wallet.currency,
        balance=format_amount(wallet.balance, wallet.currency),
        created_at=wallet.created_at,
    )


def transaction_public(posted: PostedTransaction) -> TransactionPublic:
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
