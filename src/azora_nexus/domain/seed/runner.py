"""`seed`: every phase of the demo world in order, against the data dir's servers."""

from __future__ import annotations

from azora_nexus.config import Settings
from azora_nexus.domain.seed.concurrency import NoProgress, Progress
from azora_nexus.domain.seed.learning import seed_courses, seed_enrollments
from azora_nexus.domain.seed.money import fund_users, seed_transfers
from azora_nexus.domain.seed.people import seed_users
from azora_nexus.domain.seed.plan import SeedSize
from azora_nexus.domain.seed.report import SeedReport
from azora_nexus.domain.seed.target import SeedTarget, open_target
from azora_nexus.domain.seed.work import seed_jobs


async def seed(settings: Settings, size: SeedSize, progress: Progress | None = None) -> SeedReport:
    """The demo world of `size` in the data dir's database (migrated first); what exists
    already is left as it is, so a second run with the same size makes nothing."""
    async with open_target(settings) as target:
        return await seed_into(target, size, progress or NoProgress())


async def seed_into(target: SeedTarget, size: SeedSize, progress: Progress) -> SeedReport:
    """Users, their funded wallets, courses and enrollments, jobs, then transfers."""
    report = SeedReport()
    users = await seed_users(target, size.users, report, progress)
    await fund_users(target, users, report, progress)
    courses = await seed_courses(target, size.courses, report, progress)
    await seed_enrollments(target, users, courses, report, progress)
    # Jobs before transfers: escrow holds come out of the full starting balances.
    await seed_jobs(target, users, size, report, progress)
    await seed_transfers(target, users, size, report, progress)
    return report
