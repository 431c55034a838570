"""PostgreSQL steps of a backup and a restore: WAL switch, counts, recovery, the ledger check."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from azora_nexus.database.engine import async_url
from azora_nexus.errors import BackendUnavailable, Invalid

ARCHIVE_WAIT_S = 30.0

# Each query counts rows that break the double-entry ledger; all must be zero.
LEDGER_CHECKS = {
    "wallet balance differs from the sum of its postings": """
        SELECT count(*) FROM wallets w
        WHERE w.balance <> COALESCE(
            (SELECT sum(p.amount) FROM ledger_postings p WHERE p.wallet_id = w.id), 0)""",
    "system account balance differs from the sum of its postings": """
        SELECT count(*) FROM system_accounts a
        WHERE a.balance <> COALESCE(
            (SELECT sum(p.amount) FROM ledger_postings p WHERE p.system_account_id = a.id), 0)""",
    "transaction whose postings do not sum to zero per currency": """
        SELECT count(*) FROM (
            SELECT transaction_id FROM ledger_postings
            GROUP BY transaction_id, currency HAVING sum(amount) <> 0) unbalanced""",
}


async def connect(url: str) -> asyncpg.Connection:
    plain = async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)
    return await asyncpg.connect(plain, timeout=10)


async def close_wal_segment(url: str) -> float:
    """Archive every WAL record written so far; returns the server's time at the switch."""
    conn = await connect(url)
    try:
        switched_at: datetime = await conn.fetchval("SELECT now()")
        # The segment ending just before the switch point: a switch returns the end of the
        # segment it closed, and a no-op one (nothing important written since the last, as
        # right after a base backup) the start of the open one, whose predecessor is done.
        segment = await conn.fetchval("SELECT pg_walfile_name(pg_switch_wal() - 1)")
        deadline = time.monotonic() + ARCHIVE_WAIT_S
        while True:
            archived = await conn.fetchval("SELECT last_archived_wal FROM pg_stat_archiver")
            if archived is not None and archived[8:] >= segment[8:]:
                return switched_at.timestamp()
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"postgres did not archive WAL segment {segment} within {ARCHIVE_WAIT_S:g} s"
                )
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def table_counts(url: str) -> dict[str, int]:
    """Rows in every table of the public schema."""
    conn = await connect(url)
    try:
        names = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        return {
            row["tablename"]: await conn.fetchval(f'SELECT count(*) FROM "{row["tablename"]}"')
            for row in names
        }
    finally:
        await conn.close()


async def ledger_problems(url: str) -> list[str]:
    """Every broken ledger invariant, with how many rows break it (empty when exact)."""
    conn = await connect(url)
    try:
        problems = []
        for meaning, query in LEDGER_CHECKS.items():
            broken = await conn.fetchval(query)
            if broken:
                problems.append(f"{broken} {meaning}")
        return problems
    finally:
        await conn.close()


def configure_recovery(data_dir: Path, wal_dir: Path, target_s: float | None) -> None:
    """Make the next start replay `wal_dir`, to its end or to `target_s`, then promote."""
    settings = [f"restore_command = 'cp {wal_dir}/%f %p'", "recovery_target_action = 'promote'"]
    if target_s is not None:
        moment = datetime.fromtimestamp(target_s, UTC).isoformat()
        settings.append(f"recovery_target_time = '{moment}'")
    with (data_dir / "postgresql.auto.conf").open("a") as conf:
        conf.write("\n# azora restore\n" + "\n".join(settings) + "\n")
    (data_dir / "recovery.signal").touch()


async def wait_promoted(url: str, timeout_s: float) -> None:
    """Wait until recovery has ended and the server accepts writes; then forget the recovery."""
    conn = await connect(url)
    try:
        deadline = time.monotonic() + timeout_s
        while await conn.fetchval("SELECT pg_is_in_recovery()"):
            if time.monotonic() > deadline:
                raise Invalid(f"postgres was still recovering after {timeout_s:g} s")
            await asyncio.sleep(0.05)
        for name in ("restore_command", "recovery_target_action", "recovery_target_time"):
            await conn.execute(f"ALTER SYSTEM RESET {name}")
    finally:
        await conn.close()
