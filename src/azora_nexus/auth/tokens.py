"""Access tokens: HS256 JWTs with `sub`, `role` and `exp` (CONTRACT.md, "Identity and tokens")."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import jwt

from azora_nexus.config import Environment, Settings
from azora_nexus.errors import BadRequest, Unauthorized

ALGORITHM = "HS256"
SECRET_FILE = "jwt-secret"
DEFAULT_TTL_S = 24 * 3600
# RFC 7518 3.2: an HS256 key at least as long as the hash (256 bits).
MIN_SECRET_BYTES = 32


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject and role."""

    user_id: str
    role: Role

    @property
    def is_privileged(self) -> bool:
        """Admins and services may act on anyone's data."""
        return self.role in (Role.ADMIN, Role.SERVICE)


def resolve_secret(settings: Settings) -> str:
    """`AZORA_JWT_SECRET`, or a secret generated once and kept in the data dir. In
    production a given secret shorter than MIN_SECRET_BYTES is refused (BadRequest): HS256
    with a short secret can be brute-forced offline from any one token."""
    if settings.jwt_secret:
        short = len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES
        if short and settings.env is Environment.PRODUCTION:
            raise BadRequest(
                f"AZORA_JWT_SECRET must take at least {MIN_SECRET_BYTES} bytes in production"
                " (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return settings.jwt_secret
    path: Path = settings.data_dir / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once agree on the secret the first one wrote.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


def issue_token(secret: str, *, sub: str, role: Role, ttl_s: int = DEFAULT_TTL_S) -> str:
    """A signed access token for `sub` with `role`, valid for `ttl_s` seconds."""
    now = int(time.time())
    return jwt.encode(
        {"sub": sub, "role": role.value, "iat": now, "exp": now + ttl_s},
        secret,
        algorithm=ALGORITHM,
    )


# Tokens verified lately, by (secret, token): a client sends the same token with every
# request, and the HS256 verify (PyJWT) was the largest item of a cached read's CPU. Once
# verified, a token's verdict can only change by its `exp` passing (its signature, `nbf`
# and `iat` were checked; a refused token is never kept), so a hit is checked against
# `exp` alone, as PyJWT checks it (valid while now < int(exp)). Bounded: emptied when full.
_VERIFIED: dict[tuple[str, str], tuple[Principal, int]] = {}
VERIFIED_MAX = 10_000


def read_token(secret: str, token: str) -> Principal:
    """The principal a valid token names; Unauthorized for anything else."""
    known = _VERIFIED.get((secret, token))
    if known is not None:
        if time.time() < known[1]:
            return known[0]
        del _VERIFIED[(secret, token)]
        raise Unauthorized("token expired")
    principal, exp = read_token_expiry(secret, token)
    if len(_VERIFIED) >= VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(secret, token)] = (principal, exp)
    return principal


def read_token_expiry(secret: str, token: str) -> tuple[Principal, int]:
    """The principal a valid token names and its `exp` (seconds since the epoch);
    Unauthorized for anything else."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "role", "exp"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise Unauthorized(f"invalid token: unknown role {claims['role']!r}") from exc
    # PyJWT compares int(exp): a string "9999999999" would pass for a date (RFC 7519: a number).
    for claim in ("exp", "iat", "nbf"):
        value = claims.get(claim, 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Unauthorized(f"invalid token: {claim} must be a number")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise Unauthorized("invalid token: sub must be a non-empty string")
    # A fractional exp counts from its whole second: a socket is closed early, never late.
    return Principal(user_id=claims["sub"], role=role), int(claims["exp"])
