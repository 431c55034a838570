"""Universal basic income: every active user credited once per distribution key.

The work goes in batches of users in id order, one database transaction each, so a
distribution over many users never holds the UBI pool's lock for long. Each user's credit
is its own ledger transaction keyed `ubi:<key>:<user id>`: a retry after a crash (or a
second request with the same key) walks the same users again, and every user paid before
is a replay that writes nothing. Nobody is paid twice, and the retry finishes the job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.cache import keys
from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.accounts import ensure_wallets, system_account_id
from azora_nexus.domain.ledger.amounts import MONEY_CONTEXT, format_amount, parse_amount
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.postings import Posting, lock_accounts, post_transaction
from azora_nexus.domain.ledger.rewards import fingerprint
from azora_nexus.domain.ledger.schemas import UbiRequest, UbiResult
from azora_nexus.domain.ledger.service import announce_wallet
from azora_nexus.events.outbox import new_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = "rewards"
BATCH_SIZE = 200

_ACTIVE_USERS = text(
    "SELECT id FROM users WHERE is_active AND id > :after ORDER BY id LIMIT :limit"
)
_FIRST_ID = uuid.UUID(int=0)


@dataclass(frozen=True)
class Distribution:
    """One UBI run: how much each user gets, in what, under which key."""

    key: str
    currency: Currency
    amount: Decimal
    created_by: str | None

    @property
    def request_hash(self) -> str:
        return fingerprint(
            {"ubi": [self.currency.value, str(self.amount.normalize(MONEY_CONTEXT))]}
        )

    def user_key(self, user_id: uuid.UUID) -> str:
        return f"ubi:{self.key}:{user_id}"


@dataclass
class Tally:
    paid: int = 0
    already_paid: int = 0


async def pay_user(
    session: AsyncSession,
    run: Distribution,
    user_id: uuid.UUID,
    wallet_id: uuid.UUID,
    pool_id: uuid.UUID,
) -> bool:
    """Credit one user under its own key; whether this call paid (False: paid before)."""
    posted = await post_transaction(
        session,
        kind=TransactionKind.UBI,
        idempotency_key=run.user_key(user_id),
        request_hash=run.request_hash,
        postings=[
            Posting(run.currency, run.amount.copy_negate(), system_account_id=pool_id),
            Posting(run.currency, run.amount, wallet_id=wallet_id),
        ],
        memo=f"UBI {run.key}",
        created_by=run.created_by,
        events=lambda tx_id: [
            new_event(
                "finance.ubi.distributed",
                {
                    "transactionId": str(tx_id),
                    "walletId": str(wallet_id),
                    "amount": format_amount(run.amount, run.currency),
                    "currency": run.currency.value,
                    "distribution": run.key,
                },
                source=SOURCE,
                user_id=str(user_id),
            )
        ],
    )
    if posted.replayed:
        return False
    invalidate_after_commit(session, [keys.wallet(wallet_id), keys.user_wallets(user_id)])
    return True


async def pay_batch(session: AsyncSession, run: Distribution, user_ids: list[uuid.UUID]) -> Tally:
    """Pay one batch of users in the caller's transaction."""
    wallets = await ensure_wallets(session, user_ids, run.currency)
    for user_id, (wallet_id, created) in wallets.items():
        if created:
            await announce_wallet(session, user_id, wallet_id, run.currency)
    pool_id = await system_account_id(session, SystemAccountKind.UBI_POOL, run.currency)
    credits = [Posting(run.currency, run.amount, wallet_id=w) for w, _ in wallets.values()]
    # Every wallet of the batch, then the pool, locked up front in the ledger's one order:
    # the per-user postings below then only re-take locks this transaction already holds.
    await lock_accounts(
        session,
        [*credits, Posting(run.currency, run.amount.copy_negate(), system_account_id=pool_id)],
    )
    tally = Tally()
    for user_id in user_ids:
        if await pay_user(session, run, user_id, wallets[user_id][0], pool_id):
            tally.paid += 1
        else:
            tally.already_paid += 1
    return tally


async def distribute_ubi(
    db: Database,
    body: UbiRequest,
    *,
    created_by: str | None,
    batch_size: int = BATCH_SIZE,
) -> UbiResult:
    """Credit every active user's wallet in the currency (opened if missing) from the UBI
    pool, once per user per idempotency key; answers how many this call paid and how many
    earlier tries of the key had. Conflict when the key was used with another amount."""
    run = Distribution(
        key=body.idempotency_key,
        currency=body.currency,
        amount=parse_amount(body.amount_per_user, body.currency, field="amountPerUser"),
        created_by=created_by,
    )
    total, after = Tally(), _FIRST_ID
    while True:
        async with db.transaction() as session:
            rows = await session.execute(_ACTIVE_USERS, {"after": after, "limit": batch_size})
            user_ids = [row.id for row in rows]
            if not user_ids:
                break
            batch = await pay_batch(session, run, user_ids)
        total.paid += batch.paid
        total.already_paid += batch.already_paid
        after = user_ids[-1]
    return UbiResult(
        currency=run.currency,
        amount_per_user=format_amount(run.amount, run.currency),
        paid=total.paid,
        already_paid=total.already_paid,
    )
