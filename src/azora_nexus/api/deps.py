"""FastAPI dependencies: the open Nexus, a database session, the calling principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Principal, read_token
from azora_nexus.domain.privacy.revocation import refuse_erased
from azora_nexus.errors import Forbidden, Unauthorized
from azora_nexus.nexus import Nexus

bearer = HTTPBearer(auto_error=False)


def authenticate(nexus: Nexus, token: str) -> Principal:
    """The caller `token` names: Unauthorized when it is invalid or its user was erased.
    The one check of a bearer token, for FastAPI's routes and the lean paths alike."""
    return refuse_erased(nexus.erased, read_token(nexus.jwt_secret, token))


# Every dependency is `async def`: FastAPI runs a plain `def` one in a worker thread, a
# thread hop per request that cost more than the rest of a cached read's dependencies.
async def get_nexus(request: Request) -> Nexus:
    nexus: Nexus = request.app.state.nexus
    return nexus


NexusDep = Annotated[Nexus, Depends(get_nexus)]


async def get_session(nexus: NexusDep) -> AsyncIterator[AsyncSession]:
    async with nexus.db.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_principal(
    nexus: NexusDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller named by a valid bearer token of a user not erased; 401 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    return authenticate(nexus, credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_privileged(principal: CurrentPrincipal) -> Principal:
    """Admin or service callers only; 403 for a user token."""
    if not principal.is_privileged:
        raise Forbidden("this needs an admin or service token")
    return principal


PrivilegedPrincipal = Annotated[Principal, Depends(get_privileged)]
