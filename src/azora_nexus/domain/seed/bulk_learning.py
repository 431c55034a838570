"""New enrollments a batch at a time: what `education.enroll` and then
`progress.update_progress` write for each, for many enrollments in one transaction.

Per enrollment: the row at its planned progress (completed at 100), `education.course.enrolled`,
one `education.lesson.completed` per lesson its progress covers, and at 100 the certificate,
the badges the user's certificate count earns, and `education.certificate.issued`; the
caches those services invalidate, invalidated after the commit. A batch holds every
enrollment of its users, so a user's badges are counted in one place.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.cache import keys
from azora_nexus.domain.education.progress import ACHIEVEMENTS, COMPLETE, SOURCE, lessons_done
from azora_nexus.domain.seed.target import SeedTarget
from azora_nexus.events.envelope import NewEvent
from azora_nexus.events.outbox import add_events, new_event
from azora_nexus.sync import invalidate_after_commit


@dataclass(frozen=True)
class PlannedEnrollment:
    user_id: uuid.UUID
    course_id: uuid.UUID
    progress: int
    existing: tuple[uuid.UUID, int] | None  # the enrollment's id and progress, if made


@dataclass(frozen=True)
class Lesson:
    id: uuid.UUID
    position: int
    title: str


@dataclass(frozen=True)
class Course:
    title: str
    lessons: tuple[Lesson, ...]  # in order


_LESSONS = text(
    """
    SELECT c.id AS course_id, c.title AS course_title, l.id, l.position, l.title
    FROM courses AS c LEFT JOIN lessons AS l ON l.course_id = c.id
    WHERE c.id = ANY(CAST(:ids AS uuid[]))
    ORDER BY c.id, l.position
    """
)


async def course_catalog(
    target: SeedTarget, course_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Course]:
    """The courses with their lessons in order, read once for every batch."""
    titles: dict[uuid.UUID, str] = {}
    lessons: dict[uuid.UUID, list[Lesson]] = defaultdict(list)
    async with target.db.sessions() as session:
        for row in await session.execute(_LESSONS, {"ids": course_ids}):
            titles[row.course_id] = row.course_title
            if row.id is not None:
                lessons[row.course_id].append(Lesson(row.id, row.position, row.title))
    return {c: Course(title, tuple(lessons[c])) for c, title in titles.items()}


_ENROLL = text(
    """
    INSERT INTO enrollments (user_id, course_id, progress, completed_at)
    SELECT user_id, course_id, progress, CASE WHEN progress = 100 THEN now() END
    FROM unnest(CAST(:users AS uuid[]), CAST(:courses AS uuid[]), CAST(:progress AS int[]))
        WITH ORDINALITY AS e(user_id, course_id, progress, n)
    ORDER BY n
    ON CONFLICT (user_id, course_id) DO NOTHING
    RETURNING id, user_id, course_id
    """
)

_CERTIFY = text(
    """
    INSERT INTO certificates (enrollment_id, user_id, course_id)
    SELECT enrollment_id, user_id, course_id
    FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS uuid[]), CAST(:courses AS uuid[]))
        WITH ORDINALITY AS c(enrollment_id, user_id, course_id, n)
    ORDER BY n
    RETURNING id, enrollment_id
    """
)

_HELD = text(
    """
    SELECT u.user_id,
           (SELECT count(*) FROM certificates AS c WHERE c.user_id = u.user_id) AS certificates,
           (SELECT coalesce(array_agg(a.kind), '{}') FROM achievements AS a
            WHERE a.user_id = u.user_id) AS kinds
    FROM unnest(CAST(:users AS uuid[])) AS u(user_id)
    """
)

_AWARD = text(
    """
    INSERT INTO achievements (user_id, kind)
    SELECT * FROM unnest(CAST(:users AS uuid[]), CAST(:kinds AS text[]))
    ON CONFLICT (user_id, kind) DO NOTHING
    """
)


async def enroll_batch(
    session: AsyncSession, batch: list[PlannedEnrollment], courses: dict[uuid.UUID, Course]
) -> tuple[int, int]:
    """Enroll and progress every planned enrollment of `batch` not made yet, in the caller's
    transaction; how many enrollments and certificates it made."""
    rows = await session.execute(
        _ENROLL,
        {
            "users": [p.user_id for p in batch],
            "courses": [p.course_id for p in batch],
            "progress": [p.progress for p in batch],
        },
    )
    ids = {(row.user_id, row.course_id): row.id for row in rows}
    made = [p for p in batch if (p.user_id, p.course_id) in ids]
    complete = [p for p in made if p.progress == COMPLETE]
    certificates: dict[uuid.UUID, uuid.UUID] = {}
    badges: dict[uuid.UUID, list[str]] = {}
    if complete:
        enrollment_ids = [ids[p.user_id, p.course_id] for p in complete]
        params = {
            "ids": enrollment_ids,
            "users": [p.user_id for p in complete],
            "courses": [p.course_id for p in complete],
        }
        for row in await session.execute(_CERTIFY, params):
            certificates[row.enrollment_id] = row.id
        badges = await award(session, [(p.user_id, ids[p.user_id, p.course_id]) for p in complete])
    events: list[NewEvent] = []
    for planned in made:
        enrollment_id = ids[planned.user_id, planned.course_id]
        events += announce(planned, enrollment_id, courses[planned.course_id])
        if enrollment_id in certificates:
            events.append(certified(planned, enrollment_id, certificates[enrollment_id], badges))
    await add_events(session, events)
    invalidate_after_commit(
        session,
        [keys.enrollment(ids[p.user_id, p.course_id]) for p in made]
        + [keys.user_enrollments(u) for u in dict.fromkeys(p.user_id for p in made)],
    )
    return len(made), len(certificates)


async def award(
    session: AsyncSession, completions: list[tuple[uuid.UUID, uuid.UUID]]
) -> dict[uuid.UUID, list[str]]:
    """The badges each certificate (by enrollment id) earns, in the order they were issued:
    a user's certificate count after it reaches a threshold not held before."""
    users = list(dict.fromkeys(u for u, _ in completions))
    held = {
        row.user_id: (row.certificates, set(row.kinds))
        for row in await session.execute(_HELD, {"users": users})
    }
    new_per_user: dict[uuid.UUID, int] = defaultdict(int)
    for user_id, _ in completions:
        new_per_user[user_id] += 1
    counted = {u: held[u][0] - new_per_user[u] for u in users}  # certificates before this batch
    out: dict[uuid.UUID, list[str]] = {}
    awarded: list[tuple[uuid.UUID, str]] = []
    for user_id, enrollment_id in completions:
        counted[user_id] += 1
        kinds = held[user_id][1]
        earned = sorted(k for n, k in ACHIEVEMENTS if counted[user_id] >= n and k not in kinds)
        kinds.update(earned)
        awarded += [(user_id, k) for k in earned]
        out[enrollment_id] = earned
    if awarded:
        await session.execute(
            _AWARD, {"users": [u for u, _ in awarded], "kinds": [k for _, k in awarded]}
        )
    return out


def announce(
    planned: PlannedEnrollment, enrollment_id: uuid.UUID, course: Course
) -> list[NewEvent]:
    """`education.course.enrolled`, then a `lesson.completed` per lesson the progress covers."""
    user = str(planned.user_id)
    events = [
        new_event(
            "education.course.enrolled",
            {
                "enrollmentId": str(enrollment_id),
                "courseId": str(planned.course_id),
                "title": course.title,
            },
            source=SOURCE,
            user_id=user,
        )
    ]
    for lesson in course.lessons[: lessons_done(planned.progress, len(course.lessons))]:
        events.append(
            new_event(
                "education.lesson.completed",
                {
                    "enrollmentId": str(enrollment_id),
                    "courseId": str(planned.course_id),
                    "lessonId": str(lesson.id),
                    "position": lesson.position,
                    "title": lesson.title,
                    "progress": planned.progress,
                },
                source=SOURCE,
                user_id=user,
            )
        )
    return events


def certified(
    planned: PlannedEnrollment,
    enrollment_id: uuid.UUID,
    certificate_id: uuid.UUID,
    badges: dict[uuid.UUID, list[str]],
) -> NewEvent:
    return new_event(
        "education.certificate.issued",
        {
            "certificateId": str(certificate_id),
            "enrollmentId": str(enrollment_id),
            "courseId": str(planned.course_id),
            "achievements": badges.get(enrollment_id, []),
        },
        source=SOURCE,
        user_id=str(planned.user_id),
    )
