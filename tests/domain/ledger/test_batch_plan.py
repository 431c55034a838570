"""A batch finds earlier keys by the (key, scope) index, however long the ledger is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.batch_sql import POST_TRANSFERS
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.domain.ledger.transfer_batch import BatchTransfer, _parameters
from tests.domain.ledger.ledger_helpers import open_ledger_db, wallet_factory

# Enough transactions that a scan of them all costs more than a probe per transfer.
HISTORY = 20_000


@pytest.fixture
async def db(database_url: str, redis_url: str) -> AsyncIterator[Database]:
    async with open_ledger_db(database_url, redis_url) as opened:
        yield opened


async def test_a_batch_probes_the_key_index_instead_of_scanning_the_ledger(db: Database) -> None:
    create = wallet_factory(db)
    source, target = await create(balance="100.00"), await create()
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO ledger_transactions (id, kind, idempotency_key, idempotency_scope,"
                " request_hash) SELECT gen_random_uuid(), 'transfer', 'old-' || n, 'someone',"
                " 'h' FROM generate_series(1, :count) AS n"
            ),
            {"count": HISTORY},
        )
        await session.execute(text("ANALYZE ledger_transactions"))
    items = [
        BatchTransfer(
            id=uuid.uuid4(),
            idempotency_key=f"new-{n}",
            request_hash="h",
            source=source,
            target=target,
            currency=Currency.USD,
            amount=Decimal("1.00"),
            amount_text="1.00",
            memo=None,
            created_by="admin",
            privileged=True,
            timestamp_ms=1,
        )
        for n in range(16)
    ]
    async with db.sessions() as session, session.begin():
        plan = "\n".join(
            row[0]
            for row in await session.execute(
                text("EXPLAIN " + POST_TRANSFERS.text), _parameters(items)
            )
        )
        await session.rollback()
    assert "Seq Scan on ledger_transactions" not in plan, plan
    assert "uq_ledger_transactions_idempotency_key_idempotency_scope" in plan, plan
