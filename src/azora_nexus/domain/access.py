"""Who may touch what: one row or 404, the caller's own user row, owner-or-privileged checks."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Principal
from azora_nexus.database.base import Base
from azora_nexus.domain.users.models import User
from azora_nexus.errors import Forbidden, NotFound

ModelT = TypeVar("ModelT", bound=Base)


async def get_or_raise(
    session: AsyncSession,
    model: type[ModelT],
    row_id: Any,
    *,
    lock: bool = False,
    what: str | None = None,
) -> ModelT:
    """The row with this primary key (locked FOR UPDATE with `lock`); NotFound otherwise."""
    # populate_existing: a row read before the lock was taken must show what the lock holds.
    row = await session.get(model, row_id, with_for_update=lock or None, populate_existing=lock)
    if row is None:
        raise NotFound(f"no {what or model.__tablename__.rstrip('s')} {row_id}")
    return row


def require_owner_or_privileged(principal: Principal, owner_id: uuid.UUID, what: str) -> None:
    """A user acts on its own data only; admins and services on anyone's (CONTRACT.md)."""
    if not principal.is_privileged and principal.user_id != str(owner_id):
        raise Forbidden(f"only its owner or an admin may do this to the {what}")


def subject_user_id(principal: Principal) -> uuid.UUID:
    """The user id a token names; Forbidden for a subject that is not a user (a service)."""
    try:
        return uuid.UUID(principal.user_id)
    except ValueError:
        raise Forbidden("this needs the token of a user") from None


async def acting_user(session: AsyncSession, principal: Principal, *, lock: bool = False) -> User:
    """The active user who is calling (key-share-safe lock with `lock`); 403/404 otherwise."""
    user_id = subject_user_id(principal)
    return await active_user(session, user_id, lock=lock)


async def active_user(session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False) -> User:
    """An active user by id; NotFound for an unknown or erased one.

    The lock is FOR NO KEY UPDATE: it serialises writers on this user without blocking
    inserts that merely reference the user (their foreign-key check takes KEY SHARE).
    """
    user = await session.get(
        User, user_id, with_for_update={"key_share": True} if lock else None, populate_existing=lock
    )
    if user is None or not user.is_active:
        raise NotFound(f"no user {user_id}")
    return user
