"""Password hashes: argon2id (RFC 9106).

Hashing is deliberately slow (tens of milliseconds of CPU and 64 MiB of memory). The
functions here do the work on the calling thread; a node runs them on the bounded pools
of `hashing.Passwords`, never on the event loop. `hash_password` and `verify_password`
run them on the default executor, for tools outside a node (the demo seed, tests).
"""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError


@cache
def _hasher() -> PasswordHasher:
    # RFC 9106's second recommended option (argon2id, t=3, m=64 MiB, p=4): argon2-cffi's default.
    return PasswordHasher(type=Type.ID)


@cache
def _dummy_hash() -> str:
    return _hasher().hash("a password nobody has")


def hash_now(password: str) -> str:
    """An argon2id hash of `password`, with its own random salt (on this thread)."""
    return _hasher().hash(password)


def verify_now(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; False (after as much work) when it is
    None (on this thread)."""
    try:
        # An unknown account is checked against a dummy hash so that answering takes as
        # long as for a known one: timing does not tell which emails are registered.
        return _hasher().verify(password_hash or _dummy_hash(), password) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    """An argon2id hash of `password`, with its own random salt."""
    return await asyncio.to_thread(hash_now, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; False (after as much work) when it is None."""
    return await asyncio.to_thread(verify_now, password_hash, password)
