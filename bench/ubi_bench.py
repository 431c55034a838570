"""UBI throughput: users paid per second by one payout worker, from POST to completed.

Run: `.venv/bin/python -m bench.ubi_bench [--users 100000] [--batch 1000]`.
Uses the backends DATABASE_URL / REDIS_URL name, or starts embedded ones in a temporary dir.
Inserts the users set-based (one multi-row INSERT per 10,000, not timed), records one
distribution as `POST /api/rewards/ubi` does and times a payout worker (the one every node
runs) paying it to completion: a wallet opened per user, one balanced ledger transaction,
one outbox event and the cache invalidations per user. Then checks it exactly: every
active user credited once, the job's counts, one event per user in the outbox, and the
ledger invariants (backup/postgres.py LEDGER_CHECKS).
Prints a summary and writes bench/results/ubi.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from azora_nexus.backends import start_backends
from azora_nexus.backup.postgres import ledger_problems
from azora_nexus.cache.cache import open_cache
from azora_nexus.config import Settings
from azora_nexus.database.engine import Database, create_engine
from azora_nexus.database.migrate import upgrade
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.domain.ledger.payouts import PayoutWorker
from azora_nexus.domain.ledger.schemas import UbiRequest
from azora_nexus.domain.ledger.ubi import get_distribution, start_distribution
from azora_nexus.sync import bind_cache

RESULTS = Path(__file__).with_name("results")
CHUNK = 10_000
AMOUNT = "1.25"


@asynccontextmanager
async def open_db(database_url: str, redis_url: str) -> AsyncIterator[Database]:
    """The database as a node opens it: sessions that invalidate through the cache."""
    engine = create_engine(database_url, pool_size=4)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with open_cache(redis_url) as cache:
            bind_cache(sessions, cache)
            yield Database(engine=engine, sessions=sessions)
    finally:
        await engine.dispose()


async def add_users(db: Database, count: int) -> None:
    """`count` active users, set-based: one INSERT per CHUNK."""
    for start in range(0, count, CHUNK):
        ids = [uuid.uuid4() for _ in range(min(CHUNK, count - start))]
        async with db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO users (id, email, username, password_hash) "
                    "SELECT id, id::text || '@bench.example', id::text, 'x' "
                    "FROM unnest(CAST(:ids AS uuid[])) AS u(id)"
                ),
                {"ids": ids},
            )


async def check(db: Database, database_url: str, users: int) -> dict[str, Any]:
    async with db.sessions() as session:
        row = (
            await session.execute(
                text(
                    """
                    SELECT
                      (SELECT count(*) FROM wallets WHERE currency = 'AZR' AND balance = :amount)
                        AS credited,
                      (SELECT count(*) FROM outbox WHERE type = 'finance.ubi.distributed')
                        AS events
                    """
                ),
                {"amount": Decimal(AMOUNT)},
            )
        ).one()
    problems = await ledger_problems(database_url)
    assert row.credited == users, f"{row.credited} of {users} users credited"
    assert row.events == users, f"{row.events} events for {users} users"
    assert problems == [], problems
    return {"credited": row.credited, "events": row.events, "ledger_problems": problems}


async def bench(database_url: str, redis_url: str, users: int, batch: int) -> dict[str, Any]:
    async with open_db(database_url, redis_url) as db:
        began = time.perf_counter()
        await add_users(db, users)
        seeded_s = time.perf_counter() - began
        body = UbiRequest(currency=Currency.AZR, amount_per_user=AMOUNT, idempotency_key="bench")
        worker = PayoutWorker(db, lease_s=10, poll_s=1, batch_size=batch)
        began = time.perf_counter()
        async with db.sessions() as session:
            started = await start_distribution(session, body, created_by="bench")
        job = await worker.claim()
        assert job is not None
        assert job.id == started.id
        await worker.work(job)
        elapsed = time.perf_counter() - began
        async with db.sessions() as session:
            done = await get_distribution(session, started.id)
        assert (done.status, done.paid, done.already_paid) == ("completed", users, 0), done
        verified = await check(db, database_url, users)
    return {
        "users": users,
        "batch": batch,
        "seconds": round(elapsed, 2),
        "users_per_s": round(users / elapsed),
        "users_inserted_per_s": round(users / seeded_s),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **verified,
    }


async def main(users: int, batch: int) -> dict[str, Any]:
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        await upgrade(database_url)
        return await bench(database_url, redis_url, users, batch)
    with tempfile.TemporaryDirectory(prefix="azora-bench-") as data_dir:
        os.chmod(data_dir, 0o755)  # the embedded PostgreSQL runs as its own user
        settings = Settings(AZORA_DATA_DIR=Path(data_dir))
        async with start_backends(settings) as urls:
            await upgrade(urls.database)
            return await bench(urls.database, urls.redis, users, batch)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=Settings().payout_batch_size)
    args = parser.parse_args()
    result = asyncio.run(main(args.users, args.batch))
    print(
        f"UBI: {result['users']} users paid in {result['seconds']} s = "
        f"{result['users_per_s']} users/s (batch {result['batch']}); ledger exact, "
        f"{result['events']} events in the outbox"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ubi.json").write_text(json.dumps(result, indent=2) + "\n")
