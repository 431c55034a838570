"""Courses and enrollments: create and read courses, enroll once, list certificates."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from azora_nexus.auth.tokens import Principal
from azora_nexus.cache import keys
from azora_nexus.cache.cache import Cache
from azora_nexus.database.engine import Database
from azora_nexus.domain.access import active_user, get_or_raise, subject_user_id
from azora_nexus.domain.education.models import Certificate, Course, Enrollment, Lesson
from azora_nexus.domain.education.schemas import (
    CertificatePublic,
    CourseCreate,
    CoursePublic,
    CourseSummary,
    EnrollmentPublic,
)
from azora_nexus.domain.keyset import page_by_creation
from azora_nexus.domain.paging import Page, PageRequest
from azora_nexus.errors import DuplicateKey, NotFound
from azora_nexus.events.outbox import add_event
from azora_nexus.sync import invalidate_after_commit, read_through

SOURCE = "education"


async def create_course(
    session: AsyncSession, body: CourseCreate, *, actor: Principal
) -> CoursePublic:
    """A new course with its lessons at positions 0, 1, ... in the order given."""
    async with session.begin():
        course = Course(title=body.title, description=body.description, created_by=actor.user_id)
        course.lessons = [
            Lesson(position=position, title=lesson.title, content=lesson.content)
            for position, lesson in enumerate(body.lessons)
        ]
        session.add(course)
        await session.flush()
        return CoursePublic.model_validate(course)


async def load_course(db: Database, course_id: uuid.UUID) -> dict[str, Any]:
    """One course with its lessons in order, as the wire shows it; NotFound otherwise."""
    async with db.sessions() as session:
        course = await session.scalar(
            select(Course).where(Course.id == course_id).options(selectinload(Course.lessons))
        )
    if course is None:
        raise NotFound(f"no course {course_id}")
    return CoursePublic.model_validate(course).model_dump(mode="json", by_alias=True)


async def get_course(db: Database, cache: Cache, course_id: uuid.UUID) -> CoursePublic:
    """One course with its lessons, cache-aside; NotFound otherwise."""
    found = await read_through(cache, keys.course(course_id), lambda: load_course(db, course_id))
    return CoursePublic.model_validate(found)


async def list_courses(session: AsyncSession, page: PageRequest) -> Page[CourseSummary]:
    """Every course, oldest first, one page at a time."""
    return await page_by_creation(
        session,
        select(Course),
        (Course.created_at, Course.id),
        page,
        CourseSummary.model_validate,
    )


async def enroll(
    session: AsyncSession, course_id: uuid.UUID, *, user_id: uuid.UUID
) -> EnrollmentPublic:
    """The user's one enrollment in the course; DuplicateKey (409) the second time."""
    async with session.begin():
        await active_user(session, user_id)
        course = await get_or_raise(session, Course, course_id)
        enrollment = Enrollment(user_id=user_id, course_id=course.id, progress=0)
        session.add(enrollment)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise DuplicateKey(f"user {user_id} is enrolled in course {course_id} already") from exc
        await add_event(
            session,
            "education.course.enrolled",
            {"enrollmentId": str(enrollment.id), "courseId": str(course.id), "title": course.title},
            source=SOURCE,
            user_id=str(user_id),
        )
        invalidate_after_commit(session, [keys.user_enrollments(user_id)])
        return EnrollmentPublic.model_validate(enrollment)


async def enroll_caller(
    session: AsyncSession, course_id: uuid.UUID, *, actor: Principal
) -> EnrollmentPublic:
    """The calling user's one enrollment in the course."""
    return await enroll(session, course_id, user_id=subject_user_id(actor))


async def list_certificates(
    session: AsyncSession, page: PageRequest, *, actor: Principal
) -> Page[CertificatePublic]:
    """The caller's certificates, oldest first."""
    user_id = subject_user_id(actor)
    query = select(Certificate).where(Certificate.user_id == user_id)
    # Certificates are keyed like every list, by when they were made: issued_at.
    return await page_by_creation(
        session,
        query,
        (Certificate.issued_at, Certificate.id),
        page,
        CertificatePublic.model_validate,
    )
