"""Progress through a course: lessons completed on the way, a certificate and badges at 100."""

from __future__ import annotations

import uuid

from sqlalchemy import func, inspect, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Principal
from azora_nexus.cache import keys
from azora_nexus.domain.access import active_user, get_or_raise, require_owner_or_privileged
from azora_nexus.domain.education.models import Achievement, Certificate, Enrollment, Lesson
from azora_nexus.domain.education.schemas import CertificatePublic, EnrollmentPublic
from azora_nexus.errors import Conflict
from azora_nexus.events.outbox import add_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = "education"
COMPLETE = 100

# Badges earned by the number of courses completed, checked each time a certificate is issued.
ACHIEVEMENTS = ((1, "first_course_completed"), (5, "five_courses_completed"))


def lessons_done(progress: int, lesson_count: int) -> int:
    """How many lessons a progress covers: lesson i is done at (i + 1) / count of the course."""
    return progress * lesson_count // COMPLETE


async def update_progress(
    session: AsyncSession, enrollment_id: uuid.UUID, progress: int, *, actor: Principal
) -> EnrollmentPublic:
    """Progress moves forward only; 100 issues the one certificate of this enrollment."""
    async with session.begin():
        found = await get_or_raise(session, Enrollment, enrollment_id)
        require_owner_or_privileged(actor, found.user_id, "enrollment")
        # Lock order users → enrollments, as a user's erasure (cascading to enrollments) takes
        # them; the user lock also serialises one user's completions for the badge count.
        await active_user(session, found.user_id, lock=True)
        enrollment = await get_or_raise(session, Enrollment, enrollment_id, lock=True)
        if progress < enrollment.progress:
            raise Conflict(f"progress only moves forward: it is {enrollment.progress} already")
        before = enrollment.progress
        enrollment.progress = progress
        await _complete_lessons(session, enrollment, before)
        certificate = None
        if progress == COMPLETE and before < COMPLETE:
            enrollment.completed_at = func.now()
            certificate = await _issue_certificate(session, enrollment)
        elif progress == COMPLETE:
            certificate = await session.scalar(
                select(Certificate).where(Certificate.enrollment_id == enrollment.id)
            )
        await session.flush()
        if "completed_at" in inspect(enrollment).expired_attributes:
            # A SQL expression is not read back by the flush; the database's clock is the one
            # every other timestamp here uses.
            await session.refresh(enrollment, ["completed_at"])
        invalidate_after_commit(
            session, [keys.enrollment(enrollment.id), keys.user_enrollments(enrollment.user_id)]
        )
        public = EnrollmentPublic.model_validate(enrollment)
        if certificate is None:
            return public
        return public.model_copy(
            update={"certificate": CertificatePublic.model_validate(certificate)}
        )


async def _complete_lessons(session: AsyncSession, enrollment: Enrollment, before: int) -> None:
    """One `education.lesson.completed` per lesson whose boundary this update crossed."""
    lessons = (
        await session.execute(
            select(Lesson.id, Lesson.position, Lesson.title)
            .where(Lesson.course_id == enrollment.course_id)
            .order_by(Lesson.position)
        )
    ).all()
    count = len(lessons)
    for lesson in lessons[lessons_done(before, count) : lessons_done(enrollment.progress, count)]:
        await add_event(
            session,
            "education.lesson.completed",
            {
                "enrollmentId": str(enrollment.id),
                "courseId": str(enrollment.course_id),
                "lessonId": str(lesson.id),
                "position": lesson.position,
                "title": lesson.title,
                "progress": enrollment.progress,
            },
            source=SOURCE,
            user_id=str(enrollment.user_id),
        )


async def _issue_certificate(session: AsyncSession, enrollment: Enrollment) -> Certificate:
    """The enrollment's certificate, the badges it earns, and one event announcing both."""
    certificate = Certificate(
        enrollment_id=enrollment.id, user_id=enrollment.user_id, course_id=enrollment.course_id
    )
    session.add(certificate)
    await session.flush()
    awarded = await _award_achievements(session, enrollment.user_id)
    await add_event(
        session,
        "education.certificate.issued",
        {
            "certificateId": str(certificate.id),
            "enrollmentId": str(enrollment.id),
            "courseId": str(enrollment.course_id),
            "achievements": awarded,
        },
        source=SOURCE,
        user_id=str(enrollment.user_id),
    )
    return certificate


async def _award_achievements(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    """The badges the user's certificate count now earns and did not have yet."""
    completed = await session.scalar(
        select(func.count()).select_from(Certificate).where(Certificate.user_id == user_id)
    )
    earned = [kind for threshold, kind in ACHIEVEMENTS if (completed or 0) >= threshold]
    if not earned:
        return []
    # DO NOTHING: a badge already held stays as it was; RETURNING names the new ones only.
    new = await session.scalars(
        insert(Achievement)
        .values([{"user_id": user_id, "kind": kind} for kind in earned])
        .on_conflict_do_nothing(index_elements=["user_id", "kind"])
        .returning(Achievement.kind)
    )
    return sorted(new.all())
