"""Users: register, sign in, read (cache-aside) and update profiles."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from azora_nexus.auth.hashing import Passwords
from azora_nexus.auth.passwords import hash_password, verify_password
from azora_nexus.auth.ratelimit import LoginLimits, count_attempt
from azora_nexus.auth.tokens import Principal, issue_token
from azora_nexus.cache import keys
from azora_nexus.cache.cache import Cache
from azora_nexus.database.engine import Database
from azora_nexus.domain.access import require_owner_or_privileged
from azora_nexus.domain.users.models import Profile, User
from azora_nexus.domain.users.schemas import (
    AuthResponse,
    LoginRequest,
    ProfilePublic,
    ProfileUpdate,
    RegisterRequest,
    UserPublic,
    normalise_email,
)
from azora_nexus.errors import DuplicateKey, NotFound, Unauthorized
from azora_nexus.events.outbox import add_event
from azora_nexus.sync import invalidate_after_commit, read_through_json

logger = logging.getLogger(__name__)

SOURCE = "users"
BAD_CREDENTIALS = "invalid email or password"
_TAKEN = {"uq_users_email": "email", "uq_users_username_lower": "username"}


def public_user(user: User) -> UserPublic:
    """The wire view of a user whose profile is loaded."""
    profile = user.profile
    return UserPublic(
        id=user.id,
        email=user.email,
        username=user.username,
        role=user.role,
        is_active=user.is_active,
        created_at=user.created_at,
        profile=ProfilePublic.model_validate(profile) if profile else ProfilePublic(),
    )


def _taken_field(exc: IntegrityError) -> str | None:
    constraint = getattr(exc.orig, "constraint_name", None) or str(exc.orig)
    return next((field for name, field in _TAKEN.items() if name in constraint), None)


async def register(
    session: AsyncSession,
    body: RegisterRequest,
    *,
    secret: str,
    passwords: Passwords | None = None,
    password_hash: str | None = None,
) -> AuthResponse:
    """A new user with an empty profile and a token; DuplicateKey (409) for a taken email or
    username.

    `password_hash` is for the demo seed only (domain/seed/): an argon2id hash of
    `body.password` made once and shared by every demo user, because hashing per user would
    cost seconds per hundred users. Sign-ups never pass it, so each real user gets its own salt.
    """
    if password_hash is None:
        # A node hashes on its bounded pool (Overloaded, 503, when it is full).
        password_hash = await (
            passwords.hash(body.password) if passwords else hash_password(body.password)
        )
    async with session.begin():
        user = User(email=body.email, username=body.username, password_hash=password_hash)
        user.profile = Profile()
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as exc:
            field = _taken_field(exc)
            if field is None:
                raise
            raise DuplicateKey(f"this {field} is taken") from exc
        await add_event(
            session,
            "system.user.registered",
            {"userId": str(user.id), "username": user.username},
            source=SOURCE,
            user_id=str(user.id),
        )
        public = public_user(user)
    return AuthResponse(user=public, token=issue_token(secret, sub=str(user.id), role=user.role))


async def login(
    session: AsyncSession,
    redis: Redis,
    body: LoginRequest,
    *,
    address: str,
    secret: str,
    limits: LoginLimits | None = None,
    passwords: Passwords | None = None,
) -> AuthResponse:
    """A token for the right email and password; Unauthorized (401) that never says which
    part was wrong; RateLimited (429) past the attempts allowed per account or address."""
    try:
        email: str | None = normalise_email(body.email)
    except ValueError:
        email = None  # cannot be anyone's: checked against the dummy hash all the same
    attempt = await count_attempt(
        redis, email or body.email.strip().lower(), address, limits or LoginLimits()
    )
    async with session.begin():
        user = (
            await session.scalar(
                select(User).where(User.email == email).options(selectinload(User.profile))
            )
            if email
            else None
        )
    # Verified outside any transaction: the hash takes a while and holds no connection.
    usable = user is not None and user.is_active
    stored = user.password_hash if usable and user else None
    verify = passwords.verify if passwords else verify_password
    if not await verify(stored, body.password):
        raise Unauthorized(BAD_CREDENTIALS)
    assert user is not None
    public = public_user(user)
    async with session.begin():
        await add_event(
            session,
            "system.user.login",
            {"userId": str(user.id), "username": user.username},
            source=SOURCE,
            user_id=str(user.id),
        )
    await attempt.succeeded()
    return AuthResponse(user=public, token=issue_token(secret, sub=str(user.id), role=user.role))


async def load_user(db: Database, user_id: uuid.UUID) -> dict[str, Any]:
    """The active user with profile as the wire shows it; NotFound otherwise."""
    async with db.sessions() as session:
        user = await session.scalar(
            select(User).where(User.id == user_id).options(selectinload(User.profile))
        )
    if user is None or not user.is_active:
        raise NotFound(f"no user {user_id}")
    return public_user(user).model_dump(mode="json", by_alias=True)


async def get_user(
    db: Database, cache: Cache, user_id: uuid.UUID, *, viewer: Principal
) -> UserPublic:
    """The user with profile, cache-aside; its email only for itself or an admin/service."""
    return UserPublic.model_validate_json(await get_user_json(db, cache, user_id, viewer=viewer))


async def get_user_json(
    db: Database, cache: Cache, user_id: uuid.UUID, *, viewer: Principal
) -> bytes:
    """`get_user` as the response body: on a hit, for itself or an admin/service, the bytes
    the cache holds, serialised once when it was filled (validated by `load_user` then)."""
    body = await read_through_json(cache, keys.user(user_id), lambda: load_user(db, user_id))
    if viewer.is_privileged or viewer.user_id == str(user_id):
        return body
    user = orjson.loads(body)
    user["email"] = None
    return orjson.dumps(user)


async def update_profile(
    session: AsyncSession, user_id: uuid.UUID, body: ProfileUpdate, *, actor: Principal
) -> UserPublic:
    """The profile with the fields sent changed (own profile, or an admin's/service's call)."""
    require_owner_or_privileged(actor, user_id, "profile")
    changes = body.model_dump(exclude_unset=True)
    async with session.begin():
        # The user row is locked first, as every writer of a user does, so a concurrent
        # erasure cannot interleave with this update.
        user = await session.get(
            User, user_id, with_for_update={"key_share": True}, populate_existing=True
        )
        if user is None or not user.is_active:
            raise NotFound(f"no user {user_id}")
        upsert = insert(Profile).values(user_id=user_id, **changes)
        if changes:
            upsert = upsert.on_conflict_do_update(
                index_elements=[Profile.user_id], set_={**changes, "updated_at": func.now()}
            )
        else:
            upsert = upsert.on_conflict_do_nothing(index_elements=[Profile.user_id])
        await session.execute(upsert)
        invalidate_after_commit(session, [keys.user(user_id)])
        user = await session.scalar(
            select(User)
            .where(User.id == user_id)
            .options(selectinload(User.profile))
            .execution_options(populate_existing=True)
        )
        assert user is not None
        return public_user(user)
