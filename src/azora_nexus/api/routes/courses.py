"""`/api/courses`: create (admin or service), list, read one with its lessons, enroll."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from azora_nexus.api.deps import CurrentPrincipal, NexusDep, PrivilegedPrincipal, SessionDep
from azora_nexus.api.paging import PageDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.education import service
from azora_nexus.domain.education.schemas import (
    CourseCreate,
    CoursePublic,
    CourseSummary,
    EnrollmentPublic,
)
from azora_nexus.domain.paging import Page

router = APIRouter(prefix="/api/courses", tags=["education"])


@router.post("", status_code=201, responses=errors(403))
async def create_course(
    body: CourseCreate, session: SessionDep, actor: PrivilegedPrincipal
) -> CoursePublic:
    """A new course with its lessons in the order given."""
    return await service.create_course(session, body, actor=actor)


@router.get("", responses=errors())
async def list_courses(
    session: SessionDep, page: PageDep, _: CurrentPrincipal
) -> Page[CourseSummary]:
    """Every course, oldest first."""
    return await service.list_courses(session, page)


@router.get("/{course_id}", responses=errors(404))
async def get_course(course_id: uuid.UUID, nexus: NexusDep, _: CurrentPrincipal) -> CoursePublic:
    """One course with its lessons in order (cache-aside)."""
    return await service.get_course(nexus.db, nexus.cache, course_id)


@router.post("/{course_id}/enroll", status_code=201, responses=errors(403, 404, 409))
async def enroll(
    course_id: uuid.UUID, session: SessionDep, actor: CurrentPrincipal
) -> EnrollmentPublic:
    """The caller's one enrollment in the course; 409 the second time."""
    return await service.enroll_caller(session, course_id, actor=actor)
