"""Migration 0005 scopes idempotency keys to their sender, keeping old keys their owner's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from azora_nexus.backends import BackendUrls
from azora_nexus.database.migrate import downgrade, upgrade
from tests.database.test_migrations import asyncpg_dsn, empty_database

INSERT = (
    "INSERT INTO ledger_transactions (id, kind, idempotency_key, request_hash, created_by)"
    " VALUES ($1, $2, $3, 'h', $4)"
)
SCOPED = (
    "INSERT INTO ledger_transactions"
    " (id, kind, idempotency_key, request_hash, created_by, idempotency_scope)"
    " VALUES ($1, 'transfer', $2, 'h', $3, $3)"
)


@pytest.fixture
async def database_at_0004(backends: BackendUrls) -> AsyncIterator[str]:
    async with empty_database(backends.database) as url:
        await upgrade(url, "0004")
        yield url


async def test_old_keys_stay_their_owners_and_others_may_reuse_them(database_at_0004: str) -> None:
    carol, dave = str(uuid.uuid4()), str(uuid.uuid4())
    conn = await asyncpg.connect(asyncpg_dsn(database_at_0004))
    try:
        old_transfer, old_hold = uuid.uuid4(), uuid.uuid4()
        await conn.execute(INSERT, old_transfer, "transfer", "k-1", carol)
        await conn.execute(INSERT, old_hold, "escrow_hold", "escrow:hold:j", carol)
        await upgrade(database_at_0004)

        scopes = await conn.fetch(
            "SELECT id, idempotency_scope FROM ledger_transactions ORDER BY created_at, id"
        )
        assert {r["id"]: r["idempotency_scope"] for r in scopes} == {
            old_transfer: carol,  # Carol's retry with k-1 finds her transaction
            old_hold: "",  # Nexus's own key stays Nexus's
        }
        # Dave may now use k-1 (and the escrow key) for himself; Carol may not use k-1 again.
        await conn.execute(SCOPED, uuid.uuid4(), "k-1", dave)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(SCOPED, uuid.uuid4(), "k-1", carol)

        # Down again: one k-1 keeps its name, the other is prefixed with its scope.
        await downgrade(database_at_0004, "0004")
        keys = await conn.fetch("SELECT idempotency_key FROM ledger_transactions")
        assert sorted(k["idempotency_key"] for k in keys) == sorted(
            ["k-1", f"{dave}:k-1", "escrow:hold:j"]
        )
    finally:
        await conn.close()
