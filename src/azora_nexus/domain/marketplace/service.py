"""Jobs and applications: post a job, list the open ones, apply once to another's job."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Principal
from azora_nexus.domain.access import active_user, subject_user_id
from azora_nexus.domain.keyset import page_by_creation
from azora_nexus.domain.ledger.amounts import format_amount, parse_amount
from azora_nexus.domain.marketplace.models import Application, Job, JobStatus
from azora_nexus.domain.marketplace.schemas import (
    ApplicationCreate,
    ApplicationPublic,
    JobCreate,
    JobPublic,
)
from azora_nexus.domain.paging import Page, PageRequest
from azora_nexus.errors import Conflict, DuplicateKey, Forbidden, NotFound
from azora_nexus.events.outbox import add_event

SOURCE = "marketplace"


def job_public(job: Job) -> JobPublic:
    """The job as the wire shows it: the budget with its currency's places."""
    return JobPublic(
        id=job.id,
        poster_id=job.poster_id,
        title=job.title,
        description=job.description,
        budget=format_amount(job.budget, job.currency),
        currency=job.currency,
        status=job.status,
        created_at=job.created_at,
    )


def application_public(application: Application, job: Job) -> ApplicationPublic:
    return ApplicationPublic(
        id=application.id,
        job_id=application.job_id,
        applicant_id=application.applicant_id,
        proposal=application.proposal,
        bid=format_amount(application.bid, job.currency),
        status=application.status,
        created_at=application.created_at,
    )


async def post_job(session: AsyncSession, body: JobCreate, *, poster_id: uuid.UUID) -> JobPublic:
    """An open job posted by the user, announced to everyone."""
    budget = parse_amount(body.budget, body.currency, field="budget")
    async with session.begin():
        await active_user(session, poster_id)
        job = Job(
            poster_id=poster_id,
            title=body.title,
            description=body.description,
            budget=budget,
            currency=body.currency,
            status=JobStatus.OPEN,
        )
        session.add(job)
        await session.flush()
        public = job_public(job)
        # Public (no userId): a posted job is news for every worker, not for its poster only.
        await add_event(
            session,
            "marketplace.job.posted",
            {
                "jobId": str(job.id),
                "posterId": str(poster_id),
                "title": job.title,
                "budget": public.budget,
                "currency": job.currency.value,
            },
            source=SOURCE,
        )
        return public


async def post_job_as(session: AsyncSession, body: JobCreate, *, actor: Principal) -> JobPublic:
    """A job posted by the calling user."""
    return await post_job(session, body, poster_id=subject_user_id(actor))


async def list_open_jobs(session: AsyncSession, page: PageRequest) -> Page[JobPublic]:
    """The open jobs, oldest first."""
    query = select(Job).where(Job.status == JobStatus.OPEN)
    return await page_by_creation(session, query, (Job.created_at, Job.id), page, job_public)


async def apply(
    session: AsyncSession, job_id: uuid.UUID, body: ApplicationCreate, *, applicant_id: uuid.UUID
) -> ApplicationPublic:
    """The applicant's one application to an open job of someone else; the poster is told."""
    async with session.begin():
        # FOR SHARE: an accept (FOR UPDATE on the job) cannot close it under this application.
        job = await session.get(Job, job_id, with_for_update={"read": True})
        if job is None:
            raise NotFound(f"no job {job_id}")
        await active_user(session, applicant_id)
        if job.poster_id == applicant_id:
            raise Forbidden("a poster cannot apply to its own job")
        if job.status is not JobStatus.OPEN:
            raise Conflict(f"job {job_id} is {job.status.value}, not open")
        bid = parse_amount(body.bid, job.currency, field="bid")
        application = Application(
            job_id=job.id, applicant_id=applicant_id, proposal=body.proposal, bid=bid
        )
        session.add(application)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise DuplicateKey(f"user {applicant_id} has applied to job {job_id} already") from exc
        public = application_public(application, job)
        await add_event(
            session,
            "marketplace.application.submitted",
            {
                "applicationId": str(application.id),
                "jobId": str(job.id),
                "applicantId": str(applicant_id),
                "bid": public.bid,
                "currency": job.currency.value,
            },
            source=SOURCE,
            user_id=str(job.poster_id),
        )
        return public


async def apply_as(
    session: AsyncSession, job_id: uuid.UUID, body: ApplicationCreate, *, actor: Principal
) -> ApplicationPublic:
    """The calling user's application to the job."""
    return await apply(session, job_id, body, applicant_id=subject_user_id(actor))
