"""Courses over HTTP: create (admin/service), list in pages, read one cache-aside, enroll once."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient

from azora_nexus.auth.tokens import Role
from azora_nexus.cache import keys
from azora_nexus.cache.cache import Cache
from azora_nexus.database.engine import Database
from tests.domain.domain_helpers import Headers, MakeUser, ReadEvents, assert_envelope, outbox_types

COURSE: dict[str, Any] = {
    "title": "Intro to Ubuntu economics",
    "description": "Why sharing scales",
    "lessons": [
        {"title": "One", "content": "first"},
        {"title": "Two", "content": "second"},
        {"title": "Three", "content": "third"},
    ],
}


async def create_course(
    client: AsyncClient, headers: Headers, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.post("/api/courses", json=body or COURSE, headers=headers(Role.ADMIN))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_admin_creates_a_course_with_ordered_lessons(
    client: AsyncClient, headers: Headers
) -> None:
    course = await create_course(client, headers)
    assert course == {
        "id": course["id"],
        "title": COURSE["title"],
        "description": COURSE["description"],
        "createdBy": "admin",
        "createdAt": course["createdAt"],
        "lessons": [
            {"id": lesson["id"], "position": i, "title": want["title"], "content": want["content"]}
            for i, (lesson, want) in enumerate(
                zip(course["lessons"], COURSE["lessons"], strict=True)
            )
        ],
    }
    uuid.UUID(course["id"])


async def test_service_may_create_a_course_but_a_user_may_not(
    client: AsyncClient, headers: Headers, make_user: MakeUser
) -> None:
    service = await client.post("/api/courses", json=COURSE, headers=headers(Role.SERVICE))
    assert service.status_code == 201
    assert service.json()["createdBy"] == "service"
    user = await make_user()
    refused = await client.post("/api/courses", json=COURSE, headers=user.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    anonymous = await client.post("/api/courses", json=COURSE)
    assert anonymous.status_code == 401


async def test_create_refuses_bad_bodies_with_422(client: AsyncClient, headers: Headers) -> None:
    for body in (
        {"title": "", "lessons": []},
        {"title": "nul\x00inside"},
        {"title": "x" * 201},
        {"title": "ok", "lessons": [{"content": "no title"}]},
        {"description": "no title"},
    ):
        response = await client.post("/api/courses", json=body, headers=headers(Role.ADMIN))
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid"


async def test_courses_list_in_pages_oldest_first(
    client: AsyncClient, headers: Headers, make_user: MakeUser
) -> None:
    created = [
        await create_course(client, headers, {"title": f"Course {i}", "lessons": []})
        for i in range(5)
    ]
    user = await make_user()
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": cursor} if cursor else {})
        response = await client.get("/api/courses", params=params, headers=user.headers)
        assert response.status_code == 200
        page = response.json()
        seen += page["items"]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert [c["id"] for c in seen] == [c["id"] for c in created]
    assert seen[0] == {k: v for k, v in created[0].items() if k != "lessons"}


async def test_courses_list_refuses_a_foreign_cursor(
    client: AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    for cursor in ("not-a-cursor", "WyJhIl0"):  # the second is ["a"]: ours, but not a key
        response = await client.get("/api/courses", params={"after": cursor}, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid"


async def test_get_course_returns_lessons_and_fills_the_cache(
    client: AsyncClient, headers: Headers, make_user: MakeUser, side_cache: Cache
) -> None:
    course = await create_course(client, headers)
    user = await make_user()
    first = await client.get(f"/api/courses/{course['id']}", headers=user.headers)
    assert first.status_code == 200
    assert first.json() == course

    async def must_not_load() -> dict[str, Any]:
        raise AssertionError("the course should be cached")

    cached = await side_cache.read_through(keys.course(course["id"]), must_not_load)
    assert cached == course
    before = (await client.get("/cache/stats", headers=headers(Role.ADMIN))).json()["hits"]
    second = await client.get(f"/api/courses/{course['id']}", headers=user.headers)
    assert second.json() == course
    after = (await client.get("/cache/stats", headers=headers(Role.ADMIN))).json()["hits"]
    assert after == before + 1


async def test_get_unknown_course_is_404_and_a_bad_id_422(
    client: AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    missing = await client.get(f"/api/courses/{uuid.uuid4()}", headers=user.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    bad = await client.get("/api/courses/not-a-uuid", headers=user.headers)
    assert bad.status_code == 422


async def test_enroll_once_emits_the_event_and_invalidates_enrollments(
    client: AsyncClient,
    headers: Headers,
    make_user: MakeUser,
    read_events: ReadEvents,
    side_cache: Cache,
) -> None:
    course = await create_course(client, headers)
    user = await make_user()
    key = keys.user_enrollments(user.id)

    async def old() -> str:
        return "old"

    assert await side_cache.read_through(key, old) == "old"
    response = await client.post(f"/api/courses/{course['id']}/enroll", headers=user.headers)
    assert response.status_code == 201, response.text
    enrollment = response.json()
    assert enrollment == {
        "id": enrollment["id"],
        "userId": user.sid,
        "courseId": course["id"],
        "progress": 0,
        "completedAt": None,
        "createdAt": enrollment["createdAt"],
        "updatedAt": enrollment["updatedAt"],
        "certificate": None,
    }

    async def new() -> str:
        return "new"

    assert await side_cache.read_through(key, new) == "new"
    [event] = await read_events("education.course.enrolled")
    assert_envelope(
        event,
        event_type="education.course.enrolled",
        payload={
            "enrollmentId": enrollment["id"],
            "courseId": course["id"],
            "title": COURSE["title"],
        },
        source="education",
        user_id=user.sid,
    )
    again = await client.post(f"/api/courses/{course['id']}/enroll", headers=user.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate"


async def test_enroll_refusals(
    client: AsyncClient,
    headers: Headers,
    make_user: MakeUser,
    domain_db: Database,
) -> None:
    course = await create_course(client, headers)
    user = await make_user()
    unknown = await client.post(f"/api/courses/{uuid.uuid4()}/enroll", headers=user.headers)
    assert unknown.status_code == 404
    service = await client.post(
        f"/api/courses/{course['id']}/enroll", headers=headers(Role.SERVICE)
    )
    assert service.status_code == 403  # a service is not a learner
    ghost = await client.post(
        f"/api/courses/{course['id']}/enroll", headers=headers(Role.USER, str(uuid.uuid4()))
    )
    assert ghost.status_code == 404
    erased = await make_user(active=False)
    inactive = await client.post(f"/api/courses/{course['id']}/enroll", headers=erased.headers)
    assert inactive.status_code == 404
    assert await outbox_types(domain_db) == []
