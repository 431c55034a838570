"""Demo users: registered and given a profile, once per email, a batch per statement.

A batch writes what `users.register` and `users.update_profile` write for each of its
users (the user, its profile, `system.user.registered`) in one transaction, set-based: a
statement per kind of row instead of two transactions per user.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.passwords import hash_password
from azora_nexus.cache import keys
from azora_nexus.domain.seed import catalog
from azora_nexus.domain.seed.concurrency import Progress, batches, for_each
from azora_nexus.domain.seed.report import SeedReport
from azora_nexus.domain.seed.target import SeedTarget
from azora_nexus.domain.users import service as users_service
from azora_nexus.events.outbox import add_events, new_event
from azora_nexus.sync import invalidate_after_commit

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

    async def make(batch: list[int]) -> None:
        async with target.db.transaction() as session:
            made = await register_batch(session, batch, ids, password_hash, report)
            await profile_batch(session, [i for i in batch if i in ids], ids)
            # Users of an interrupted run, registered but not profiled, may be cached.
            earlier = [ids[i] for i in batch if i in ids and i not in made]
            if earlier:
                invalidate_after_commit(session, [keys.user(u) for u in earlier])

    await for_each(batches(todo), make, progress=progress, size=len)
    return ids


_REGISTER = text(
    """
    INSERT INTO users (id, email, username, password_hash)
    SELECT id, email, username, CAST(:hash AS text)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:emails AS text[]), CAST(:usernames AS text[]))
        WITH ORDINALITY AS u(id, email, username, n)
    ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING id, email
    """
)


async def register_batch(
    session: AsyncSession,
    batch: list[int],
    ids: dict[int, uuid.UUID],
    password_hash: str,
    report: SeedReport,
) -> set[int]:
    """Register the users of `batch` not registered yet, each announced as `register` does
    (`system.user.registered`); a username taken by another email is refused."""
    new = [i for i in batch if i not in ids]
    if not new:
        return set()
    params = {
        "ids": [uuid.uuid4() for _ in new],
        "emails": [catalog.email(i) for i in new],
        "usernames": [catalog.username(i) for i in new],
        "hash": password_hash,
    }
    by_email = {row.email: row.id for row in await session.execute(_REGISTER, params)}
    made = {i for i in new if catalog.email(i) in by_email}
    report.users.new += len(made)
    report.users.refused += len(new) - len(made)
    events = []
    for index in sorted(made):
        ids[index] = user_id = by_email[catalog.email(index)]
        events.append(
            new_event(
                "system.user.registered",
                {"userId": str(user_id), "username": catalog.username(index)},
                source=users_service.SOURCE,
                user_id=str(user_id),
            )
        )
    await add_events(session, events)
    return made


_PROFILE = text(
    """
    INSERT INTO profiles (user_id, display_name, bio, location, avatar_url)
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:bios AS text[]),
        CAST(:locations AS text[]), CAST(:avatars AS text[]))
    ON CONFLICT (user_id) DO UPDATE SET
        display_name = excluded.display_name, bio = excluded.bio,
        location = excluded.location, avatar_url = excluded.avatar_url, updated_at = now()
    """
)


async def profile_batch(session: AsyncSession, batch: list[int], ids: dict[int, uuid.UUID]) -> None:
    """Each demo user's name, bio, city and avatar, as a profile update sets them."""
    demos = [catalog.profile(i) for i in batch]
    await session.execute(
        _PROFILE,
        {
            "ids": [ids[i] for i in batch],
            "names": [d.display_name for d in demos],
            "bios": [d.bio for d in demos],
            "locations": [d.location for d in demos],
            "avatars": [d.avatar_url for d in demos],
        },
    )
