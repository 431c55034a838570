"""`/api/auth`: register and sign in; both answer the user and an access token."""

from __future__ import annotations

from fastapi import APIRouter, Request

from azora_nexus.api.deps import NexusDep, SessionDep
from azora_nexus.api.responses import errors
from azora_nexus.auth.ratelimit import LoginLimits, count_registration
from azora_nexus.domain.users import service
from azora_nexus.domain.users.schemas import AuthResponse, LoginRequest, RegisterRequest

router = APIRouter(prefix="/api/auth", tags=["auth"])


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/register", status_code=201, responses=errors(409, 429, 503))
async def register(
    body: RegisterRequest, request: Request, session: SessionDep, nexus: NexusDep
) -> AuthResponse:
    """A new user and a token for it; 409 when the email or username is taken, 429 past
    the registrations allowed per address, 503 when password hashing is saturated."""
    settings = nexus.settings
    await count_registration(
        nexus.redis,
        client_address(request),
        limit=settings.registrations_per_address,
        window_s=settings.registration_window_s,
    )
    return await service.register(session, body, secret=nexus.jwt_secret, passwords=nexus.passwords)


@router.post("/login", responses=errors(429, 503))
async def login(
    body: LoginRequest, request: Request, session: SessionDep, nexus: NexusDep
) -> AuthResponse:
    """A token for the right email and password; 401 otherwise, 429 after too many tries."""
    address = client_address(request)
    limits = LoginLimits(
        base_delay_s=nexus.settings.login_delay_base_s,
        max_delay_s=max(nexus.settings.login_delay_max_s, nexus.settings.login_delay_base_s),
    )
    return await service.login(
        session,
        nexus.redis,
        body,
        address=address,
        secret=nexus.jwt_secret,
        limits=limits,
        passwords=nexus.passwords,
    )
