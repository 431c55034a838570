"""Ledger throughput: transfers per second with 32 concurrent clients over 100 wallets, 10 hot.

Run: `.venv/bin/python -m bench.ledger_bench [--seconds 10] [--clients 32] [--processes 1]`.
Uses the backends DATABASE_URL / REDIS_URL name, or starts embedded ones in a temporary dir.
Each client loops `ledger.transfers.transfer` (the service behind POST /api/wallets/transfer:
one database transaction, rows locked in order, two outbox events, cache invalidation) with
source and target drawn from a Zipf distribution (s=1) over the wallets, so the 10 hottest
wallets take part in over half of the transfers. After the run the ledger invariant is
checked exactly: every balance equals the sum of its postings, every transaction sums to
zero, no wallet is negative, and the wallets' total is what it was before.
Prints a summary and writes bench/results/ledger.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import uvloop
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.backends import start_backends
from azora_nexus.cache.cache import open_cache
from azora_nexus.config import Settings
from azora_nexus.database.engine import Database, create_engine
from azora_nexus.database.migrate import upgrade
from azora_nexus.domain.ledger.accounts import ensure_wallets, system_account_id
from azora_nexus.domain.ledger.group_commit import (
    COMMITTER_INFO,
    GroupCommit,
    bind_group_commit,
)
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.postings import Posting, post_transaction
from azora_nexus.domain.ledger.schemas import TransferRequest
from azora_nexus.domain.ledger.transfers import transfer
from azora_nexus.errors import InsufficientFunds
from azora_nexus.sync import bind_cache
from bench.ledger_http import listening_pid

RESULTS = Path(__file__).with_name("results")
ACTOR = Principal(user_id="bench", role=Role.SERVICE)
START_BALANCE = Decimal("1000000.00")


@dataclass(frozen=True)
class Plan:
    seconds: float
    clients: int
    wallets: int
    hot: int
    processes: int
    pre_ping: bool


@asynccontextmanager
async def open_db(
    database_url: str, redis_url: str, pool_size: int, *, pre_ping: bool = True
) -> AsyncIterator[Database]:
    """The database as a Nexus node opens it: sessions that invalidate through the cache.

    `pre_ping=False` measures the engine without its checkout ping (BEGIN; ";"; ROLLBACK:
    three round trips per request).
    """
    engine = create_engine(database_url, pool_size=pool_size)
    engine.pool._pre_ping = pre_ping
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    settings = Settings()
    try:
        async with open_cache(redis_url) as cache:
            committer = GroupCommit(
                engine,
                cache,
                window_s=settings.ledger_batch_window_s,
                max_batch=settings.ledger_batch_max,
                in_flight=settings.ledger_batch_in_flight,
            )
            bind_cache(sessions, cache)
            bind_group_commit(sessions, committer)  # as a node does (nexus.py)
            yield Database(engine=engine, sessions=sessions)
            await committer.aclose()
    finally:
        await engine.dispose()


async def seed(db: Database, count: int) -> list[uuid.UUID]:
    """`count` users with a funded USD wallet each; the wallet ids."""
    user_ids = [uuid.uuid4() for _ in range(count)]
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO users (id, email, username, password_hash) "
                "SELECT id, id::text || '@bench.test', id::text, 'x' "
                "FROM unnest(CAST(:ids AS uuid[])) AS u(id)"
            ),
            {"ids": user_ids},
        )
        wallets = await ensure_wallets(session, user_ids, Currency.USD)
        pool = await system_account_id(session, SystemAccountKind.MINING_POOL, Currency.USD)
        wallet_ids = [wallets[u][0] for u in user_ids]
        await post_transaction(
            session,
            kind=TransactionKind.MINING_REWARD,
            idempotency_key=f"bench-seed-{uuid.uuid4()}",
            request_hash="seed",
            postings=[
                Posting(Currency.USD, -START_BALANCE * count, system_account_id=pool),
                *(Posting(Currency.USD, START_BALANCE, wallet_id=w) for w in wallet_ids),
            ],
        )
    return wallet_ids


def zipf_weights(count: int) -> list[float]:
    return [1.0 / rank for rank in range(1, count + 1)]


async def client(
    db: Database, wallets: list[uuid.UUID], deadline: float, seed_value: int
) -> tuple[list[float], int]:
    """Transfer until `deadline`; each completed transfer's latency, and the refusals."""
    rng = random.Random(seed_value)
    weights = zipf_weights(len(wallets))
    latencies: list[float] = []
    refused = 0
    while time.monotonic() < deadline:
        source, target = rng.choices(wallets, weights, k=2)
        if source == target:
            continue
        body = TransferRequest(
            from_wallet_id=source,
            to_wallet_id=target,
            amount=str(Decimal(rng.randint(1, 1000)) / 100),
            idempotency_key=f"bench-{uuid.uuid4()}",
        )
        started = time.perf_counter()
        try:
            await transfer(db.sessions, body, actor=ACTOR)
        except InsufficientFunds:
            refused += 1
            continue
        latencies.append(time.perf_counter() - started)
    return latencies, refused


async def run_clients(
    urls: tuple[str, str], wallets: list[uuid.UUID], clients: int, start_at: float, plan: Plan
) -> tuple[list[float], int, float, int]:
    async with open_db(*urls, pool_size=clients, pre_ping=plan.pre_ping) as db:
        # Warm the pool so the timed window measures transfers, not connecting.
        await asyncio.gather(*(_ping(db) for _ in range(clients)))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + plan.seconds
        cpu_before = time.process_time()
        results = await asyncio.gather(
            *(client(db, wallets, deadline, random.getrandbits(32)) for _ in range(clients))
        )
        cpu_s = time.process_time() - cpu_before
        batches = db.sessions.kw["info"][COMMITTER_INFO].batches
    latencies = [lat for result in results for lat in result[0]]
    return latencies, sum(result[1] for result in results), cpu_s, batches


async def _ping(db: Database) -> None:
    async with db.sessions() as session:
        await session.execute(text("SELECT 1"))
        await asyncio.sleep(0.05)


def worker(
    urls: tuple[str, str], wallets: list[str], clients: int, start_at: float, plan: Plan
) -> tuple[list[float], int, float, int]:
    """One client process (the CPU of one Python process is the first limit), on uvloop
    as a node runs (cli/node.py)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(
            run_clients(urls, [uuid.UUID(w) for w in wallets], clients, start_at, plan)
        )


def server_roots(urls: Sequence[str]) -> dict[str, psutil.Process]:
    """The processes listening on the ports `urls` name, by the URL's scheme (postgresql,
    redis, mongodb): found once, since walking every process's sockets costs a tenth of a
    core when done five times a second."""
    roots: dict[str, psutil.Process] = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.port is not None:
            roots[parts.scheme.split("+")[0]] = psutil.Process(listening_pid(parts.port))
    return roots


def server_cpu(roots: dict[str, psutil.Process]) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each server process and its children (PostgreSQL's backends
    are children of the postmaster), by pid, with its server's name."""
    found: dict[int, tuple[str, float]] = {}
    for name, root in roots.items():
        with contextlib.suppress(psutil.NoSuchProcess):
            for member in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = member.cpu_times()
                    found[member.pid] = (name, times.user + times.system)
    return found


async def sample_server_cpu(
    urls: Sequence[str], start_at: float, done: asyncio.Event
) -> dict[str, float]:
    """CPU seconds each server (by scheme) spent from `start_at` until `done`, sampled every
    0.5 s as backends come and go (a backend that exits keeps its last sample)."""
    roots = await asyncio.to_thread(server_roots, urls)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    baseline = await asyncio.to_thread(server_cpu, roots)
    last = dict(baseline)
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.5)
        last.update(await asyncio.to_thread(server_cpu, roots))
    spent: dict[str, float] = dict.fromkeys(roots, 0.0)
    for pid, (name, cpu) in last.items():
        spent[name] += cpu - baseline.get(pid, (name, 0.0))[1]
    return spent


def cpu_figures(transfers: int, clients_s: float, servers_s: dict[str, float]) -> dict[str, Any]:
    """CPU per transfer of the clients (or the node) and of each server. It does not depend
    on what else the machine runs: it bounds what this code can do on two idle cores (the
    ceiling), whatever the load now."""
    clients_ms = clients_s * 1000 / max(1, transfers)
    by_server = {name: round(s * 1000 / max(1, transfers), 3) for name, s in servers_s.items()}
    servers_ms = sum(by_server.values())
    return {
        "cpu_ms_per_transfer_clients": round(clients_ms, 3),
        "cpu_ms_per_transfer_servers": round(servers_ms, 3),
        "cpu_ms_per_transfer_by_server": by_server,
        "ceiling_transfers_per_s_on_2_idle_cores": round(2000 / (clients_ms + servers_ms)),
    }


async def check(db: Database, wallets: list[uuid.UUID]) -> dict[str, Any]:
    """The ledger invariant, exactly; raises if it does not hold."""
    async with db.sessions() as session:
        drift = await session.scalar(
            text(
                """
                SELECT count(*) FROM (
                    SELECT w.id FROM wallets w LEFT JOIN ledger_postings p ON p.wallet_id = w.id
                    GROUP BY w.id, w.balance HAVING w.balance <> coalesce(sum(p.amount), 0)
                ) AS bad
                """
            )
        )
        unbalanced = await session.scalar(
            text(
                "SELECT count(*) FROM (SELECT transaction_id FROM ledger_postings"
                " GROUP BY transaction_id, currency HAVING sum(amount) <> 0) AS bad"
            )
        )
        negative = await session.scalar(text("SELECT count(*) FROM wallets WHERE balance < 0"))
        total = await session.scalar(
            text("SELECT sum(balance) FROM wallets WHERE id = ANY(:ids)"), {"ids": wallets}
        )
        # This run's transfers: the wallets are its own (seeded fresh for it).
        transfers = await session.scalar(
            text(
                "SELECT count(DISTINCT p.transaction_id) FROM ledger_postings AS p"
                " JOIN ledger_transactions AS t ON t.id = p.transaction_id"
                " WHERE t.kind = 'transfer' AND p.wallet_id = ANY(:ids)"
            ),
            {"ids": wallets},
        )
    expected = START_BALANCE * len(wallets)
    ok = (drift, unbalanced, negative, total) == (0, 0, 0, expected)
    figures = {
        "invariant_exact": ok,
        "balances_off_their_postings": drift,
        "unbalanced_transactions": unbalanced,
        "negative_wallets": negative,
        "wallet_total": str(total),
        "transfers_in_ledger": transfers,
    }
    if not ok:
        raise SystemExit(f"LEDGER INVARIANT BROKEN: {figures}")
    return figures


async def bench(urls: tuple[str, str], plan: Plan) -> dict[str, Any]:
    async with open_db(*urls, pool_size=4) as db:
        wallets = await seed(db, plan.wallets)
    start_at = time.time() + 3 + 1.5 * plan.processes  # time to spawn and warm up
    shares = [plan.clients // plan.processes] * plan.processes
    for n in range(plan.clients % plan.processes):
        shares[n] += 1
    finished = asyncio.Event()
    sampler = asyncio.create_task(sample_server_cpu(urls, start_at, finished))
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with context.Pool(plan.processes) as pool:
        pending = [
            pool.apply_async(worker, (urls, [str(w) for w in wallets], share, start_at, plan))
            for share in shares
        ]
        # Each worker's clients stop `seconds` after they start; the pool is closed after.
        results = [await loop.run_in_executor(None, p.get) for p in pending]
        finished.set()
        servers_cpu = await sampler
    latencies = sorted(lat for result in results for lat in result[0])
    refused = sum(result[1] for result in results)
    batches = sum(result[3] for result in results)
    clients_cpu_s = sum(result[2] for result in results)
    async with open_db(*urls, pool_size=4) as db:
        invariant = await check(db, wallets)
    assert invariant["transfers_in_ledger"] == len(latencies)
    return {
        "transfers": len(latencies),
        "group_commit_batches": batches,
        "transfers_per_batch": round(len(latencies) / max(1, batches), 1),
        "transfers_per_s": round(len(latencies) / plan.seconds, 1),
        "refused_insufficient_funds": refused,
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        **cpu_figures(len(latencies), clients_cpu_s, servers_cpu),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        **invariant,
    }


async def main(plan: Plan) -> dict[str, Any]:
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        await upgrade(database_url)
        return await bench((database_url, redis_url), plan)
    with tempfile.TemporaryDirectory(prefix="azora-bench-") as data_dir:
        os.chmod(data_dir, 0o755)  # the embedded PostgreSQL runs as its own user
        settings = Settings(AZORA_DATA_DIR=Path(data_dir))
        async with start_backends(settings) as urls:
            await upgrade(urls.database)
            return await bench((urls.database, urls.redis), plan)


def parse() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--wallets", type=int, default=100)
    parser.add_argument("--hot", type=int, default=10, help="documentation: Zipf s=1 makes 10 hot")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--no-pre-ping", action="store_true", help="skip the pool's checkout ping (3 round trips)"
    )
    parser.add_argument(
        "--vs-pgledger",
        action="store_true",
        help="pgledger, Nexus in-process and over HTTP side by side (bench/ledger_compare.py)",
    )
    args, _ = parser.parse_known_args()
    if args.vs_pgledger:
        from bench.ledger_compare import main as compare

        compare()
        raise SystemExit(0)
    return Plan(
        args.seconds, args.clients, args.wallets, args.hot, args.processes, not args.no_pre_ping
    )


if __name__ == "__main__":
    plan = parse()
    figures = {
        "plan": plan.__dict__,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **asyncio.run(main(plan)),
    }
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ledger.json").write_text(json.dumps(figures, indent=2) + "\n")
