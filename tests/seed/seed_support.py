"""What the seed tests check in the database: counts, the ledger, the outbox, the plan."""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg

from azora_nexus.domain.education.progress import COMPLETE, lessons_done
from azora_nexus.domain.seed import catalog, plan
from azora_nexus.domain.seed.plan import Outcome, SeedSize

TABLES = (
    "users",
    "profiles",
    "wallets",
    "courses",
    "lessons",
    "enrollments",
    "certificates",
    "jobs",
    "applications",
    "contracts",
    "ledger_transactions",
    "ledger_postings",
    "outbox",
)

# Each counts rows that break the double-entry ledger.
LEDGER_CHECKS = {
    "wallet balance is not the sum of its postings": """
        SELECT count(*) FROM wallets AS w WHERE w.balance <> coalesce(
            (SELECT sum(p.amount) FROM ledger_postings AS p WHERE p.wallet_id = w.id), 0)""",
    "system account balance is not the sum of its postings": """
        SELECT count(*) FROM system_accounts AS a WHERE a.balance <> coalesce(
            (SELECT sum(p.amount) FROM ledger_postings AS p WHERE p.system_account_id = a.id), 0)
        """,
    "transaction not summing to zero in a currency": """
        SELECT count(*) FROM (SELECT 1 FROM ledger_postings
            GROUP BY transaction_id, currency HAVING sum(amount) <> 0) AS unbalanced""",
    "transaction without postings": """
        SELECT count(*) FROM ledger_transactions AS t
        WHERE NOT EXISTS (SELECT 1 FROM ledger_postings AS p WHERE p.transaction_id = t.id)""",
}


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def table_counts(url: str) -> dict[str, int]:
    union = " UNION ALL ".join(f"SELECT '{t}' AS name, count(*) AS n FROM {t}" for t in TABLES)
    return {row["name"]: row["n"] for row in await fetch(url, union)}


async def ledger_problems(url: str) -> dict[str, int]:
    """Every ledger check with rows that break it (empty when the ledger is exact)."""
    found = {}
    for meaning, query in LEDGER_CHECKS.items():
        [row] = await fetch(url, query)
        if row[0]:
            found[meaning] = row[0]
    return found


async def outbox_types(url: str) -> Counter[str]:
    rows = await fetch(url, "SELECT type, count(*) AS n FROM outbox GROUP BY type")
    return Counter({row["type"]: row["n"] for row in rows})


def planned_counts(size: SeedSize) -> dict[str, int]:
    """The rows a fresh seed of `size` must make, worked out from the plan alone."""
    taken = [(c, p) for i in range(size.users) for c, p in plan.enrollments(i, size.courses)]
    jobs = [plan.job(j, size.users) for j in range(size.jobs)]
    signed = [j for j in jobs if j.outcome >= Outcome.ACCEPTED]
    released = [j for j in jobs if j.outcome is Outcome.RELEASED]
    lessons = sum(len(catalog.course(c).lessons) for c in range(size.courses))
    return {
        "users": size.users,
        "profiles": size.users,
        "wallets": size.users * len(plan.FUNDING),
        "courses": size.courses,
        "lessons": lessons,
        "enrollments": len(taken),
        "certificates": sum(1 for _, p in taken if p == COMPLETE),
        "jobs": size.jobs,
        "applications": sum(len(j.bids) for j in jobs),
        "contracts": len(signed),
        "ledger_transactions": size.users * len(plan.FUNDING)
        + len(signed)
        + len(released)
        + size.transfers,
    }


def planned_events(size: SeedSize) -> Counter[str]:
    """The outbox a fresh seed of `size` must leave, by event type."""
    counts = planned_counts(size)
    lesson_events = sum(
        lessons_done(p, len(catalog.course(c).lessons))
        for i in range(size.users)
        for c, p in plan.enrollments(i, size.courses)
    )
    planned = Counter(
        {
            "system.user.registered": counts["users"],
            "finance.wallet.created": counts["wallets"],
            "finance.mining.reward": counts["wallets"],
            "education.course.enrolled": counts["enrollments"],
            "education.lesson.completed": lesson_events,
            "education.certificate.issued": counts["certificates"],
            "marketplace.job.posted": counts["jobs"],
            "marketplace.application.submitted": counts["applications"],
            # Contracts and payments tell the poster and the worker: two events each.
            "marketplace.contract.signed": 2 * counts["contracts"],
            "marketplace.payment.released": 2
            * sum(
                1 for j in range(size.jobs) if plan.job(j, size.users).outcome is Outcome.RELEASED
            ),
            "finance.transaction.completed": 2 * size.transfers,
        }
    )
    return +planned  # without the types a small size has none of
