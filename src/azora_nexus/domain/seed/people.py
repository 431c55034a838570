"""Demo users: registered and given a profile through the users service, once per email."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from azora_nexus.auth.passwords import hash_password
from azora_nexus.domain.seed import catalog
from azora_nexus.domain.seed.concurrency import Progress, for_each
from azora_nexus.domain.seed.report import SeedReport
from azora_nexus.domain.seed.target import SEEDER, SeedTarget
from azora_nexus.domain.users import service as users_service
from azora_nexus.domain.users.schemas import ProfileUpdate, RegisterRequest
from azora_nexus.errors import DuplicateKey

# A user registered by an interrupted run but not yet given its profile is finished, not
# skipped: the profile is the second of its two writes.
_KNOWN = text(
    """
    SELECT u.email, u.id, p.display_name IS NOT NULL AS profiled
    FROM users AS u LEFT JOIN profiles AS p ON p.user_id = u.id
    WHERE u.email = ANY(CAST(:emails AS text[])) AND u.is_active
    """
)


async def known_users(target: SeedTarget, emails: list[str]) -> dict[str, tuple[uuid.UUID, bool]]:
    """The id of each demo user already registered, by email, and whether it has a profile."""
    async with target.db.sessions() as session:
        rows = await session.execute(_KNOWN, {"emails": emails})
        return {row.email: (row.id, row.profiled) for row in rows}


async def seed_users(
    target: SeedTarget, count: int, report: SeedReport, progress: Progress
) -> dict[int, uuid.UUID]:
    """Demo users 0..count-1, each registered and profiled once; their ids by number."""
    known = await known_users(target, [catalog.email(i) for i in range(count)])
    ids = {i: known[catalog.email(i)][0] for i in range(count) if catalog.email(i) in known}
    report.users.existing += len(ids)
    todo = [i for i in range(count) if not known.get(catalog.email(i), (None, False))[1]]
    progress.phase("users and profiles", len(todo))
    if not todo:
        return ids
    # Demo data only: one argon2id hash of the one demo password, shared by every demo user.
    # Hashing per user (~50 ms of CPU each) would make 10,000 users take minutes of hashing.
    password_hash = await hash_password(catalog.DEMO_PASSWORD)

    async def make(index: int) -> None:
        user_id = ids.get(index)
        if user_id is None:
            try:
                user_id = await register(target, index, password_hash)
            except DuplicateKey:
                report.users.refused += 1  # its username belongs to someone else's email
                return
            ids[index] = user_id
            report.users.new += 1
        await give_profile(target, index, user_id)

    await for_each(todo, make, progress=progress)
    return ids


async def register(target: SeedTarget, index: int, password_hash: str) -> uuid.UUID:
    """Register demo user `index` (`system.user.registered`) with the shared demo hash."""
    body = RegisterRequest(
        email=catalog.email(index),
        username=catalog.username(index),
        password=catalog.DEMO_PASSWORD,
    )
    async with target.db.sessions() as session:
        created = await users_service.register(
            session, body, secret=target.jwt_secret, password_hash=password_hash
        )
    return created.user.id


async def give_profile(target: SeedTarget, index: int, user_id: uuid.UUID) -> None:
    """Demo user `index`'s name, bio, city and avatar, through the profile update."""
    demo = catalog.profile(index)
    body = ProfileUpdate(
        display_name=demo.display_name,
        bio=demo.bio,
        location=demo.location,
        avatar_url=demo.avatar_url,
    )
    async with target.db.sessions() as session:
        await users_service.update_profile(session, user_id, body, actor=SEEDER)
