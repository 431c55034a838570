"""`seed`: every phase of the demo world in order, into an open Nexus."""

from __future__ import annotations

from azora_nexus.domain.seed.concurrency import Progress
from azora_nexus.domain.seed.learning import seed_courses, seed_enrollments
from azora_nexus.domain.seed.money import fund_users, seed_transfers
from azora_nexus.domain.seed.people import seed_users
from azora_nexus.domain.seed.plan import SeedSize
from azora_nexus.domain.seed.report import SeedReport
from azora_nexus.domain.seed.target import SeedTarget
from azora_nexus.domain.seed.work import seed_jobs


async def seed_into(target: SeedTarget, size: SeedSize, progress: Progress) -> SeedReport:
    """Users, their funded wallets, courses and enrollments, jobs, then transfers; what
    exists already is left as it is, so a second run with the same size makes nothing."""
    report = SeedReport()
    users = await seed_users(target, size.users, report, progress)
    await fund_users(target, users, report, progress)
    courses = await seed_courses(target, size.courses, report, progress)
    await seed_enrollments(target, users, courses, report, progress)
    # Jobs before transfers: escrow holds come out of the full starting balances.
    await seed_jobs(target, users, size, report, progress)
    await seed_transfers(target, users, size, report, progress)
    return report
