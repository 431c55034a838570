"""Demo learning: courses with ordered lessons, enrollments, progress and certificates.

Courses are found again by their title among the seed's own (`created_by = 'seed'`), an
enrollment by its (user, course) pair; progress only moves forward, so a re-run that finds
an enrollment as far along as planned leaves it alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text

from azora_nexus.domain.education import progress as education_progress
from azora_nexus.domain.education import service as education
from azora_nexus.domain.education.progress import COMPLETE
from azora_nexus.domain.seed import catalog, plan
from azora_nexus.domain.seed.concurrency import Progress, for_each
from azora_nexus.domain.seed.report import SeedReport
from azora_nexus.domain.seed.target import SEEDER, SeedTarget

_COURSES = text(
    "SELECT title, id FROM courses WHERE created_by = :seeder "
    "AND title = ANY(CAST(:titles AS text[]))"
)
_ENROLLMENTS = text(
    "SELECT user_id, course_id, id, progress FROM enrollments "
    "WHERE user_id = ANY(CAST(:user_ids AS uuid[]))"
)


async def seed_courses(
    target: SeedTarget, count: int, report: SeedReport, progress: Progress
) -> dict[int, uuid.UUID]:
    """Demo courses 0..count-1 with their lessons, each created once; their ids by number."""
    titles = [catalog.course_title(i) for i in range(count)]
    async with target.db.sessions() as session:
        rows = await session.execute(_COURSES, {"seeder": SEEDER.user_id, "titles": titles})
        by_title = {row.title: row.id for row in rows}
    ids = {i: by_title[title] for i, title in enumerate(titles) if title in by_title}
    report.courses.existing += len(ids)
    todo = [i for i in range(count) if i not in ids]
    progress.phase("courses and lessons", len(todo))

    async def create(index: int) -> None:
        async with target.db.sessions() as session:
            course = await education.create_course(session, catalog.course(index), actor=SEEDER)
        ids[index] = course.id
        report.courses.new += 1

    await for_each(todo, create, progress=progress)
    return ids


@dataclass(frozen=True)
class PlannedEnrollment:
    user_id: uuid.UUID
    course_id: uuid.UUID
    progress: int
    existing: tuple[uuid.UUID, int] | None  # the enrollment's id and progress, if made


async def seed_enrollments(
    target: SeedTarget,
    users: dict[int, uuid.UUID],
    courses: dict[int, uuid.UUID],
    report: SeedReport,
    progress: Progress,
) -> None:
    """Each demo user's enrollments, moved to their planned progress (100 issues the
    certificate), each made once."""
    async with target.db.sessions() as session:
        rows = await session.execute(_ENROLLMENTS, {"user_ids": list(users.values())})
        made = {(row.user_id, row.course_id): (row.id, row.progress) for row in rows}
    todo: list[PlannedEnrollment] = []
    for index in sorted(users):
        for course, value in plan.enrollments(index, len(courses)):
            pair = (users[index], courses[course])
            planned = PlannedEnrollment(*pair, progress=value, existing=made.get(pair))
            if planned.existing is None or planned.existing[1] < value:
                todo.append(planned)
            tally_existing(report, planned)
    progress.phase("enrollments and progress", len(todo))

    async def take(planned: PlannedEnrollment) -> None:
        if planned.existing is None:
            async with target.db.sessions() as session:
                enrolled = await education.enroll(
                    session, planned.course_id, user_id=planned.user_id
                )
            report.enrollments.new += 1
            enrollment_id, before = enrolled.id, enrolled.progress
        else:
            enrollment_id, before = planned.existing
        if planned.progress > before:
            async with target.db.sessions() as session:
                # The service's own rules: forward only, lesson events, one certificate.
                await education_progress.update_progress(
                    session, enrollment_id, planned.progress, actor=SEEDER
                )
            if planned.progress == COMPLETE:
                report.certificates.new += 1

    await for_each(todo, take, progress=progress)


def tally_existing(report: SeedReport, planned: PlannedEnrollment) -> None:
    """Count what an earlier run made of this enrollment."""
    if planned.existing is None:
        return
    report.enrollments.existing += 1
    if planned.existing[1] == COMPLETE:
        report.certificates.existing += 1
