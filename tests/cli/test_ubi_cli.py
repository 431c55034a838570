"""`azora ubi` in a subprocess: a bar on stderr, one summary line, every active user paid
once; the same key again pays nobody; a bad amount is one line and exit 1."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from azora_nexus.backup.postgres import ledger_problems
from azora_nexus.config import Settings
from azora_nexus.events.relay import asyncpg_dsn
from tests.seed.test_seed_cli import azora, plain_env

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

USERS = 250


async def test_azora_ubi_pays_everyone_once_with_a_bar_and_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    assert settings.mongodb_uri is not None
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        await conn.execute(
            "INSERT INTO users (id, email, username, password_hash) "
            "SELECT id, id::text || '@example.com', id::text, 'x' FROM unnest($1::uuid[]) id",
            [uuid.uuid4() for _ in range(USERS)],
        )
    finally:
        await conn.close()
    env = plain_env(
        tmp_path / "data",
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        MONGODB_URI=settings.mongodb_uri,
        AZORA_PAYOUT_BATCH_SIZE="50",
    )
    args = ("ubi", "--currency", "USD", "--amount", "3.25", "--key", "cli-1")

    first = await asyncio.to_thread(azora, *args, env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.count("\n") == 1
    assert "(cli-1) completed in " in first.stdout
    assert first.stdout.endswith(f": {USERS} users paid 3.25 USD, 0 paid before\n")
    assert "UBI cli-1" in first.stderr  # the bar goes to stderr, the summary alone to stdout
    assert f"{USERS}/{USERS}" in first.stderr

    again = await asyncio.to_thread(azora, *args, env=env)

    assert again.returncode == 0, again.stderr
    assert again.stdout.endswith(f": {USERS} users paid 3.25 USD, 0 paid before\n")
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        balances = await conn.fetch("SELECT balance FROM wallets WHERE currency = 'USD'")
        events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE type = 'finance.ubi.distributed'"
        )
    finally:
        await conn.close()
    assert sorted(str(row["balance"]) for row in balances) == ["3.250000000000000000"] * USERS
    assert events == USERS
    assert await ledger_problems(settings.database_url) == []

    other_args = ("ubi", "--currency", "USD", "--amount", "4", "--key", "cli-1")
    other = await asyncio.to_thread(azora, *other_args, env=env)
    assert other.returncode == 1
    assert other.stderr.startswith("azora: this idempotency key was used for a different")
    refused = await asyncio.to_thread(
        azora, "ubi", "--currency", "USD", "--amount", "0.001", env=env
    )
    assert (refused.returncode, refused.stderr.count("\n")) == (1, 1), refused.stderr
    assert refused.stderr.startswith("azora: ")
