"""The one way money moves: `post_transaction`, a balanced, idempotent, locked write.

Every caller (transfers, rewards, UBI, escrow, adjustments) goes through it, so the
invariants live here once: postings sum to zero per currency, a wallet (or escrow) never
goes below zero, each account's `balance` moves by exactly its postings, and an idempotency
key names one transaction forever. It runs in the caller's transaction and never commits;
the whole posting, with its outbox events, is one SQL statement (see statements.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.domain.ledger import statements
from azora_nexus.domain.ledger.amounts import money_sum
from azora_nexus.domain.ledger.models import Currency, TransactionKind
from azora_nexus.errors import (
    Conflict,
    CurrencyMismatch,
    InsufficientFunds,
    Invalid,
    NexusError,
    NotFound,
)
from azora_nexus.events.envelope import NewEvent
from azora_nexus.events.outbox import NOTIFY_CHANNEL
from azora_nexus.metrics import session_metrics


@dataclass(frozen=True, slots=True)
class Posting:
    """One signed amount on one account: a user's wallet or a system account, never both."""

    currency: Currency
    amount: Decimal
    wallet_id: uuid.UUID | None = None
    system_account_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if (self.wallet_id is None) == (self.system_account_id is None):
            raise ValueError("a posting names exactly one account")
        if self.amount == 0:
            raise ValueError("a posting moves a non-zero amount")

    @property
    def account_id(self) -> uuid.UUID:
        account = self.wallet_id or self.system_account_id
        assert account is not None
        return account


@dataclass(frozen=True, slots=True)
class PostedTransaction:
    """A committed-or-committing ledger transaction; `replayed` when its key was posted before."""

    id: uuid.UUID
    kind: TransactionKind
    idempotency_key: str
    memo: str | None
    created_by: str | None
    created_at: datetime
    postings: tuple[Posting, ...]
    replayed: bool


# PostgreSQL's numeric_value_out_of_range: a balance past NUMERIC(38, 18).
NUMERIC_OUT_OF_RANGE = "22003"

# The events a new transaction announces, given its id (build them with outbox.new_event).
EventsFor = Callable[[uuid.UUID], Sequence[NewEvent]]


def check_balanced(postings: Sequence[Posting]) -> None:
    """Raise ValueError unless the postings sum to zero in every currency (a caller's bug)."""
    if not postings:
        raise ValueError("a transaction has postings")
    for currency in {p.currency for p in postings}:
        if money_sum([p.amount for p in postings if p.currency == currency]) != 0:
            raise ValueError(f"postings in {currency} do not sum to zero")


async def find_transaction(
    session: AsyncSession, idempotency_key: str, request_hash: str, scope: str = ""
) -> PostedTransaction | None:
    """The transaction posted under `idempotency_key` in `scope`; Conflict when its request
    differed."""
    row = (
        await session.execute(statements.FIND, {"key": idempotency_key, "scope": scope})
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Conflict("this idempotency key was used for a different request")
    lines = (await session.execute(statements.FIND_POSTINGS, {"id": row.id})).all()
    return PostedTransaction(
        id=row.id,
        kind=TransactionKind(row.kind),
        idempotency_key=idempotency_key,
        memo=row.memo,
        created_by=row.created_by,
        created_at=row.created_at,
        postings=tuple(
            Posting(
                currency=Currency(line.currency),
                amount=line.amount,
                wallet_id=line.wallet_id,
                system_account_id=line.system_account_id,
            )
            for line in lines
        ),
        replayed=True,
    )


def account_ids(postings: Sequence[Posting]) -> dict[str, list[uuid.UUID]]:
    """The accounts the postings touch, in lock order: wallets, then system accounts, by id."""
    return {
        "wallet_ids": sorted({p.wallet_id for p in postings if p.wallet_id is not None}),
        "system_ids": sorted({p.system_account_id for p in postings if p.system_account_id}),
    }


async def lock_accounts(session: AsyncSession, postings: Sequence[Posting]) -> None:
    """Lock the accounts the postings touch, in the ledger's one order, until commit."""
    await session.execute(statements.LOCK_ACCOUNTS, account_ids(postings))


def _parameters(
    *,
    tx_id: uuid.UUID,
    kind: TransactionKind,
    idempotency_key: str,
    idempotency_scope: str,
    request_hash: str,
    postings: Sequence[Posting],
    memo: str | None,
    created_by: str | None,
    events: Sequence[NewEvent],
) -> dict[str, Any]:
    ids = account_ids(postings)
    return {
        **ids,
        "account_count": len(ids["wallet_ids"]) + len(ids["system_ids"]),
        "id": tx_id,
        "kind": kind.value,
        "key": idempotency_key,
        "scope": idempotency_scope,
        "hash": request_hash,
        "memo": memo,
        "created_by": created_by,
        "line_wallets": [p.wallet_id for p in postings],
        "line_systems": [p.system_account_id for p in postings],
        "line_currencies": [p.currency.value for p in postings],
        "line_amounts": [p.amount for p in postings],
        "ev_types": [e.type for e in events],
        "ev_payloads": [orjson.dumps(e.payload).decode() for e in events],
        "ev_sources": [e.source for e in events],
        "ev_users": [e.user_id for e in events],
        "ev_timestamps": [e.timestamp_ms for e in events],
        "channel": NOTIFY_CHANNEL,
    }


def _refusal(row: Any, account_count: int) -> NexusError | None:
    if row.found != account_count:
        return NotFound("no such account")
    if not row.currencies_ok:
        return CurrencyMismatch("an account holds another currency than its posting")
    if not row.funds_ok:
        return InsufficientFunds("the balance does not cover the amount")
    return None


async def post_transaction(
    session: AsyncSession,
    *,
    kind: TransactionKind,
    idempotency_key: str,
    request_hash: str,
    postings: Sequence[Posting],
    idempotency_scope: str = "",
    memo: str | None = None,
    created_by: str | None = None,
    events: EventsFor | None = None,
) -> PostedTransaction:
    """Post balanced `postings` once per `idempotency_key` within `idempotency_scope`, in
    the caller's transaction. The scope is the token subject that chose the key ("" for
    keys Nexus makes), so nobody's key collides with anyone else's.

    The same key with the same `request_hash` gives back the first transaction
    (`replayed=True`, nothing written); with another hash, Conflict. Accounts are locked
    wallets-then-system-accounts, each by id, so concurrent posters never deadlock.
    `events(transaction_id)` go to the outbox with the postings, and only with them.
    Raises NotFound (unknown account), CurrencyMismatch, InsufficientFunds.
    """
    check_balanced(postings)
    tx_id = uuid.uuid4()
    params = _parameters(
        tx_id=tx_id,
        kind=kind,
        idempotency_key=idempotency_key,
        idempotency_scope=idempotency_scope,
        request_hash=request_hash,
        postings=postings,
        memo=memo,
        created_by=created_by,
        events=events(tx_id) if events else (),
    )
    try:
        row = (await session.execute(statements.POST, params)).one()
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == NUMERIC_OUT_OF_RANGE:
            raise Invalid("the amount would take a balance out of range") from exc
        raise
    if row.created_at is not None:
        assert row.lines == len(postings)
        assert row.accounts_moved == params["account_count"]
        if (metrics := session_metrics(session)) is not None:
            metrics.ledger_transfers.labels(kind.value).inc()
        return PostedTransaction(
            id=tx_id,
            kind=kind,
            idempotency_key=idempotency_key,
            memo=memo,
            created_by=created_by,
            created_at=row.created_at,
            postings=tuple(postings),
            replayed=False,
        )
    if row.existing_hash is not None and row.existing_hash != request_hash:
        raise Conflict("this idempotency key was used for a different request")
    # Posted before, or by a concurrent request with this key while we waited for its
    # locks (which may also be why the funds look short now): either way, a replay.
    existing = await find_transaction(session, idempotency_key, request_hash, idempotency_scope)
    if existing is not None:
        return existing
    refusal = _refusal(row, params["account_count"])
    assert refusal is not None, "nothing posted, nothing refused, no earlier transaction"
    if (metrics := session_metrics(session)) is not None:
        metrics.ledger_refusals.labels(refusal.code).inc()
    raise refusal
