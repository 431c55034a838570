"""Transfers between users' wallets, and a wallet's history."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from azora_nexus.auth.tokens import Principal
from azora_nexus.cache import keys
from azora_nexus.cache.keys import CacheKey
from azora_nexus.domain.access import require_owner_or_privileged
from azora_nexus.domain.ledger.amounts import MONEY_CONTEXT, format_amount, parse_amount
from azora_nexus.domain.ledger.group_commit import GroupCommit, group_commit_of
from azora_nexus.domain.ledger.models import Currency, TransactionKind
from azora_nexus.domain.ledger.postings import (
    PostedTransaction,
    Posting,
    find_transaction,
    post_transaction,
)
from azora_nexus.domain.ledger.schemas import TransactionPublic, TransferRequest, WalletEntry
from azora_nexus.domain.ledger.service import find_wallet
from azora_nexus.domain.ledger.transfer_batch import EVENT_SOURCE, BatchTransfer, Deferred
from azora_nexus.domain.ledger.views import transaction_public
from azora_nexus.domain.paging import Page, PageRequest, next_cursor
from azora_nexus.errors import CurrencyMismatch, Invalid, NexusError, NotFound
from azora_nexus.events.envelope import NewEvent, now_ms
from azora_nexus.events.outbox import new_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = EVENT_SOURCE  # one source for events of both paths

_PARTIES = text("SELECT id, user_id, currency FROM wallets WHERE id IN (:source, :target)")

_HISTORY = text(
    """
    SELECT p.id, p.amount, p.currency, t.id AS transaction_id, t.kind, t.memo, t.created_at
    FROM ledger_postings AS p JOIN ledger_transactions AS t ON t.id = p.transaction_id
    WHERE p.wallet_id = :wallet_id AND p.id < :before
    ORDER BY p.id DESC LIMIT :limit
    """
)
_NO_CURSOR = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class Party:
    wallet_id: uuid.UUID
    user_id: uuid.UUID
    currency: Currency


Parties = tuple[Party, Party]


def request_hash(body: TransferRequest) -> str:
    """A fingerprint of what a transfer asks, so a reused key with another body is caught:
    the body's fields but its key, as JSON with sorted keys (stored: it must not change)."""
    fields = {
        "from_wallet_id": str(body.from_wallet_id),
        "to_wallet_id": str(body.to_wallet_id),
        # The body's pattern made it a decimal; its scale is checked once the wallets'
        # currency is known (checking against another currency here named the wrong one).
        "amount": str(Decimal(body.amount).normalize(MONEY_CONTEXT)),
        "memo": body.memo,
    }
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def find_parties(session: AsyncSession, body: TransferRequest) -> Parties:
    """The source and target wallets; NotFound when either does not exist."""
    rows = await session.execute(
        _PARTIES, {"source": body.from_wallet_id, "target": body.to_wallet_id}
    )
    found = {row.id: Party(row.id, row.user_id, Currency(row.currency)) for row in rows}
    for wallet_id in (body.from_wallet_id, body.to_wallet_id):
        if wallet_id not in found:
            raise NotFound(f"no wallet {wallet_id}")
    return found[body.from_wallet_id], found[body.to_wallet_id]


def transfer_events(
    transaction_id: uuid.UUID, body: TransferRequest, parties: Parties, amount: Decimal
) -> list[NewEvent]:
    """`finance.transaction.completed`, once for each party."""
    source, target = parties
    payload = {
        "transactionId": str(transaction_id),
        "fromWalletId": str(source.wallet_id),
        "toWalletId": str(target.wallet_id),
        "amount": format_amount(amount, source.currency),
        "currency": source.currency.value,
        "memo": body.memo,
    }
    return [
        new_event(
            "finance.transaction.completed", payload, source=SOURCE, user_id=str(party.user_id)
        )
        for party in parties
    ]


async def autocommit(session: AsyncSession) -> None:
    """Run this session's statements each in its own transaction.

    A transfer's posting is one statement: committed the moment it ends, its hot rows are
    never held locked across a round trip to this (busy) process.
    """
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


Sessions = async_sessionmaker[AsyncSession]


async def transfer(
    sessions: Sessions, body: TransferRequest, *, actor: Principal
) -> TransactionPublic:
    """Move `amount` between two wallets of one currency, once per idempotency key.

    Forbidden unless the caller owns the source wallet (or is admin/service);
    CurrencyMismatch, InsufficientFunds (409); Invalid (422) past the currency's scale.
    Group-committed with the node's concurrent transfers when `sessions` has a GroupCommit
    bound (group_commit.py); posted alone otherwise. A session is opened only for what
    the batch does not do (reading wallets this node has not seen, a replay, a transfer
    posted alone): one per transfer cost more CPU than the transfer's share of its batch.
    """
    if body.from_wallet_id == body.to_wallet_id:
        raise Invalid("a transfer needs two different wallets")
    fingerprint = request_hash(body)
    committer = group_commit_of(sessions)
    parties = await _parties(sessions, body, committer)
    source, target = parties
    require_owner_or_privileged(actor, source.user_id, "wallet")
    if source.currency != target.currency:
        raise CurrencyMismatch(f"cannot move {source.currency} into a {target.currency} wallet")
    amount = parse_amount(body.amount, source.currency)
    if committer is None:
        return transaction_public(
            await _post_alone(
                sessions, body, parties, fingerprint=fingerprint, amount=amount, actor=actor
            )
        )
    item = BatchTransfer(
        id=uuid.uuid4(),
        idempotency_key=body.idempotency_key,
        request_hash=fingerprint,
        source=source.wallet_id,
        target=target.wallet_id,
        currency=source.currency,
        amount=amount,
        amount_text=format_amount(amount, source.currency),
        memo=body.memo,
        created_by=actor.user_id,
        privileged=actor.is_privileged,
        timestamp_ms=now_ms(),
    )
    outcome = await committer.post(item)
    if isinstance(outcome, NexusError):
        raise outcome
    if outcome is Deferred.REPLAY:
        async with sessions() as session, session.begin():
            await autocommit(session)
            replayed = await find_transaction(
                session, body.idempotency_key, fingerprint, actor.user_id
            )
        if replayed is not None:
            return transaction_public(replayed)
    elif outcome is not Deferred.ALONE:
        return transaction_public(outcome)
    return transaction_public(
        await _post_alone(
            sessions, body, parties, fingerprint=fingerprint, amount=amount, actor=actor
        )
    )


async def _parties(
    sessions: Sessions, body: TransferRequest, committer: GroupCommit | None
) -> Parties:
    """The two wallets, from what this node knows of them, else read (and remembered)."""
    if committer is not None:
        known = committer.known_wallets
        source, target = known.get(body.from_wallet_id), known.get(body.to_wallet_id)
        if source is not None and target is not None:
            return (
                Party(body.from_wallet_id, source[0], Currency(source[1])),
                Party(body.to_wallet_id, target[0], Currency(target[1])),
            )
    async with sessions() as session, session.begin():
        await autocommit(session)
        parties = await find_parties(session, body)
    if committer is not None:
        for party in parties:
            committer.remember(party.wallet_id, party.user_id, party.currency.value)
    return parties


def _cache_keys(parties: Parties) -> tuple[CacheKey, ...]:
    source, target = parties
    return (
        keys.wallet(source.wallet_id),
        keys.wallet(target.wallet_id),
        keys.user_wallets(source.user_id),
        keys.user_wallets(target.user_id),
    )


async def _post_alone(
    sessions: Sessions,
    body: TransferRequest,
    parties: Parties,
    *,
    fingerprint: str,
    amount: Decimal,
    actor: Principal,
) -> PostedTransaction:
    """The transfer in a statement of its own (statements.POST), as before group commit."""
    source, target = parties
    async with sessions() as session, session.begin():
        await autocommit(session)
        posted = await post_transaction(
            session,
            kind=TransactionKind.TRANSFER,
            idempotency_key=body.idempotency_key,
            # The caller's own keys: another user's (or Nexus's) same key is another one.
            idempotency_scope=actor.user_id,
            request_hash=fingerprint,
            postings=[
                Posting(source.currency, amount.copy_negate(), wallet_id=source.wallet_id),
                Posting(source.currency, amount, wallet_id=target.wallet_id),
            ],
            memo=body.memo,
            created_by=actor.user_id,
            events=lambda tx_id: transfer_events(tx_id, body, parties, amount),
        )
        if not posted.replayed:
            invalidate_after_commit(session, _cache_keys(parties))
    return posted


def _history_cursor(after: list[str]) -> int:
    """The posting id a history cursor holds: ASCII digits within BIGINT; else Invalid."""
    if len(after) != 1 or not _DIGITS.fullmatch(after[0]) or int(after[0]) > _NO_CURSOR:
        raise Invalid("after: not a cursor of this list")
    return int(after[0])


async def wallet_history(
    session: AsyncSession, wallet_id: uuid.UUID, page: PageRequest, *, actor: Principal
) -> Page[WalletEntry]:
    """What each transaction did to the wallet, newest first (its owner or admin/service)."""
    before = _NO_CURSOR if page.after is None else _history_cursor(page.after)
    async with session.begin():
        await find_wallet(session, wallet_id, actor=actor)
        rows = (
            await session.execute(
                _HISTORY, {"wallet_id": wallet_id, "before": before, "limit": page.limit + 1}
            )
        ).all()
    items = [
        WalletEntry(
            transaction_id=row.transaction_id,
            kind=TransactionKind(row.kind),
            amount=format_amount(row.amount, Currency(row.currency)),
            currency=Currency(row.currency),
            memo=row.memo,
            created_at=row.created_at,
        )
        for row in rows[: page.limit]
    ]
    return Page(items=items, next=next_cursor(rows, page, lambda row: [str(row.id)]))
