"""Posting a batch of transfers in one statement (batch_sql.py), each with its own outcome."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from azora_nexus.cache import keys
from azora_nexus.cache.cache import Cache
from azora_nexus.cache.keys import CacheKey
from azora_nexus.domain.ledger.batch_sql import POST_TRANSFERS
from azora_nexus.domain.ledger.models import Currency, TransactionKind
from azora_nexus.domain.ledger.postings import PostedTransaction, Posting
from azora_nexus.errors import (
    CurrencyMismatch,
    Forbidden,
    InsufficientFunds,
    NexusError,
    NotFound,
)
from azora_nexus.events.outbox import NOTIFY_CHANNEL
from azora_nexus.metrics import NodeMetrics


@dataclass(frozen=True, slots=True)
class BatchTransfer:
    """One checked transfer waiting for its batch: who may do it was decided already."""

    id: uuid.UUID
    idempotency_key: str
    request_hash: str
    source: uuid.UUID
    target: uuid.UUID
    currency: Currency
    amount: Decimal
    amount_text: str  # as its events show it (format_amount)
    memo: str | None
    created_by: str | None
    privileged: bool  # the caller may move anyone's money, else only its own
    timestamp_ms: int  # of its events

    def posted(self, created_at: Any) -> PostedTransaction:
        return PostedTransaction(
            id=self.id,
            kind=TransactionKind.TRANSFER,
            idempotency_key=self.idempotency_key,
            memo=self.memo,
            created_by=self.created_by,
            created_at=created_at,
            postings=(
                Posting(self.currency, self.amount.copy_negate(), wallet_id=self.source),
                Posting(self.currency, self.amount, wallet_id=self.target),
            ),
            replayed=False,
        )


class Deferred(Enum):
    """An outcome the batch leaves to the transfer's own caller."""

    REPLAY = "replay"  # its key was posted before: read that transaction back
    ALONE = "alone"  # the batch failed for a reason of its own: post it by itself


Outcome = PostedTransaction | NexusError | Deferred

EVENT_SOURCE = "wallets"  # the `source` of transfer events

_REFUSALS: dict[str, type[NexusError]] = {
    "not_found": NotFound,
    "forbidden": Forbidden,
    "currency": CurrencyMismatch,
    "candidate": InsufficientFunds,  # a candidate not accepted: its source fell short
}
_MESSAGES = {
    "not_found": "no such account",
    "forbidden": "only its owner or an admin may do this to the wallet",
    "currency": "an account holds another currency than its posting",
    "candidate": "the balance does not cover the amount",
}


def _parameters(items: Sequence[BatchTransfer]) -> dict[str, Any]:
    rows = [
        {
            "n": n,
            "id": str(i.id),
            "key": i.idempotency_key,
            "hash": i.request_hash,
            "memo": i.memo,
            "created_by": i.created_by,
            "actor": i.created_by,
            "privileged": i.privileged,
            "source": str(i.source),
            "target": str(i.target),
            "currency": i.currency.value,
            "amount": str(i.amount),  # a string: numeric reads it exactly
            "amount_text": i.amount_text,
            "ts": i.timestamp_ms,
        }
        for n, i in enumerate(items, start=1)
    ]
    return {
        "items": orjson.dumps(rows).decode(),
        "wallet_ids": sorted({w for i in items for w in (i.source, i.target)}),
        "source": EVENT_SOURCE,
        "channel": NOTIFY_CHANNEL,
    }


def _cache_keys(item: BatchTransfer, row: Any) -> list[CacheKey]:
    """What a posted transfer makes stale: its wallets and their owners' wallet lists."""
    return [
        keys.wallet(item.source),
        keys.wallet(item.target),
        keys.user_wallets(row.source_user),
        keys.user_wallets(row.target_user),
    ]


def _outcome(item: BatchTransfer, row: Any) -> Outcome:
    if row.accepted:
        return item.posted(row.created_at)
    if row.verdict == "existing":
        return Deferred.REPLAY
    return _REFUSALS[row.verdict](_MESSAGES[row.verdict])


async def post_batch(
    engine: AsyncEngine,
    items: Sequence[BatchTransfer],
    *,
    cache: Cache,
    metrics: NodeMetrics | None = None,
) -> list[Outcome]:
    """Post `items` in one autocommitted statement, each decided in order; the cache keys
    of those posted are invalidated (once the connection is back in the pool) before this
    returns. Raises when the batch fails as a whole (nothing of it is then written).

    On a Core connection, not a Session: the session's set-up, its commit hooks and its
    result handling cost the node about 0.5 ms of CPU more per batch of 16 (measured: 1.1
    ms against 0.6 ms, invalidation aside), a sixth of its CPU per transfer over HTTP."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        rows = (await connection.execute(POST_TRANSFERS, _parameters(items))).all()
    outcomes = [_outcome(item, row) for item, row in zip(items, rows, strict=True)]
    posted = [
        (item, row)
        for item, row, out in zip(items, rows, outcomes, strict=True)
        if isinstance(out, PostedTransaction)
    ]
    if posted:
        first = rows[0]
        assert (first.posted, first.lines) == (len(posted), 2 * len(posted))
        assert first.events == 2 * len(posted)
        # Committed already (autocommit): no reader may find a value older than this.
        await cache.invalidate([key for item, row in posted for key in _cache_keys(item, row)])
    if metrics is not None:
        if posted:
            metrics.ledger_transfers.labels(TransactionKind.TRANSFER.value).inc(len(posted))
        for out in outcomes:
            if isinstance(out, NexusError):
                metrics.ledger_refusals.labels(out.code).inc()
    return outcomes
