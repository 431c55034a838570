"""Demo work: jobs posted by demo users, bids on them, contracts signed and paid via escrow.

A job is found again by its numbered title among the demo users' jobs, an application by
its (job, applicant) pair, a contract by its job; each step runs only when an earlier run
did not get that far, so a re-run makes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import text

from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.domain.marketplace import escrow
from azora_nexus.domain.marketplace import service as marketplace
from azora_nexus.domain.marketplace.models import ContractStatus
from azora_nexus.domain.marketplace.schemas import ApplicationCreate, JobCreate
from azora_nexus.domain.seed import plan
from azora_nexus.domain.seed.concurrency import Progress, for_each
from azora_nexus.domain.seed.report import SeedReport
from azora_nexus.domain.seed.target import SeedTarget
from azora_nexus.errors import Conflict, Forbidden

UserIds = dict[int, uuid.UUID]

_JOBS = text(
    "SELECT title, id, poster_id FROM jobs WHERE poster_id = ANY(CAST(:user_ids AS uuid[])) "
    "AND title = ANY(CAST(:titles AS text[]))"
)
_APPLICATIONS = text(
    "SELECT job_id, applicant_id, id FROM applications WHERE job_id = ANY(CAST(:jobs AS uuid[]))"
)
_CONTRACTS = text(
    "SELECT job_id, id, status FROM contracts WHERE job_id = ANY(CAST(:jobs AS uuid[]))"
)


@dataclass
class JobState:
    """How far an earlier run got with one demo job."""

    job_id: uuid.UUID | None = None
    poster_id: uuid.UUID | None = None  # who posted it: the plan's poster at that run's size
    applications: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # by applicant
    contract: tuple[uuid.UUID, ContractStatus] | None = None


async def job_states(
    target: SeedTarget, users: UserIds, plans: list[plan.JobPlan]
) -> dict[str, JobState]:
    """What exists of each planned job, by title."""
    states = {p.title: JobState() for p in plans}
    async with target.db.sessions() as session:
        params = {"user_ids": list(users.values()), "titles": list(states)}
        jobs: dict[uuid.UUID, str] = {}
        for row in await session.execute(_JOBS, params):
            jobs[row.id] = row.title
            states[row.title].job_id, states[row.title].poster_id = row.id, row.poster_id
        for row in await session.execute(_APPLICATIONS, {"jobs": list(jobs)}):
            states[jobs[row.job_id]].applications[row.applicant_id] = row.id
        for row in await session.execute(_CONTRACTS, {"jobs": list(jobs)}):
            states[jobs[row.job_id]].contract = (row.id, ContractStatus(row.status))
    return states


async def seed_jobs(
    target: SeedTarget, users: UserIds, size: plan.SeedSize, report: SeedReport, progress: Progress
) -> None:
    """Demo jobs 0..size.jobs-1 with their applications, contracts and payments."""
    plans = [plan.job(index, size.users) for index in range(size.jobs)]
    states = await job_states(target, users, plans)
    progress.phase("jobs, applications and contracts", len(plans))
    await for_each(
        plans,
        lambda p: JobSeeder(target, users, report).run(p, states[p.title]),
        progress=progress,
    )


@dataclass(frozen=True)
class JobSeeder:
    """Takes one demo job as far as its plan says, step by step, skipping steps made."""

    target: SeedTarget
    users: UserIds
    report: SeedReport

    async def run(self, planned: plan.JobPlan, state: JobState) -> None:
        # Acting as the job's own poster, who may be another user when a run of another
        # size posted it.
        poster = state.poster_id or self.users.get(planned.poster)
        if poster is None:
            self.report.jobs.refused += 1
            return
        if state.job_id is None:
            job_id = await self.post(planned, poster)
        else:
            job_id = state.job_id
            self.report.jobs.existing += 1
        await self.apply(planned, job_id, state)
        if planned.outcome is plan.Outcome.OPEN or not planned.bids:
            return
        contract = state.contract
        if contract is None:
            contract = await self.accept(planned, poster, state)
        else:
            self.report.contracts.existing += 1
        if contract is not None and planned.outcome is plan.Outcome.RELEASED:
            await self.release(poster, *contract)

    async def post(self, planned: plan.JobPlan, poster: uuid.UUID) -> uuid.UUID:
        body = JobCreate(
            title=planned.title,
            description=planned.description,
            budget=str(planned.budget),
            currency=Currency.AZR,
        )
        async with self.target.db.sessions() as session:
            job = await marketplace.post_job(session, body, poster_id=poster)
        self.report.jobs.new += 1
        return job.id

    async def apply(self, planned: plan.JobPlan, job_id: uuid.UUID, state: JobState) -> None:
        for bid in planned.bids:
            applicant = self.users.get(bid.applicant)
            if applicant is None:
                self.report.applications.refused += 1
            elif applicant in state.applications:
                self.report.applications.existing += 1
            else:
                await self.bid(job_id, applicant, bid, state)

    async def bid(
        self, job_id: uuid.UUID, applicant: uuid.UUID, bid: plan.Bid, state: JobState
    ) -> None:
        body = ApplicationCreate(proposal=bid.proposal, bid=str(bid.amount))
        try:
            async with self.target.db.sessions() as session:
                made = await marketplace.apply(session, job_id, body, applicant_id=applicant)
        except (Conflict, Forbidden):
            # A job an earlier run of another size made: closed by now, or posted by this
            # applicant.
            self.report.applications.refused += 1
            return
        state.applications[applicant] = made.id
        self.report.applications.new += 1

    async def accept(
        self, planned: plan.JobPlan, poster: uuid.UUID, state: JobState
    ) -> tuple[uuid.UUID, ContractStatus] | None:
        """The poster accepts the first bid: escrow holds the budget; None when refused."""
        winner = self.users.get(planned.bids[0].applicant)
        application = state.applications.get(winner) if winner else None
        if application is None:
            self.report.contracts.refused += 1
            return None
        try:
            async with self.target.db.sessions() as session:
                contract = await escrow.accept(
                    session, application, actor=Principal(str(poster), Role.USER)
                )
        except Conflict:
            # The poster's balance no longer covers the budget (many jobs, few users).
            self.report.contracts.refused += 1
            return None
        self.report.contracts.new += 1
        return contract.id, contract.status

    async def release(
        self, poster: uuid.UUID, contract_id: uuid.UUID, status: ContractStatus
    ) -> None:
        """The poster pays the worker out of escrow, unless an earlier run did."""
        if status is ContractStatus.RELEASED:
            self.report.releases.existing += 1
            return
        async with self.target.db.sessions() as session:
            await escrow.release(session, contract_id, actor=Principal(str(poster), Role.USER))
        self.report.releases.new += 1
