"""`/api/jobs`: post a job, list the open ones, apply to one."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from azora_nexus.api.deps import CurrentPrincipal, SessionDep
from azora_nexus.api.paging import PageDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.marketplace import service
from azora_nexus.domain.marketplace.schemas import (
    ApplicationCreate,
    ApplicationPublic,
    JobCreate,
    JobPublic,
)
from azora_nexus.domain.paging import Page

router = APIRouter(prefix="/api/jobs", tags=["marketplace"])


@router.post("", status_code=201, responses=errors(403, 404))
async def post_job(body: JobCreate, session: SessionDep, actor: CurrentPrincipal) -> JobPublic:
    """A job posted by the caller, open to applications."""
    return await service.post_job_as(session, body, actor=actor)


@router.get("", responses=errors())
async def list_jobs(session: SessionDep, page: PageDep, _: CurrentPrincipal) -> Page[JobPublic]:
    """The open jobs, oldest first."""
    return await service.list_open_jobs(session, page)


@router.post("/{job_id}/applications", status_code=201, responses=errors(403, 404, 409))
async def apply(
    job_id: uuid.UUID, body: ApplicationCreate, session: SessionDep, actor: CurrentPrincipal
) -> ApplicationPublic:
    """The caller's one application to another's open job."""
    return await service.apply_as(session, job_id, body, actor=actor)
