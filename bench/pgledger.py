"""The pgledger anchor: pgr0ss/pgledger's transfers on the same PostgreSQL as Nexus.

pgledger is MIT-licensed SQL written by others: it is never part of this repository. Its
SQL is loaded at run time from a copy found or fetched here (`locate`): a checkout (a
directory holding `pgledger.sql`), a bare git directory (its HEAD is read), or a fresh
`git clone` of https://github.com/pgr0ss/pgledger. Each client loops
`SELECT id FROM pgledger_create_transfer($1, $2, $3)` (one transaction, one commit each;
pgledger locks the two accounts in sorted order) between accounts drawn Zipf s=1, as
issue 17's anchor did: 32 asyncpg clients, 100 accounts.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

# The files pgledger's justfile loads, in its order (the ULID helpers first).
FILES = (
    "vendor/scoville-pgsql-ulid/ulid-to-uuid.sql",
    "vendor/scoville-pgsql-ulid/uuid-to-ulid.sql",
    "pgledger.sql",
)
REPOSITORY = "https://github.com/pgr0ss/pgledger"
DATABASE = "pgledger_bench"


@dataclass(frozen=True)
class Source:
    """Where pgledger's SQL was read from, and the SQL."""

    origin: str
    revision: str
    sql: list[str]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


def _from_git_dir(git_dir: Path) -> Source:
    revision = _git("--git-dir", str(git_dir), "rev-parse", "HEAD").strip()
    sql = [_git("--git-dir", str(git_dir), "show", f"HEAD:{name}") for name in FILES]
    return Source(str(git_dir), revision, sql)


def _from_checkout(path: Path) -> Source:
    try:
        revision = _git("-C", str(path), "rev-parse", "HEAD").strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        revision = "unknown"
    return Source(str(path), revision, [(path / name).read_text() for name in FILES])


def locate(path: str | None) -> Source:
    """pgledger's SQL from `path` (a checkout or a bare git dir), else from a clone."""
    if path is not None:
        given = Path(path)
        if (given / "pgledger.sql").exists():
            return _from_checkout(given)
        return _from_git_dir(given / ".git" if (given / ".git").is_dir() else given)
    if shutil.which("git") is None:
        raise SystemExit("pgledger: no --pgledger path given and git is not installed")
    with tempfile.TemporaryDirectory(prefix="pgledger-") as scratch:
        try:
            _git("clone", "--quiet", "--depth", "1", REPOSITORY, f"{scratch}/pgledger")
        except subprocess.CalledProcessError as exc:
            raise SystemExit(
                f"pgledger: could not clone {REPOSITORY} ({exc.stderr.strip()}); "
                "pass --pgledger PATH to a copy"
            ) from exc
        return _from_checkout(Path(scratch) / "pgledger")


async def prepare(admin_dsn: str, source: Source, accounts: int) -> tuple[str, list[str]]:
    """A fresh database with pgledger loaded and `accounts` USD accounts; its DSN and ids."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    dsn = make_url(admin_dsn).set(database=DATABASE).render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for sql in source.sql:
                await conn.execute(sql)
        ids = [
            await conn.fetchval("SELECT id FROM pgledger_create_account($1, 'USD')", f"a{n}")
            for n in range(accounts)
        ]
    finally:
        await conn.close()
    return dsn, ids


async def _client(pool: asyncpg.Pool, ids: list[str], deadline: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    weights = [1.0 / rank for rank in range(1, len(ids) + 1)]
    latencies: list[float] = []
    while time.monotonic() < deadline:
        source, target = rng.choices(ids, weights, k=2)
        if source == target:
            continue
        amount = Decimal(rng.randint(1, 1000)) / 100
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.fetchval(
                "SELECT id FROM pgledger_create_transfer($1, $2, $3)", source, target, amount
            )
        latencies.append(time.perf_counter() - started)
    return latencies


async def run(dsn: str, ids: list[str], clients: int, seconds: float) -> list[float]:
    """Transfers for `seconds` from `clients` connections; each one's latency."""
    async with asyncpg.create_pool(dsn, min_size=clients, max_size=clients) as pool:
        deadline = time.monotonic() + seconds
        results = await asyncio.gather(
            *(_client(pool, ids, deadline, random.getrandbits(32)) for _ in range(clients))
        )
    return [lat for result in results for lat in result]


async def check(dsn: str, transfers: int) -> dict[str, Any]:
    """pgledger's books: every balance the sum of its entries, the balances summing to
    zero, and as many transfers as the clients saw committed."""
    conn = await asyncpg.connect(dsn)
    try:
        drift = await conn.fetchval(
            """
            SELECT count(*) FROM pgledger_accounts AS a
            WHERE a.balance <> coalesce(
                (SELECT sum(e.amount) FROM pgledger_entries AS e WHERE e.account_id = a.id), 0)
            """
        )
        total = await conn.fetchval("SELECT sum(balance) FROM pgledger_accounts")
        count = await conn.fetchval("SELECT count(*) FROM pgledger_transfers")
    finally:
        await conn.close()
    ok = (drift, total, count) == (0, 0, transfers)
    figures = {"invariant_exact": ok, "balances_off_their_entries": drift, "transfers": count}
    if not ok:
        raise SystemExit(f"PGLEDGER INVARIANT BROKEN: {figures} (clients saw {transfers})")
    return figures
