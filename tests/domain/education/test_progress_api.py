"""Progress over HTTP: forward only, lessons completed on the way, one certificate and badges."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text

from azora_nexus.auth.tokens import Role
from azora_nexus.cache import keys
from azora_nexus.cache.cache import Cache
from azora_nexus.database.engine import Database
from azora_nexus.domain.education.progress import lessons_done
from tests.domain.domain_helpers import (
    Actor,
    Headers,
    MakeUser,
    ReadEvents,
    assert_envelope,
    outbox_types,
)


async def course_with(client: AsyncClient, headers: Headers, lessons: int) -> dict[str, Any]:
    body = {
        "title": f"Course of {lessons}",
        "lessons": [{"title": f"L{i}", "content": ""} for i in range(lessons)],
    }
    response = await client.post("/api/courses", json=body, headers=headers(Role.ADMIN))
    assert response.status_code == 201
    course: dict[str, Any] = response.json()
    return course


async def enroll(client: AsyncClient, user: Actor, course: dict[str, Any]) -> str:
    response = await client.post(f"/api/courses/{course['id']}/enroll", headers=user.headers)
    assert response.status_code == 201
    enrollment_id: str = response.json()["id"]
    return enrollment_id


async def progress(
    client: AsyncClient, enrollment_id: str, value: Any, headers: dict[str, str]
) -> Any:
    return await client.patch(
        f"/api/enrollments/{enrollment_id}/progress", json={"progress": value}, headers=headers
    )


def test_lessons_done_counts_crossed_boundaries() -> None:
    assert [lessons_done(p, 3) for p in (0, 33, 34, 66, 67, 99, 100)] == [0, 0, 1, 1, 2, 2, 3]
    assert lessons_done(100, 0) == 0


async def test_progress_completes_lessons_and_issues_one_certificate(
    *,
    client: AsyncClient,
    headers: Headers,
    make_user: MakeUser,
    read_events: ReadEvents,
    side_cache: Cache,
    domain_db: Database,
) -> None:
    course = await course_with(client, headers, 3)
    user = await make_user()
    enrollment_id = await enroll(client, user, course)

    first = await progress(client, enrollment_id, 40, user.headers)
    assert first.status_code == 200
    assert first.json()["progress"] == 40
    assert first.json()["completedAt"] is None
    assert first.json()["certificate"] is None

    async def cached() -> str:
        return "cached"

    await side_cache.read_through(keys.enrollment(enrollment_id), cached)
    done = await progress(client, enrollment_id, 100, user.headers)
    assert done.status_code == 200
    body = done.json()
    certificate = body["certificate"]
    assert body == {
        "id": enrollment_id,
        "userId": user.sid,
        "courseId": course["id"],
        "progress": 100,
        "completedAt": body["completedAt"],
        "createdAt": body["createdAt"],
        "updatedAt": body["updatedAt"],
        "certificate": {
            "id": certificate["id"],
            "enrollmentId": enrollment_id,
            "userId": user.sid,
            "courseId": course["id"],
            "issuedAt": certificate["issuedAt"],
        },
    }
    assert body["completedAt"] is not None

    async def fresh() -> str:
        return "fresh"

    assert await side_cache.read_through(keys.enrollment(enrollment_id), fresh) == "fresh"

    lessons = await read_events("education.lesson.completed", 3)
    for event, lesson, value in zip(lessons, course["lessons"], (40, 100, 100), strict=True):
        assert_envelope(
            event,
            event_type="education.lesson.completed",
            payload={
                "enrollmentId": enrollment_id,
                "courseId": course["id"],
                "lessonId": lesson["id"],
                "position": lesson["position"],
                "title": lesson["title"],
                "progress": value,
            },
            source="education",
            user_id=user.sid,
        )
    [issued] = await read_events("education.certificate.issued")
    assert_envelope(
        issued,
        event_type="education.certificate.issued",
        payload={
            "certificateId": certificate["id"],
            "enrollmentId": enrollment_id,
            "courseId": course["id"],
            "achievements": ["first_course_completed"],
        },
        source="education",
        user_id=user.sid,
    )

    # 100 again is a no-op that answers the same certificate and issues nothing more.
    again = await progress(client, enrollment_id, 100, user.headers)
    assert again.status_code == 200
    assert again.json()["certificate"] == certificate
    assert (await outbox_types(domain_db)).count("education.certificate.issued") == 1
    listed = await client.get("/api/certificates", headers=user.headers)
    assert listed.json() == {"items": [certificate], "next": None}


async def test_progress_never_moves_back_and_stays_within_0_100(
    client: AsyncClient, headers: Headers, make_user: MakeUser, domain_db: Database
) -> None:
    course = await course_with(client, headers, 2)
    user = await make_user()
    enrollment_id = await enroll(client, user, course)
    assert (await progress(client, enrollment_id, 60, user.headers)).status_code == 200
    back = await progress(client, enrollment_id, 59, user.headers)
    assert back.status_code == 409
    assert back.json()["error"] == {
        "code": "conflict",
        "message": "progress only moves forward: it is 60 already",
    }
    for value in (-1, 101, "half", 50.5, None):
        response = await progress(client, enrollment_id, value, user.headers)
        assert response.status_code == 422, value
    same = await progress(client, enrollment_id, 60, user.headers)
    assert same.status_code == 200
    types = await outbox_types(domain_db)
    assert types.count("education.lesson.completed") == 1


async def test_only_the_learner_or_a_privileged_caller_moves_progress(
    client: AsyncClient, headers: Headers, make_user: MakeUser
) -> None:
    course = await course_with(client, headers, 1)
    learner, other = await make_user(), await make_user()
    enrollment_id = await enroll(client, learner, course)
    refused = await progress(client, enrollment_id, 10, other.headers)
    assert refused.status_code == 403
    missing = await progress(client, str(uuid.uuid4()), 10, learner.headers)
    assert missing.status_code == 404
    by_service = await progress(client, enrollment_id, 20, headers(Role.SERVICE))
    assert by_service.status_code == 200
    assert by_service.json()["progress"] == 20


async def test_five_completed_courses_earn_both_badges_once(
    client: AsyncClient,
    headers: Headers,
    make_user: MakeUser,
    read_events: ReadEvents,
    domain_db: Database,
) -> None:
    user = await make_user()
    enrollments = []
    for _ in range(6):
        course = await course_with(client, headers, 0)
        enrollments.append(await enroll(client, user, course))
    # The 4th and 5th complete at once: the badge count must still see both.
    for enrollment_id in enrollments[:3]:
        assert (await progress(client, enrollment_id, 100, user.headers)).status_code == 200
    racing = await asyncio.gather(
        *(progress(client, e, 100, user.headers) for e in enrollments[3:5])
    )
    assert [r.status_code for r in racing] == [200, 200]
    assert (await progress(client, enrollments[5], 100, user.headers)).status_code == 200

    issued = await read_events("education.certificate.issued", 6)
    awarded = [e["payload"]["achievements"] for e in issued]
    assert awarded.count(["first_course_completed"]) == 1
    assert awarded.count(["five_courses_completed"]) == 1
    assert awarded.count([]) == 4
    assert awarded[0] == ["first_course_completed"]
    async with domain_db.sessions() as session:
        kinds = (
            await session.scalars(
                text("SELECT kind FROM achievements WHERE user_id = :u ORDER BY kind"),
                {"u": user.id},
            )
        ).all()
    assert kinds == ["first_course_completed", "five_courses_completed"]
    page = await client.get("/api/certificates", params={"limit": 4}, headers=user.headers)
    assert len(page.json()["items"]) == 4
    rest = await client.get(
        "/api/certificates", params={"after": page.json()["next"]}, headers=user.headers
    )
    assert len(rest.json()["items"]) == 2
    assert rest.json()["next"] is None


async def test_certificates_are_the_callers_own(
    client: AsyncClient, headers: Headers, make_user: MakeUser
) -> None:
    course = await course_with(client, headers, 0)
    learner, other = await make_user(), await make_user()
    enrollment_id = await enroll(client, learner, course)
    assert (await progress(client, enrollment_id, 100, learner.headers)).status_code == 200
    mine = await client.get("/api/certificates", headers=learner.headers)
    assert len(mine.json()["items"]) == 1
    theirs = await client.get("/api/certificates", headers=other.headers)
    assert theirs.json() == {"items": [], "next": None}
    service = await client.get("/api/certificates", headers=headers(Role.SERVICE))
    assert service.status_code == 403
    assert (await client.get("/api/certificates")).status_code == 401


async def test_concurrent_completions_of_one_enrollment_issue_one_certificate(
    client: AsyncClient, headers: Headers, make_user: MakeUser, domain_db: Database
) -> None:
    course = await course_with(client, headers, 4)
    user = await make_user()
    enrollment_id = await enroll(client, user, course)
    answers = await asyncio.gather(
        *(progress(client, enrollment_id, value, user.headers) for value in (100, 100, 100, 75))
    )
    # 75 may land before or after a 100: forward-only refuses it only after.
    assert sorted(r.status_code for r in answers)[:3] == [200, 200, 200]
    certificates = {
        r.json()["certificate"]["id"]
        for r in answers
        if r.status_code == 200 and r.json()["certificate"]
    }
    assert len(certificates) == 1
    types = await outbox_types(domain_db)
    assert types.count("education.certificate.issued") == 1
    assert types.count("education.lesson.completed") == 4
