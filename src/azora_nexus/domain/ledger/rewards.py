"""Mining rewards: money issued from the mining pool into one user's wallet."""

from __future__ import annotations

import hashlib
import uuid

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Principal
from azora_nexus.cache import keys
from azora_nexus.domain.access import active_user
from azora_nexus.domain.ledger.accounts import system_account_id
from azora_nexus.domain.ledger.amounts import format_amount, parse_amount
from azora_nexus.domain.ledger.models import SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.postings import Posting, post_transaction
from azora_nexus.domain.ledger.schemas import MiningReward, TransactionPublic
from azora_nexus.domain.ledger.service import open_wallet
from azora_nexus.domain.ledger.views import transaction_public
from azora_nexus.events.outbox import new_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = "rewards"


def fingerprint(fields: dict[str, object]) -> str:
    """A stable hash of a request's meaningful fields."""
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def reward_mining(
    session: AsyncSession, body: MiningReward, *, actor: Principal
) -> TransactionPublic:
    """Credit the user's wallet in that currency (opened if missing) from the mining pool;
    once per idempotency key when one is given."""
    amount = parse_amount(body.amount, body.currency)
    key = body.idempotency_key or f"mining:{uuid.uuid4()}"
    request = {"user": str(body.user_id), "currency": body.currency.value, "amount": str(amount)}
    async with session.begin():
        await active_user(session, body.user_id)
        wallet_id = await open_wallet(session, body.user_id, body.currency)
        pool = await system_account_id(session, SystemAccountKind.MINING_POOL, body.currency)
        posted = await post_transaction(
            session,
            kind=TransactionKind.MINING_REWARD,
            idempotency_key=key,
            idempotency_scope=actor.user_id,
            request_hash=fingerprint({"mining": request}),
            postings=[
                Posting(body.currency, amount.copy_negate(), system_account_id=pool),
                Posting(body.currency, amount, wallet_id=wallet_id),
            ],
            created_by=actor.user_id,
            events=lambda tx_id: [
                new_event(
                    "finance.mining.reward",
                    {
                        "transactionId": str(tx_id),
                        "walletId": str(wallet_id),
                        "amount": format_amount(amount, body.currency),
                        "currency": body.currency.value,
                    },
                    source=SOURCE,
                    user_id=str(body.user_id),
                )
            ],
        )
        if not posted.replayed:
            invalidate_after_commit(
                session, [keys.wallet(wallet_id), keys.user_wallets(body.user_id)]
            )
    return transaction_public(posted)
