"""The one way money moves: `post_transaction`, a balanced, idempotent, locked write.

Every caller (transfers, rewards, UBI, escrow, adjustments) goes through it, so the
invariants live here once: postings sum to zero per currency, a wallet never goes below
zero, each account's `balance` moves by exactly its postings, and an idempotency key names
one transaction forever. It runs inside the caller's transaction and never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.domain.ledger.amounts import MONEY_CONTEXT, money_sum
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.errors import Conflict, CurrencyMismatch, InsufficientFunds, NotFound


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


@dataclass(frozen=True, slots=True)
class _Account:
    id: uuid.UUID
    currency: Currency
    balance: Decimal
    # None for a user's wallet; pools may go negative (they issue money), escrow may not.
    system_kind: SystemAccountKind | None


_LOCK_ACCOUNTS = text(
    """
    WITH w AS (
        SELECT id, currency, balance, NULL::text AS kind FROM wallets
        WHERE id = ANY(CAST(:wallet_ids AS uuid[])) ORDER BY id FOR UPDATE
    ), s AS (
        SELECT id, currency, balance, kind FROM system_accounts
        WHERE id = ANY(CAST(:system_ids AS uuid[])) ORDER BY id FOR UPDATE
    )
    SELECT * FROM w UNION ALL SELECT * FROM s
    """
)

# One round trip writes the transaction row, both balances and the postings. The
# transaction row goes first with ON CONFLICT DO NOTHING: when a concurrent request with
# the same key got there first, nothing else in the statement writes (EXISTS (tx) is false).
_WRITE = text(
    """
    WITH tx AS (
        INSERT INTO ledger_transactions (id, kind, idempotency_key, request_hash, memo, created_by)
        VALUES (:id, :kind, :key, :hash, :memo, :created_by)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id, created_at
    ), lines AS (
        SELECT * FROM unnest(
            CAST(:line_wallets AS uuid[]), CAST(:line_systems AS uuid[]),
            CAST(:line_currencies AS text[]), CAST(:line_amounts AS numeric[])
        ) WITH ORDINALITY AS l(wallet_id, system_account_id, currency, amount, n)
    ), w AS (
        UPDATE wallets SET balance = wallets.balance + d.delta
        FROM (SELECT wallet_id, sum(amount) AS delta FROM lines
              WHERE wallet_id IS NOT NULL GROUP BY wallet_id) AS d
        WHERE wallets.id = d.wallet_id AND EXISTS (SELECT 1 FROM tx)
        RETURNING wallets.id
    ), s AS (
        UPDATE system_accounts SET balance = system_accounts.balance + d.delta
        FROM (SELECT system_account_id, sum(amount) AS delta FROM lines
              WHERE system_account_id IS NOT NULL GROUP BY system_account_id) AS d
        WHERE system_accounts.id = d.system_account_id AND EXISTS (SELECT 1 FROM tx)
        RETURNING system_accounts.id
    ), p AS (
        INSERT INTO ledger_postings (transaction_id, wallet_id, system_account_id, currency, amount)
        SELECT tx.id, l.wallet_id, l.system_account_id, l.currency, l.amount
        FROM tx CROSS JOIN lines AS l ORDER BY l.n
        RETURNING id
    )
    SELECT tx.id, tx.created_at, (SELECT count(*) FROM p) AS lines FROM tx
    """
)

_FIND = text(
    """
    SELECT id, kind, request_hash, memo, created_by, created_at
    FROM ledger_transactions WHERE idempotency_key = :key
    """
)

_FIND_POSTINGS = text(
    """
    SELECT wallet_id, system_account_id, currency, amount
    FROM ledger_postings WHERE transaction_id = :id ORDER BY id
    """
)


def check_balanced(postings: Sequence[Posting]) -> None:
    """Raise ValueError unless the postings sum to zero in every currency (a caller's bug)."""
    if not postings:
        raise ValueError("a transaction has postings")
    for currency in {p.currency for p in postings}:
        if money_sum([p.amount for p in postings if p.currency == currency]) != 0:
            raise ValueError(f"postings in {currency} do not sum to zero")


async def find_transaction(
    session: AsyncSession, idempotency_key: str, request_hash: str
) -> PostedTransaction | None:
    """The transaction posted under `idempotency_key`; Conflict when its request differed."""
    row = (await session.execute(_FIND, {"key": idempotency_key})).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Conflict("this idempotency key was used for a different request")
    lines = (await session.execute(_FIND_POSTINGS, {"id": row.id})).all()
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


async def lock_accounts(
    session: AsyncSession, postings: Sequence[Posting]
) -> dict[uuid.UUID, _Account]:
    """Lock every account the postings touch, wallets then system accounts, each by id."""
    wallet_ids = sorted({p.wallet_id for p in postings if p.wallet_id is not None})
    system_ids = sorted({p.system_account_id for p in postings if p.system_account_id})
    rows = await session.execute(
        _LOCK_ACCOUNTS, {"wallet_ids": wallet_ids, "system_ids": system_ids}
    )
    accounts = {
        row.id: _Account(
            id=row.id,
            currency=Currency(row.currency),
            balance=row.balance,
            system_kind=None if row.kind is None else SystemAccountKind(row.kind),
        )
        for row in rows
    }
    missing = {p.account_id for p in postings} - accounts.keys()
    if missing:
        raise NotFound(f"no such account: {', '.join(sorted(map(str, missing)))}")
    return accounts


def check_postings(accounts: dict[uuid.UUID, _Account], postings: Sequence[Posting]) -> None:
    """CurrencyMismatch or InsufficientFunds unless every account can take its postings."""
    deltas: dict[uuid.UUID, list[Decimal]] = {}
    for posting in postings:
        if accounts[posting.account_id].currency != posting.currency:
            raise CurrencyMismatch(
                f"account {posting.account_id} holds {accounts[posting.account_id].currency}, "
                f"not {posting.currency}"
            )
        deltas.setdefault(posting.account_id, []).append(posting.amount)
    for account_id, amounts in deltas.items():
        account = accounts[account_id]
        may_go_negative = account.system_kind in (
            SystemAccountKind.MINING_POOL,
            SystemAccountKind.UBI_POOL,
        )
        if not may_go_negative and MONEY_CONTEXT.add(account.balance, money_sum(amounts)) < 0:
            raise InsufficientFunds(
                f"balance {account.balance} {account.currency} does not cover the amount"
            )


async def post_transaction(
    session: AsyncSession,
    *,
    kind: TransactionKind,
    idempotency_key: str,
    request_hash: str,
    postings: Sequence[Posting],
    memo: str | None = None,
    created_by: str | None = None,
) -> PostedTransaction:
    """Post balanced `postings` once per `idempotency_key`, in the caller's transaction.

    The same key with the same `request_hash` gives back the first transaction
    (`replayed=True`, nothing written); with another hash, Conflict. Accounts are locked
    wallets-then-system-accounts, each by id, so concurrent posters never deadlock.
    Raises NotFound (unknown account), CurrencyMismatch, InsufficientFunds.
    """
    check_balanced(postings)
    existing = await find_transaction(session, idempotency_key, request_hash)
    if existing is not None:
        return existing
    accounts = await lock_accounts(session, postings)
    try:
        check_postings(accounts, postings)
    except InsufficientFunds:
        # A concurrent retry of this very key may have spent the money while we waited
        # for the locks: that is a replay, not a refusal.
        existing = await find_transaction(session, idempotency_key, request_hash)
        if existing is not None:
            return existing
        raise
    tx_id = uuid.uuid4()
    written = (
        await session.execute(
            _WRITE,
            {
                "id": tx_id,
                "kind": kind.value,
                "key": idempotency_key,
                "hash": request_hash,
                "memo": memo,
                "created_by": created_by,
                "line_wallets": [p.wallet_id for p in postings],
                "line_systems": [p.system_account_id for p in postings],
                "line_currencies": [p.currency.value for p in postings],
                "line_amounts": [p.amount for p in postings],
            },
        )
    ).one_or_none()
    if written is None:
        # The same key committed concurrently after our first look.
        existing = await find_transaction(session, idempotency_key, request_hash)
        assert existing is not None
        return existing
    assert written.lines == len(postings)
    return PostedTransaction(
        id=tx_id,
        kind=kind,
        idempotency_key=idempotency_key,
        memo=memo,
        created_by=created_by,
        created_at=written.created_at,
        postings=tuple(postings),
        replayed=False,
    )
