"""Demo money: starting balances mined from the pool, then transfers between demo users.

Both are ledger postings under deterministic idempotency keys; keys already posted are
skipped up front (one query), so a re-run neither writes nor replays them. The starting
balances, two per user, are posted a batch per statement (bulk_mining.py); transfers go
through the ledger's transfer service.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.domain.ledger.schemas import TransferRequest
from azora_nexus.domain.ledger.transfers import transfer
from azora_nexus.domain.seed import bulk_mining, plan
from azora_nexus.domain.seed.concurrency import Progress, batches, for_each
from azora_nexus.domain.seed.report import SeedReport
from azora_nexus.domain.seed.target import SeedTarget
from azora_nexus.errors import InsufficientFunds

UserIds = dict[int, uuid.UUID]

_POSTED = text(
    "SELECT idempotency_key FROM ledger_transactions "
    "WHERE idempotency_key = ANY(CAST(:keys AS text[]))"
)
_WALLETS = text(
    "SELECT user_id, currency, id FROM wallets WHERE user_id = ANY(CAST(:user_ids AS uuid[]))"
)


async def posted_keys(target: SeedTarget, keys: list[str]) -> set[str]:
    """Which of `keys` name a ledger transaction already."""
    async with target.db.sessions() as session:
        return set(await session.scalars(_POSTED, {"keys": keys}))


async def fund_users(
    target: SeedTarget, users: UserIds, report: SeedReport, progress: Progress
) -> None:
    """Each demo user's AZR and USD wallets, opened and credited from the mining pool once."""
    wanted = [(index, currency) for index in sorted(users) for currency in plan.FUNDING]
    done = await posted_keys(target, [plan.mining_key(i, c) for i, c in wanted])
    todo = [(i, c) for i, c in wanted if plan.mining_key(i, c) not in done]
    report.rewards.existing += len(wanted) - len(todo)
    progress.phase("wallets funded by mining", len(todo))
    by_currency = {c: [i for i, each in todo if each is c] for c in plan.FUNDING}
    work = [(c, batch) for c, indices in by_currency.items() for batch in batches(indices)]

    async def reward(item: tuple[Currency, list[int]]) -> None:
        currency, batch = item
        async with target.db.transaction() as session:
            credited = await bulk_mining.reward_batch(
                session,
                currency,
                [users[i] for i in batch],
                [plan.mining_key(i, currency) for i in batch],
            )
        # Counted once the awaited batch is in (`x += await ...` would read x before it).
        report.rewards.new += credited

    await for_each(work, reward, progress=progress, size=lambda item: len(item[1]))


async def wallets_of(target: SeedTarget, users: UserIds) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """Every wallet of the demo users, by (user id, currency)."""
    async with target.db.sessions() as session:
        rows = await session.execute(_WALLETS, {"user_ids": list(users.values())})
        return {(row.user_id, row.currency): row.id for row in rows}


async def seed_transfers(
    target: SeedTarget,
    users: UserIds,
    size: plan.SeedSize,
    report: SeedReport,
    progress: Progress,
) -> None:
    """Demo transfers 0..size.transfers-1 between demo users, each once by its key; one the
    source cannot cover (or whose user could not be made) counts as refused."""
    plans = [plan.transfer(index, size.users) for index in range(size.transfers)]
    done = await posted_keys(target, [p.key for p in plans])
    todo = [p for p in plans if p.key not in done]
    report.transfers.existing += len(plans) - len(todo)
    wallets = await wallets_of(target, users)
    progress.phase("transfers", len(todo))

    async def send(planned: plan.TransferPlan) -> None:
        source, target_user = users.get(planned.source), users.get(planned.target)
        from_wallet = wallets.get((source, planned.currency.value)) if source else None
        to_wallet = wallets.get((target_user, planned.currency.value)) if target_user else None
        if source is None or from_wallet is None or to_wallet is None:
            report.transfers.refused += 1
            return
        body = TransferRequest(
            from_wallet_id=from_wallet,
            to_wallet_id=to_wallet,
            amount=str(planned.amount),
            idempotency_key=planned.key,
            memo=planned.memo,
        )
        try:
            # Sent as its owner would send it: `created_by` is the source user.
            await transfer(target.db.sessions, body, actor=Principal(str(source), Role.USER))
        except InsufficientFunds:
            report.transfers.refused += 1
            return
        report.transfers.new += 1

    await for_each(todo, send, progress=progress)
