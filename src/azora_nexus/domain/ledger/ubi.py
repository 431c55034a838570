"""Universal basic income: every active user credited once per distribution key.

`start_distribution` records the distribution as a job (`distributions`, one row per
key) and returns at once; payout workers (payouts.py) pay it batch after batch of users in
id order, one database transaction and one set-based statement each (payout_sql.py).
Each user's credit is its own ledger transaction keyed `ubi:<key>:<user id>`, and the
job's cursor and counts advance in the same transaction as the batch's credits: a node
that dies mid-batch leaves nothing of that batch, and whoever resumes the job starts
after the last batch that committed. Nobody is paid twice, and the counts are exact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.cache import keys
from azora_nexus.domain.ledger import payout_sql
from azora_nexus.domain.ledger.accounts import ensure_wallets, system_account_id
from azora_nexus.domain.ledger.amounts import MONEY_CONTEXT, format_amount, parse_amount
from azora_nexus.domain.ledger.models import Currency, DistributionStatus, SystemAccountKind
from azora_nexus.domain.ledger.rewards import fingerprint
from azora_nexus.domain.ledger.schemas import DistributionPublic, UbiRequest
from azora_nexus.errors import Conflict, NotFound
from azora_nexus.events.envelope import now_ms
from azora_nexus.events.outbox import NOTIFY_CHANNEL, add_events, new_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = "rewards"
WALLET_SOURCE = "wallets"  # as service.announce_wallet announces a wallet it opened
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


@dataclass(frozen=True)
class Job:
    """A distribution as a worker holds it: which one, under which claim."""

    id: uuid.UUID
    run: Distribution
    token: str
    total_users: int


_CREATE = text(
    """
    INSERT INTO distributions
        (idempotency_key, request_hash, currency, amount_per_user, total_users, created_by)
    SELECT :key, :hash, :currency, :amount, count(*), :created_by FROM users WHERE is_active
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
    """
)

_COLUMNS = (
    "id, idempotency_key, request_hash, currency, amount_per_user, status, total_users,"
    " paid, already_paid, error, created_by, created_at, finished_at"
)
_BY_KEY = text(f"SELECT {_COLUMNS} FROM distributions WHERE idempotency_key = :key")
_BY_ID = text(f"SELECT {_COLUMNS} FROM distributions WHERE id = :id")


def distribution_public(row: Any) -> DistributionPublic:
    currency = Currency(row.currency)
    done = row.paid + row.already_paid
    if row.status == DistributionStatus.COMPLETED:
        progress = 1.0
    else:
        progress = min(1.0, done / row.total_users) if row.total_users else 0.0
    return DistributionPublic(
        id=row.id,
        idempotency_key=row.idempotency_key,
        status=DistributionStatus(row.status),
        currency=currency,
        amount_per_user=format_amount(row.amount_per_user, currency),
        total_users=row.total_users,
        paid=row.paid,
        already_paid=row.already_paid,
        progress=round(progress, 4),
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


async def start_distribution(
    session: AsyncSession, body: UbiRequest, *, created_by: str | None
) -> DistributionPublic:
    """The distribution under `body.idempotency_key`, recorded as a running job if it is
    new; the same one (whatever its state) when the key was used for this same request.
    Conflict when the key was used for another request."""
    run = Distribution(
        key=body.idempotency_key,
        currency=body.currency,
        amount=parse_amount(body.amount_per_user, body.currency, field="amountPerUser"),
        created_by=created_by,
    )
    async with session.begin():
        await session.execute(
            _CREATE,
            {
                "key": run.key,
                "hash": run.request_hash,
                "currency": run.currency.value,
                "amount": run.amount,
                "created_by": created_by,
            },
        )
        row = (await session.execute(_BY_KEY, {"key": run.key})).one()
    if row.request_hash != run.request_hash:
        raise Conflict("this idempotency key was used for a different distribution")
    return distribution_public(row)


async def get_distribution(session: AsyncSession, distribution_id: uuid.UUID) -> DistributionPublic:
    """A distribution's status, counts and progress; NotFound when there is none."""
    async with session.begin():
        row = (await session.execute(_BY_ID, {"id": distribution_id})).one_or_none()
    if row is None:
        raise NotFound(f"no distribution {distribution_id}")
    return distribution_public(row)


@dataclass(frozen=True)
class BatchResult:
    """What one batch did: `held` False when the claim was lost (another node has the
    job), `finished` when no user was left; counts are the job's totals after it."""

    held: bool
    finished: bool = False
    paid: int = 0
    already_paid: int = 0


async def pay_next_batch(session: AsyncSession, job: Job, batch_size: int) -> BatchResult:
    """Pay the next `batch_size` users after the job's cursor, in one transaction; the job
    completes when none is left. Raises Conflict when a user's key was posted for another
    request (the job cannot go on)."""
    async with session.begin():
        # A batch finds a thousand rows by key in tables of any size; the statistics of a
        # table this job makes grow fast (wallets, ledger rows) lag behind it, and a planner
        # that believes them scans the whole table for every batch.
        await session.execute(payout_sql.BY_INDEX)
        held = (await session.execute(payout_sql.HOLD, _ids(job))).one_or_none()
        if held is None:
            return BatchResult(held=False)
        rows = await session.execute(
            payout_sql.NEXT_USERS, {"after": held.cursor or _FIRST_ID, "limit": batch_size}
        )
        user_ids: list[uuid.UUID] = [row.id for row in rows]
        if not user_ids:
            done = await finish(session, job, DistributionStatus.COMPLETED)
            return BatchResult(held=done, finished=True)
        paid = await _pay(session, job, user_ids)
        totals = (
            await session.execute(
                payout_sql.ADVANCE,
                {
                    "id": job.id,
                    "cursor": user_ids[-1],
                    "paid": paid,
                    "already_paid": len(user_ids) - paid,
                },
            )
        ).one()
    return BatchResult(held=True, paid=totals.paid, already_paid=totals.already_paid)


async def _pay(session: AsyncSession, job: Job, user_ids: list[uuid.UUID]) -> int:
    """Credit the users not paid under this distribution yet; how many that was."""
    run = job.run
    wallets = await ensure_wallets(session, user_ids, run.currency)
    opened = [(u, w) for u, (w, created) in wallets.items() if created]
    await add_events(
        session,
        [
            new_event(
                "finance.wallet.created",
                {"walletId": str(w), "currency": run.currency.value},
                source=WALLET_SOURCE,
                user_id=str(u),
            )
            for u, w in opened
        ],
    )
    invalidate_after_commit(session, [keys.user_wallets(u) for u, _ in opened])
    pool_id = await system_account_id(session, SystemAccountKind.UBI_POOL, run.currency)
    row = (
        await session.execute(
            payout_sql.PAY_BATCH,
            {
                "user_ids": user_ids,
                "wallet_ids": [wallets[u][0] for u in user_ids],
                "pool_id": pool_id,
                "amount": run.amount,
                "amount_text": format_amount(run.amount, run.currency),
                "currency": run.currency.value,
                "key_prefix": f"ubi:{run.key}:",
                "hash": run.request_hash,
                "memo": f"UBI {run.key}",
                "created_by": run.created_by,
                "distribution": run.key,
                "source": SOURCE,
                "ts": now_ms(),
                "channel": NOTIFY_CHANNEL,
            },
        )
    ).one()
    if row.clashing:
        raise Conflict(f"a UBI key of {run.key!r} was used for a different request")
    # Every wallet and the pool were found in the currency (they were just opened or found
    # by user and currency), so each new transaction moved exactly its two accounts.
    assert row.wallets_found == len(user_ids)
    assert row.pool_found == 1
    assert row.currencies_ok
    assert row.wallets_moved == row.paid == row.events
    assert row.lines == 2 * row.paid
    assert row.pools_moved == (1 if row.paid else 0)
    invalidate_after_commit(
        session,
        [
            *(keys.wallet(w) for w in row.paid_wallets),
            *(keys.user_wallets(u) for u in row.paid_users),
        ],
    )
    return int(row.paid)


async def finish(
    session: AsyncSession, job: Job, status: DistributionStatus, error: str | None = None
) -> bool:
    """Close the job as `status` with its event, in the caller's transaction, if this claim
    still holds it (whether it did)."""
    row = (
        await session.execute(payout_sql.FINISH, {**_ids(job), "status": status, "error": error})
    ).one_or_none()
    if row is None:
        return False
    payload: dict[str, Any] = {
        **job_payload(job),
        "paid": row.paid,
        "alreadyPaid": row.already_paid,
    }
    if error is not None:
        payload["error"] = error
    kind = "completed" if status == DistributionStatus.COMPLETED else "failed"
    await add_events(session, [new_event(f"finance.ubi.{kind}", payload, source=SOURCE)])
    return True


async def announce_progress(session: AsyncSession, job: Job, batch: BatchResult) -> None:
    """`finance.ubi.progress` with the job's counts so far, in its own short transaction."""
    payload = {**job_payload(job), "paid": batch.paid, "alreadyPaid": batch.already_paid}
    async with session.begin():
        await add_events(session, [new_event("finance.ubi.progress", payload, source=SOURCE)])


def job_payload(job: Job) -> dict[str, Any]:
    return {
        "distributionId": str(job.id),
        "distribution": job.run.key,
        "currency": job.run.currency.value,
        "amountPerUser": format_amount(job.run.amount, job.run.currency),
        "totalUsers": job.total_users,
    }


def _ids(job: Job) -> dict[str, Any]:
    return {"id": job.id, "token": job.token}
