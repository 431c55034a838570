"""Wire types of people: registration, login, the public user and its profile."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from azora_nexus.auth.tokens import Role
from azora_nexus.domain.schemas import NO_NUL, WireModel

# Deliberately loose (one @, a dot in the domain, no spaces): the mailbox is the real check.
_EMAIL = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")


def normalise_email(value: str) -> str:
    """The one spelling an email is stored and looked up under: trimmed, lower-case."""
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError("not an email address")
    return email


def _storable(value: str) -> str:
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return value


Email = Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
Username = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
# Bytes, not characters, bound argon2's input; 1024 characters is plenty for a passphrase.
Password = Annotated[str, Field(min_length=8, max_length=1024), AfterValidator(_storable)]
ShortText = Annotated[str, Field(max_length=200, pattern=NO_NUL), AfterValidator(_storable)]
LongText = Annotated[str, Field(max_length=5000, pattern=NO_NUL), AfterValidator(_storable)]
Url = Annotated[
    str, Field(max_length=2048, pattern=r"^https?://[^\s\x00]+$"), AfterValidator(_storable)
]


class RegisterRequest(WireModel):
    """`POST /api/auth/register`."""

    email: Email
    username: Username
    password: Password


class LoginRequest(WireModel):
    """`POST /api/auth/login`: any string may be tried; a wrong one is 401, not 422."""

    email: Annotated[str, Field(min_length=1, max_length=320), AfterValidator(_storable)]
    password: Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_storable)]


class ProfilePublic(WireModel):
    display_name: str | None = None
    bio: str | None = None
    avatar_url: str | None = None
    location: str | None = None


class ProfileUpdate(WireModel):
    """`PATCH /api/users/{id}/profile`: only the fields sent change; null clears one."""

    display_name: ShortText | None = None
    bio: LongText | None = None
    avatar_url: Url | None = None
    location: ShortText | None = None


class UserPublic(WireModel):
    """A user as others see it: never the password hash; the email only to itself or admins."""

    id: uuid.UUID
    email: str | None
    username: str
    role: Role
    is_active: bool
    created_at: datetime
    profile: ProfilePublic


class AuthResponse(WireModel):
    """What register and login answer: the user and an access token for it."""

    user: UserPublic
    token: str
