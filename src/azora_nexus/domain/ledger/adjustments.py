"""Adjustments: an operator's correction of one wallet, posted against a system account.

Never a blind SET of a balance: the change is a balanced ledger transaction (the wallet on
one side, an issuing pool on the other) under an idempotency key, so it is audited like every
other movement and a retried call changes nothing twice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.cache import keys
from azora_nexus.domain.access import active_user
from azora_nexus.domain.ledger.accounts import system_account_id
from azora_nexus.domain.ledger.amounts import MONEY_CONTEXT, format_amount, parse_amount
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind, Wallet
from azora_nexus.domain.ledger.postings import Posting, post_transaction
from azora_nexus.domain.ledger.rewards import fingerprint
from azora_nexus.domain.ledger.schemas import TransactionPublic
from azora_nexus.domain.ledger.service import open_wallet
from azora_nexus.domain.ledger.views import transaction_public
from azora_nexus.errors import InsufficientFunds, Invalid
from azora_nexus.events.outbox import add_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = "adjustments"

# Pools issue money, so they may go negative; escrow holds others' money and may not fund this.
COUNTER_ACCOUNTS = (SystemAccountKind.MINING_POOL, SystemAccountKind.UBI_POOL)


async def adjust_balance(
    session: AsyncSession,
    user_id: uuid.UUID,
    currency: Currency,
    delta: Decimal | str,
    *,
    idempotency_key: str,
    memo: str | None = None,
    counter: SystemAccountKind = SystemAccountKind.MINING_POOL,
    created_by: str | None = None,
) -> TransactionPublic:
    """Move the user's balance by `delta` (signed) against the `counter` pool, once per key.

    A credit opens the wallet when missing; a debit past the balance is InsufficientFunds.
    """
    if counter not in COUNTER_ACCOUNTS:
        raise Invalid(f"an adjustment is posted against a pool, not {counter.value}")
    try:
        signed = Decimal(delta)
    except InvalidOperation as exc:
        raise Invalid("delta: not a decimal number") from exc
    if not signed.is_finite():
        raise Invalid("delta: must be a finite decimal")
    amount = parse_amount(signed.copy_abs(), currency, field="delta")
    request = {
        "user": str(user_id),
        "currency": currency.value,
        "delta": str(signed.normalize(MONEY_CONTEXT)),
    }
    async with session.begin():
        await active_user(session, user_id)
        wallet_id = await _wallet_for(session, user_id, currency, credit=signed > 0)
        pool = await system_account_id(session, counter, currency)
        posted = await post_transaction(
            session,
            kind=TransactionKind.ADJUSTMENT,
            idempotency_key=idempotency_key,
            request_hash=fingerprint({"adjustment": request | {"counter": counter.value}}),
            postings=[
                Posting(currency, signed.copy_negate(), system_account_id=pool),
                Posting(currency, signed, wallet_id=wallet_id),
            ],
            memo=memo,
            created_by=created_by,
        )
        if not posted.replayed:
            await add_event(
                session,
                "finance.transaction.completed",
                {
                    "transactionId": str(posted.id),
                    "walletId": str(wallet_id),
                    "amount": format_amount(amount, currency),
                    "direction": "credit" if signed > 0 else "debit",
                    "currency": currency.value,
                    "memo": memo,
                },
                source=SOURCE,
                user_id=str(user_id),
            )
            invalidate_after_commit(session, [keys.wallet(wallet_id), keys.user_wallets(user_id)])
    return transaction_public(posted)


async def _wallet_for(
    session: AsyncSession, user_id: uuid.UUID, currency: Currency, *, credit: bool
) -> uuid.UUID:
    if credit:
        return await open_wallet(session, user_id, currency)
    wallet_id = await session.scalar(
        select(Wallet.id).where(Wallet.user_id == user_id, Wallet.currency == currency)
    )
    if wallet_id is None:
        raise InsufficientFunds(f"user {user_id} has no {currency.value} wallet to debit")
    return wallet_id
