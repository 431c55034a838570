"""`/api/auth`: register and sign in; both answer the user and an access token."""

from __future__ import annotations

from fastapi import APIRouter, Request

from azora_nexus.api.deps import NexusDep, SessionDep
from azora_nexus.api.responses import errors
from azora_nexus.auth.ratelimit import LoginLimits
from azora_nexus.domain.users import service
from azora_nexus.domain.users.schemas import AuthResponse, LoginRequest, RegisterRequest

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/register", status_code=201, responses=errors(409))
async def register(body: RegisterRequest, session: SessionDep, nexus: NexusDep) -> AuthResponse:
    """A new user and a token for it; 409 when the email or username is taken."""
    return await service.register(session, body, secret=nexus.jwt_secret)


@router.post("/login", responses=errors(429))
async def login(
    body: LoginRequest, request: Request, session: SessionDep, nexus: NexusDep
) -> AuthResponse:
    """A token for the right email and password; 401 otherwise, 429 after too many tries."""
    address = request.client.host if request.client else "unknown"
    limits = LoginLimits(
        base_delay_s=nexus.settings.login_delay_base_s,
        max_delay_s=max(nexus.settings.login_delay_max_s, nexus.settings.login_delay_base_s),
    )
    return await service.login(
        session, nexus.redis, body, address=address, secret=nexus.jwt_secret, limits=limits
    )
