"""Demo learning: courses with ordered lessons, enrollments, progress and certificates.

Courses are found again by their title among the seed's own (`created_by = 'seed'`), an
enrollment by its (user, course) pair; progress only moves forward, so a re-run that finds
an enrollment as far along as planned leaves it alone. New enrollments are written a batch
per transaction (bulk_learning.py); one an interrupted run left behind its plan goes on
through the progress service.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from azora_nexus.domain.education import progress as education_progress
from azora_nexus.domain.education import service as education
from azora_nexus.domain.education.progress import COMPLETE
from azora_nexus.domain.seed import bulk_learning, catalog, plan
from azora_nexus.domain.seed.bulk_learning import PlannedEnrollment
from azora_nexus.domain.seed.concurrency import BATCH, Progress, for_each
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
    new: list[PlannedEnrollment] = []
    behind: list[PlannedEnrollment] = []
    for index in sorted(users):
        for course, value in plan.enrollments(index, len(courses)):
            pair = (users[index], courses[course])
            planned = PlannedEnrollment(*pair, progress=value, existing=made.get(pair))
            if planned.existing is None:
                new.append(planned)
            elif planned.existing[1] < value:
                behind.append(planned)
            tally_existing(report, planned)
    progress.phase("enrollments and progress", len(new) + len(behind))
    catalog_ = await bulk_learning.course_catalog(target, list(courses.values()))

    async def enroll(batch: list[PlannedEnrollment]) -> None:
        async with target.db.transaction() as session:
            made_now, certified = await bulk_learning.enroll_batch(session, batch, catalog_)
        report.enrollments.new += made_now
        report.certificates.new += certified

    async def catch_up(planned: PlannedEnrollment) -> None:
        assert planned.existing is not None  # an interrupted run's enrollment, rare
        async with target.db.sessions() as session:
            # The service's own rules: forward only, lesson events, one certificate.
            await education_progress.update_progress(
                session, planned.existing[0], planned.progress, actor=SEEDER
            )
        if planned.progress == COMPLETE:
            report.certificates.new += 1

    await for_each(by_user(new), enroll, progress=progress, size=len)
    await for_each(behind, catch_up, progress=progress)


def by_user(planned: list[PlannedEnrollment]) -> list[list[PlannedEnrollment]]:
    """Batches of about BATCH enrollments that never split one user's (a user's badges are
    counted over its certificates, in one transaction)."""
    out: list[list[PlannedEnrollment]] = [[]]
    for item in planned:
        last = out[-1]
        if len(last) >= BATCH and last[-1].user_id != item.user_id:
            out.append(last := [])
        last.append(item)
    return [batch for batch in out if batch]


def tally_existing(report: SeedReport, planned: PlannedEnrollment) -> None:
    """Count what an earlier run made of this enrollment."""
    if planned.existing is None:
        return
    report.enrollments.existing += 1
    if planned.existing[1] == COMPLETE:
        report.certificates.existing += 1
